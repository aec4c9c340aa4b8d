"""Consumer pieces that need no services: filters, cursors, the hub's queues and notices, bearer auth."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr, ValidationError

from common.messages import SERVER_MESSAGES
from common.metrics import ConsumerMetrics
from common.schemas import AnalyzedArticle
from common.store import ArticleFilters, InvalidCursor, StoredEvent, _decode_cursor, _encode_cursor, stream_id
from common.webapp import bearer_auth
from consumer.api import seconds
from consumer.ws import Client, Hub

pytestmark = pytest.mark.unit


def article(n: int, **analysis: Any) -> AnalyzedArticle:
    return AnalyzedArticle.model_validate(
        {
            "url": f"https://example.com/{n}",
            "title": f"Story {n}",
            "source": "BBC  News",
            "published_at": datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
            "analysis": {
                "sentiment": "neutral",
                "sentiment_score": 0.0,
                "entities": [{"text": "Acme Corp", "type": "ORG"}],
                **analysis,
            },
        },
        strict=False,
    )


def test_filters_match_case_and_whitespace_insensitively() -> None:
    a = article(1, category="World", language="en")
    assert ArticleFilters().matches(a)
    assert ArticleFilters(source="bbc news", category="WORLD", entity=" acme   corp ").matches(a)
    assert not ArticleFilters(sentiment="positive").matches(a)
    assert not ArticleFilters(entity="Acme").matches(a)


@pytest.mark.parametrize("bad", [{"sentiment": "happy"}, {"source": "   "}, {"mood": "x"}, {"entity": "x" * 201}])
def test_filters_refuse_what_they_cannot_mean(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ArticleFilters.model_validate(bad)


def test_cursor_round_trip_and_refusals() -> None:
    cursor = _encode_cursor("top", "7.5", "a" * 32)
    assert _decode_cursor("top", cursor) == ("7.5", "a" * 32)
    with pytest.raises(InvalidCursor, match="another list"):
        _decode_cursor("recent", cursor)
    assert cursor == "t_7.5_" + "a" * 32  # readable, and safe in a URL as it is
    assert _decode_cursor("recent", _encode_cursor("recent", "1.5e+20", "b" * 32)) == ("1.5e20", "b" * 32)
    for bad in ["", "!!", "t_nan_" + "a" * 32, "t_1_zz", "t_1_" + "A" * 32, "x_1_" + "a" * 32]:
        with pytest.raises(InvalidCursor):
            _decode_cursor("top", bad)


def test_stream_ids_compare_numerically() -> None:
    assert stream_id("10-0") > stream_id("9-5")
    for bad in ["", "1", "a-1", "1-", "-1-1"]:
        with pytest.raises(ValueError):
            stream_id(bad)


@pytest.mark.parametrize(("text", "expected"), [("300", 300), ("90s", 90), ("5m", 300), ("1h", 3600), ("7d", 604800)])
def test_durations(text: str, expected: int) -> None:
    assert seconds(text) == expected


class FakeSocket:
    """Stands in for a WebSocket in the hub's bookkeeping (no network here)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def receive_text(self) -> str:
        await asyncio.Event().wait()  # a client that never says anything
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


def event(n: int, cursor: str, **analysis: Any) -> StoredEvent:
    a = article(n, **analysis)
    return StoredEvent(cursor, a, a.model_dump_json())


async def test_hub_filters_skips_covered_events_and_reports_drops() -> None:
    hub = Hub(ConsumerMetrics.create(CollectorRegistry()), queue_size=2)
    everyone = hub.register(FakeSocket(), ArticleFilters())  # type: ignore[arg-type]
    negative = hub.register(FakeSocket(), ArticleFilters(sentiment="negative"))  # type: ignore[arg-type]
    everyone.after = stream_id("5-0")
    for i in range(1, 10):
        hub.broadcast(event(i, f"{i}-0", sentiment="negative" if i % 4 == 0 else "neutral"))
    assert hub.position == "9-0"
    # everyone: 1-5 were covered by its initial data; 6 and 7 fill the queue; 8 and 9 are dropped.
    assert [p for _, p, _ in list(everyone.queue._queue)] == [(6, 0), (7, 0)]  # type: ignore[attr-defined]
    assert everyone.dropped == 2
    assert [json.loads(m)["data"]["id"] for _, _, m in list(negative.queue._queue)] == [  # type: ignore[attr-defined]
        article(4).id,
        article(8).id,
    ]
    sender = asyncio.create_task(hub._send_loop(everyone))
    await asyncio.sleep(0.05)
    sender.cancel()
    for frame in everyone.ws.sent:  # type: ignore[attr-defined]
        SERVER_MESSAGES.validate_json(frame)  # every frame is a ServerMessage
    types = [json.loads(m)["type"] for m in everyone.ws.sent]  # type: ignore[attr-defined]
    assert types == ["new_analysis", "new_analysis", "lagged"]
    assert json.loads(everyone.ws.sent[-1]) == {"type": "lagged", "dropped": 2}  # type: ignore[attr-defined]
    hub.unregister(everyone)
    hub.unregister(everyone)
    assert len(hub) == 1


def test_hub_answers_client_messages() -> None:
    hub = Hub(ConsumerMetrics.create(CollectorRegistry()))
    client = Client(FakeSocket(), 4, ArticleFilters())  # type: ignore[arg-type]
    assert hub.handle(client, '{"type":"ping"}') == '{"type":"pong"}' == hub.handle(client, "ping")
    assert hub.handle(client, '{"type":"pong"}') is None
    reply = json.loads(hub.handle(client, '{"type":"subscribe","filters":{"source":"BBC"}}') or "")
    assert reply == {"type": "subscribed", "filters": {"source": "BBC"}} and client.filters.source == "BBC"
    refusals = {
        "nope": "not JSON",
        "[]": "unknown message type 'None' (expected ping, pong or subscribe)",
        '{"type":"dance"}': "unknown message type 'dance' (expected ping, pong or subscribe)",
        '{"type":"subscribe","filters":{"sentiment":"meh"}}': "subscribe: sentiment: Input should be",
        '{"type":"subscribe","filters":{"mood":"x"}}': "subscribe: mood: Extra inputs are not permitted",
        '{"type":"subscribe","filters":3}': "subscribe: filters: Input should be",
    }
    for bad, reason in refusals.items():
        reply = hub.handle(client, bad) or ""
        assert SERVER_MESSAGES.validate_json(reply).type == "error"
        assert json.loads(reply)["message"].startswith(reason), (bad, reply)
    assert client.filters.source == "BBC"  # a refused subscription keeps the previous filters
    assert hub.handle(client, '{"type":"subscribe","filters":null}') == '{"type":"subscribed","filters":{}}'
    assert client.filters == ArticleFilters()


@pytest.mark.parametrize("token", [None, "tok"])
def test_bearer_auth(token: str | None) -> None:
    app = FastAPI()

    @app.get("/data", dependencies=[Depends(bearer_auth(SecretStr(token) if token else None))])
    async def data() -> dict[str, bool]:
        return {"ok": True}

    client = TestClient(app)
    if token is None:
        assert client.get("/data").status_code == 200
        return
    assert client.get("/data").status_code == 401
    assert client.get("/data", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/data", headers={"Authorization": "Basic dG9rOg=="}).status_code == 401
    assert client.get("/data", headers={"Authorization": "Bearer tok"}).status_code == 200


async def test_hub_heartbeat_is_one_task_for_the_served_clients() -> None:
    hub = Hub(ConsumerMetrics.create(CollectorRegistry()), ping_interval=0.01)
    served = hub.register(FakeSocket(), ArticleFilters())  # type: ignore[arg-type]
    ahead = hub.register(FakeSocket(), ArticleFilters())  # type: ignore[arg-type]
    subscription = hub.register(FakeSocket(), ArticleFilters())  # type: ignore[arg-type]  # GraphQL: not served
    hub.position = "7-0"
    ahead.after = stream_id("9-0")  # its initial data went further than the reader has dispatched
    serving = [asyncio.create_task(hub.serve(c, '{"type":"initial_data","data":[]}')) for c in (served, ahead)]
    await asyncio.sleep(0.05)
    heartbeats = hub._heartbeats
    assert heartbeats is not None and not heartbeats.done()
    pings = [json.loads(m) for m in served.ws.sent if '"ping"' in m]  # type: ignore[attr-defined]
    assert pings and all(p == {"type": "ping", "cursor": "7-0"} for p in pings)
    assert {json.loads(m).get("cursor") for m in ahead.ws.sent if '"ping"' in m} == {"9-0"}  # type: ignore[attr-defined]
    assert subscription.queue.empty()  # a subscription's queue carries only what it asked for
    for task in serving:
        task.cancel()
    await asyncio.gather(*serving, return_exceptions=True)
    hub.unregister(subscription)
    await asyncio.sleep(0)
    assert len(hub) == 0 and hub._heartbeats is None and heartbeats.cancelled()
