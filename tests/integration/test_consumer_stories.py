"""Stories in the consumer as a real process on real Kafka and Redis: `news.stories` ingested idempotently,
`GET /stories`, `/stories/{id}`, `/news/{id}/story`, `/news/top` ranking stories, and `story_update` on the
WebSocket. The story updates are produced here the way the story stage produces them (its topic, its key)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from common.schemas import AnalyzedArticle
from common.settings import KafkaSettings, RedisSettings
from common.stories import Story, StoryUpdate
from common.story_store import StoryPutResult, StoryStore
from common.topics import Topics
from harness.processes import ServiceProcess
from tests.integration.test_consumer import next_message, produce, wait_stored, ws_url
from tests.integration.test_store import make_article

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def updates_for(members: Sequence[AnalyzedArticle], *, active: bool = True) -> list[StoryUpdate]:
    """The updates the story stage would produce as `members` join one story in order (the first starts it)."""
    out = []
    for n in range(1, len(members) + 1):
        joined = members[:n]
        sources = Counter(a.source for a in joined)
        hours = Counter(a.published_at.replace(minute=0, second=0, microsecond=0) for a in joined)
        story = Story.model_validate(
            {
                "id": members[0].id,
                "title": members[0].title,
                "language": members[0].analysis.language,
                "first_seen": min(a.published_at for a in joined),
                "last_seen": max(a.published_at for a in joined),
                "article_count": n,
                "source_count": len(sources),
                "sources": dict(sources),
                "languages": {"en": n},
                "entities": [{"id": "org:acme", "name": "Acme", "type": "ORG", "count": n}],
                "keywords": ["story"],
                "sentiment": {"neutral": n},
                "timeline": [{"start": h, "count": c} for h, c in sorted(hours.items())],
                "active": active or n < len(members),
            },
            strict=False,
        )
        out.append(
            StoryUpdate(article_id=joined[-1].id, created=n == 1, similarity=1.0 if n == 1 else 0.8, story=story)
        )
    return out


async def produce_updates(kafka: KafkaSettings, updates: Sequence[StoryUpdate | bytes]) -> None:
    topic = Topics.of(kafka.topics).stories
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for u in updates:
            if isinstance(u, StoryUpdate):
                record = topic.encode(u)
                await producer.send(topic.name, record.value, key=record.key)
            else:
                await producer.send(topic.name, u, key=b"junk")
        await producer.flush()
    finally:
        await producer.stop()


async def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.2)


# --- the store on its own -------------------------------------------------------------------------


async def test_store_is_idempotent_by_version_and_records_membership(
    redis: Redis, redis_settings: RedisSettings
) -> None:
    store = StoryStore(redis, prefix=redis_settings.key_prefix, ttl_seconds=3600, max_members=3)
    members = [make_article(i, source=f"S{i % 2}", published=NOW - timedelta(minutes=10 - i)) for i in range(5)]
    ups = updates_for(members)
    assert (await store.put(ups[0]))[0] is StoryPutResult.CREATED
    assert (await store.put(ups[2]))[0] is StoryPutResult.REPLACED
    again, position = await store.put(ups[2])
    assert again is StoryPutResult.DUPLICATE and position is None
    # An older update after a newer one: the story stays, the membership is recorded.
    assert (await store.put(ups[1]))[0] is StoryPutResult.DUPLICATE
    story = await store.get(members[0].id)
    assert story is not None and story.article_count == 3
    assert await store.story_of(members[1].id) == members[0].id
    for u in ups[3:]:
        await store.put(u)
    assert await store.members(members[0].id, 10) == [a.id for a in members[:1:-1]]  # newest 3 joined
    # The same story turning inactive is newer; turning active again at the same counts is not.
    inactive = updates_for(members, active=False)[-1]
    assert (await store.put(inactive))[0] is StoryPutResult.REPLACED
    assert (await store.put(ups[-1]))[0] is StoryPutResult.DUPLICATE
    assert (s := await store.get(members[0].id)) is not None and not s.active
    assert 0 < await redis.ttl(f"{redis_settings.key_prefix}story:{members[0].id}") <= 3600
    assert 0 < await redis.ttl(f"{redis_settings.key_prefix}astory:{members[1].id}") <= 3600
    # Five stored versions, five events; each event is delivered only while its version is current.
    _, events = await store.read_events("0-0", block_ms=1)
    assert [e.article_id for e in events] == [members[-1].id] and events[0].created is False


# --- the consumer ---------------------------------------------------------------------------------


async def test_stories_ingested_served_ranked_and_pushed(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    consumer = spawn("consumer")
    base = f"http://127.0.0.1:{consumer.port}"
    # Story A: four outlets, growing now. Story B: one outlet, two articles an hour ago. C: unclustered.
    a = [make_article(i, source=f"Outlet {i}", published=NOW - timedelta(minutes=30 - i)) for i in range(4)]
    b = [make_article(10 + i, source="Lone", importance=9.0, published=NOW - timedelta(hours=3)) for i in range(2)]
    c = make_article(20, importance=1.0, published=NOW - timedelta(minutes=5))
    await produce(kafka_settings, [*a, *b, c])
    await wait_stored(base, 7)
    ups_a, ups_b = updates_for(a), updates_for(b)

    async with (
        websockets.connect(ws_url(consumer)) as everyone,
        websockets.connect(ws_url(consumer, "?stories=false")) as quiet,
    ):
        await next_message(everyone)
        await next_message(quiet)
        # Out of order and twice, plus junk for the dead-letter topic.
        await produce_updates(kafka_settings, [ups_a[0], ups_a[2], ups_a[1], ups_a[2], b"not a story", ups_a[3]])
        await produce_updates(kafka_settings, ups_b)
        pushed: list[dict[str, Any]] = []
        while not any(m["data"]["id"] == b[0].id and m["data"]["article_count"] == 2 for m in pushed):
            message = await next_message(everyone)
            assert message["type"] == "story_update", message
            pushed.append(message)
        assert pushed[0]["created"] is True and pushed[0]["article_id"] == a[0].id
        counts_a = [m["data"]["article_count"] for m in pushed if m["data"]["id"] == a[0].id]
        assert counts_a == sorted(set(counts_a)) and counts_a[-1] == 4  # never older, never twice
        with pytest.raises(TimeoutError):
            await next_message(quiet, 1.0)
        await quiet.send(json.dumps({"type": "subscribe", "stories": True}))
        assert (await next_message(quiet))["type"] == "subscribed"
        await produce_updates(kafka_settings, [updates_for(b, active=False)[-1]])
        turned = await next_message(quiet)
        assert turned["type"] == "story_update" and turned["data"]["active"] is False

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        listed = (await client.get("/stories")).json()
        assert [s["id"] for s in listed] == [a[0].id, b[0].id]  # four outlets, growing, beat one outlet
        assert listed[0]["score"] > listed[1]["score"] and listed[0]["article_count"] == 4
        assert [s["id"] for s in (await client.get("/stories", params={"order": "recent"})).json()] == [
            a[0].id,
            b[0].id,
        ]
        assert [s["id"] for s in (await client.get("/stories", params={"source": "lone"})).json()] == [b[0].id]
        assert len((await client.get("/stories", params={"entity": "org:acme", "language": "en"})).json()) == 2
        assert (await client.get("/stories", params={"language": "ko"})).json() == []
        since = (NOW - timedelta(hours=1)).isoformat()
        assert [s["id"] for s in (await client.get("/stories", params={"since": since})).json()] == [a[0].id]
        # Paging: one per page, in both orders, with no repeat.
        for order in ("score", "recent"):
            first = await client.get("/stories", params={"limit": 1, "order": order})
            second = await client.get("/stories", params={"limit": 1, "cursor": first.headers["x-next-cursor"]})
            assert [s["id"] for s in first.json() + second.json()] == [a[0].id, b[0].id]
            assert "x-next-cursor" not in second.headers

        detail = (await client.get(f"/stories/{a[0].id}", params={"articles": 3})).json()
        assert [x["id"] for x in detail["articles"]] == [x.id for x in a[:0:-1]]  # newest first, bounded
        assert detail["timeline"] and detail["entities"][0]["id"] == "org:acme" and "score" in detail
        assert (await client.get(f"/stories/{'f' * 32}")).status_code == 404
        assert (await client.get(f"/stories/{'F' * 32}")).status_code == 422

        assert (await client.get(f"/news/{a[2].id}/story")).json()["id"] == a[0].id
        assert (await client.get(f"/news/{c.id}/story")).status_code == 404
        assert (await client.get(f"/news/{a[2].id}")).json()["id"] == a[2].id  # the seed's shape, unchanged

        # /news/top: one representative per story, by story score, then the unclustered article.
        top = (await client.get("/news/top")).json()
        assert [x["id"] for x in top] == [a[0].id, b[0].id, c.id]
        ids: list[str] = []
        cursor: str | None = None
        for _ in range(3):
            page = await client.get("/news/top", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
            ids += [x["id"] for x in page.json()]
            cursor = page.headers.get("x-next-cursor")
        assert ids == [a[0].id, b[0].id, c.id] and cursor is None
        assert [x["id"] for x in (await client.get("/news/top", params={"source": "lone"})).json()] == [b[0].id]
        for params in ({"limit": 0}, {"order": "best"}, {"cursor": "garbage"}, {"entity": "\x00"}, {"source": " "}):
            assert (await client.get("/stories", params=params)).status_code == 422, params
        assert "consumer_dead_lettered_total 1.0" in (await client.get("/metrics")).text
