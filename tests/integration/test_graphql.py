"""GraphQL on the consumer as a real process, on real Kafka and Redis: it answers the same data as REST for
the same query (filters, cursors, stories, statistics), a subscription receives new articles end to end
(produced to Kafka's analysed topic, through the consumer's ingest, its store and the hub), and it takes the
same tokens as REST (HTTP) and `/ws` (the subscription)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from tests.integration.test_consumer import produce, wait_stored
from tests.integration.test_consumer_stories import produce_updates, updates_for
from tests.integration.test_store import make_article

pytestmark = pytest.mark.integration

ARTICLE_FIELDS = """id url title description content source author published_at origin
  analysis { sentiment sentiment_score keywords category language importance_score summary
             entities { text type id name } }"""


def _same(rest: dict[str, Any], graphql: dict[str, Any]) -> None:
    """GraphQL's answer holds the fields REST gave, with equal values (times compared as instants)."""
    for key, value in graphql.items():
        if isinstance(value, dict):
            _same(rest[key], value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            assert len(value) == len(rest[key]), key
            for r, g in zip(rest[key], value, strict=True):
                _same(r, g)
        elif key.endswith(("_at", "_seen")) or key in ("start", "end", "since", "until"):
            from datetime import datetime

            assert datetime.fromisoformat(value) == datetime.fromisoformat(rest[key].replace("Z", "+00:00")), key
        else:
            assert value == rest.get(key), (key, value, rest.get(key))


async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    reply = await client.post("/graphql", json={"query": query, "variables": variables})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert "errors" not in body, body["errors"]
    return body["data"]  # type: ignore[no-any-return]


async def test_graphql_answers_what_rest_answers(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    consumer = spawn("consumer")
    articles = [
        make_article(
            i,
            sentiment="negative" if i % 3 == 0 else "positive",
            score=-0.5 if i % 3 == 0 else 0.4,
            source="Acme Wire" if i % 2 else "Example News",
            entities=("ACME",) if i % 4 == 0 else (),
            importance=float(i % 10),
        )
        for i in range(12)
    ]
    await produce(kafka_settings, articles)
    members = articles[:3]
    await produce_updates(kafka_settings, updates_for(members))
    base = f"http://127.0.0.1:{consumer.port}"
    await wait_stored(base, len(articles))
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        # Articles: the same pages, in the same order, with the same cursors (REST's X-Next-Cursor).
        query = f"""query($cursor: String, $order: ArticleOrder!) {{
          articles(order: $order, limit: 2, filters: {{sentiment: positive, source: "acme wire"}}, cursor: $cursor) {{
            nodes {{ {ARTICLE_FIELDS} }} page_info {{ end_cursor has_next_page }} }} }}"""
        for order in ("recent", "top"):
            cursor: str | None = None
            pages = 0
            while True:
                # view=full: GraphQL's articles carry the bodies REST's lean list view leaves out
                params: dict[str, str | int] = {
                    "limit": 2,
                    "sentiment": "positive",
                    "source": "acme wire",
                    "view": "full",
                }
                if cursor is not None:
                    params["cursor"] = cursor
                rest = await client.get(f"/news/{order}", params=params)
                answer = (await gql(client, query, cursor=cursor, order=order))["articles"]
                assert [a["id"] for a in answer["nodes"]] == [a["id"] for a in rest.json()], order
                for r, g in zip(rest.json(), answer["nodes"], strict=True):
                    _same(r, g)
                assert answer["page_info"]["end_cursor"] == rest.headers.get("X-Next-Cursor")
                cursor = answer["page_info"]["end_cursor"]
                pages += 1
                if cursor is None:
                    break
            assert pages >= 2, order  # there was paging to compare
        # One article, and its story.
        one = articles[0]
        rest_one = (await client.get(f"/news/{one.id}")).json()
        answer = await gql(client, f'{{ article(id: "{one.id}") {{ {ARTICLE_FIELDS} story {{ id article_count }} }} }}')
        _same(rest_one, {k: v for k, v in answer["article"].items() if k != "story"})
        assert answer["article"]["story"] == {"id": members[0].id, "article_count": 3}
        # Stories: the list and one story with its articles.
        fields = "id title language first_seen last_seen article_count source_count sources keywords active"
        rest_stories = (await client.get("/stories", params={"limit": 5})).json()
        answer = await gql(client, f"{{ stories(limit: 5) {{ nodes {{ {fields} score }} }} }}")
        assert [s["id"] for s in answer["stories"]["nodes"]] == [s["id"] for s in rest_stories] == [members[0].id]
        for r, g in zip(rest_stories, answer["stories"]["nodes"], strict=True):
            assert abs(g.pop("score") - r["score"]) < 1e-3  # the score decays with the clock between the calls
            _same(r, g)
        rest_story = (await client.get(f"/stories/{members[0].id}", params={"articles": 10})).json()
        answer = await gql(client, f'{{ story(id: "{members[0].id}") {{ id articles(limit: 10) {{ id title }} }} }}')
        assert [a["id"] for a in answer["story"]["articles"]] == [a["id"] for a in rest_story["articles"]]
        # Timelines, statistics.
        rest_tl = (await client.get("/entities/org:acme/timeline", params={"bucket": "1d"})).json()
        answer = await gql(
            client, '{ entity_timeline(id: "org:acme", bucket: "1d") { id kind bucket points { start count } } }'
        )
        _same(rest_tl, answer["entity_timeline"])
        rest_top = (await client.get("/entities/top", params={"window": "7d"})).json()
        answer = await gql(client, '{ top_entities(window: "7d") { id name type count } }')
        assert answer["top_entities"] == rest_top
        rest_stats = (await client.get("/stats/sentiment", params={"bucket": "1h", "window": "7d"})).json()
        answer = await gql(
            client, '{ sentiment_stats(bucket: "1h", window: "7d") { bucket_seconds source buckets { start count } } }'
        )
        assert answer["sentiment_stats"]["bucket_seconds"] == rest_stats["bucket_seconds"] == 3600
        assert len(answer["sentiment_stats"]["buckets"]) == len(rest_stats["buckets"])
        rest_trends = (await client.get("/trends", params={"limit": 5})).json()
        answer = await gql(client, "{ trends(limit: 5) { window_minutes keywords { term count } } }")
        assert answer["trends"]["keywords"] == [
            {"term": k["term"], "count": k["count"]} for k in rest_trends["keywords"]
        ]
        # A bad cursor is an error naming it, as REST's 422 does.
        reply = await client.post("/graphql", json={"query": '{ articles(cursor: "zz") { nodes { id } } }'})
        assert "cursor" in reply.json()["errors"][0]["message"]


async def _subscribe(url: str, init: dict[str, Any], filters: str) -> Any:
    ws = await websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")])
    await ws.send(json.dumps({"type": "connection_init", "payload": init}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert ack["type"] == "connection_ack", ack
    query = f"subscription {{ new_analysis(filters: {filters}) {{ id title analysis {{ sentiment }} }} }}"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    return ws


async def _next_article(ws: Any, timeout: float = 30) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]["new_analysis"]  # type: ignore[no-any-return]


async def test_subscription_receives_new_articles_end_to_end_with_the_tokens_of_rest(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    consumer = spawn("consumer", env={"API_READ_TOKENS": "read-t0ken-1", "API_WRITE_TOKENS": "write-t0ken-1"})
    base = f"http://127.0.0.1:{consumer.port}"
    url = f"ws://127.0.0.1:{consumer.port}/graphql"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        query = {"query": "{ articles(limit: 1) { nodes { id } } }"}
        assert (await client.post("/graphql", json=query)).status_code == 401
        read = {"Authorization": "Bearer read-t0ken-1"}
        reply = await client.post("/graphql", json=query, headers=read)  # a POST that only reads: a read token
        assert reply.status_code == 200 and reply.json() == {"data": {"articles": {"nodes": []}}}
        assert (await client.get("/graphql", params=query, headers=read)).status_code == 200
        ticket = (await client.post("/ws/ticket", headers=read)).json()["ticket"]

    # Without a token the socket is closed before any operation runs.
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as bare:
        await bare.send(json.dumps({"type": "connection_init", "payload": {"token": "wrong"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(bare.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403

    # One subscriber with the token in connection_init, one with a ticket in the URL (as /ws takes it).
    positive = await _subscribe(url, {"token": "read-t0ken-1"}, "{sentiment: positive}")
    everything = await websockets.connect(
        f"{url}?ticket={ticket}", subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    try:
        await everything.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(everything.recv(), 10))["type"] == "connection_ack"
        await everything.send(
            json.dumps({"id": "a", "type": "subscribe", "payload": {"query": "subscription { new_analysis { id } }"}})
        )
        await asyncio.sleep(0.5)  # both subscriptions registered with the hub
        sad = make_article(101, sentiment="negative", score=-0.7)
        glad = make_article(102, sentiment="positive", score=0.6)
        await produce(kafka_settings, [sad, glad])
        got = await _next_article(positive)
        assert got == {"id": glad.id, "title": glad.title, "analysis": {"sentiment": "positive"}}
        ids = [(await _next_article(everything))["id"] for _ in range(2)]
        assert sorted(ids) == sorted([sad.id, glad.id])
    finally:
        await positive.close()
        await everything.close()
