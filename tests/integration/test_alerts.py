"""Watchlists and alerts end to end, on real Kafka and Redis with the consumer as a real process: a planted
surge of one entity (analysed articles naming it, after a quiet baseline) raises exactly one alert per
watchlist, pushed on the WebSocket and POSTed, signed, to a local webhook receiver; a receiver that is
down leads to a dead letter with the reason; a re-delivered batch alerts nobody twice. Timelines are read back
over REST. The same surge once more through the whole pipeline (raw articles -> the stream worker and its
standard engine -> the consumer), the entity found by the engine itself. Two consumer replicas deliver each
alert's webhook once (the outbox's consumer group); the SIGKILL
cases of the outbox are in tests/chaos/test_webhook_restart.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from common.alerts import DELIVERY_HEADER, verify
from common.schemas import RawArticle
from common.settings import KafkaSettings
from common.timelines import bucket_start
from common.topics import Topics
from harness.infra import free_port
from harness.processes import ServiceProcess
from tests.integration.test_consumer import next_message, produce, wait_stored, ws_url
from tests.integration.test_store import make_article
from tests.support.worker_support import produce as produce_raw

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on a local port: answers `status` (settable: down, then up) and records every POST
    (`posts`: body, headers, the status answered) and the accepted ones (`received`: body, headers)."""

    def __init__(self, status: int = 204, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.posts: list[tuple[bytes, dict[str, str], int]] = []
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        body, headers, status = await request.read(), dict(request.headers), self.status
        await asyncio.sleep(self.delay)
        self.posts.append((body, headers, status))
        if 200 <= status < 300:
            self.received.append((body, headers))
        return web.Response(status=status)

    def ids(self, accepted: bool = True) -> list[str]:
        """The alert id of each accepted POST (or of every POST), in arrival order."""
        found = self.received if accepted else [(b, h) for b, h, _ in self.posts]
        return [json.loads(body)["id"] for body, _ in found]


@asynccontextmanager
async def serving(found: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as found:
        yield found


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def next_alert(ws: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = await next_message(ws, max(deadline - time.monotonic(), 0.01))
        if message["type"] == "alert":
            return message


async def dead_letters(kafka: KafkaSettings, n: int, timeout: float = 40) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        Topics.of(kafka.topics).dead_letters.name,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out += [json.loads(m.value) for m in messages if m.value]
    finally:
        await consumer.stop()
    return out


async def test_planted_surge_alerts_once_on_the_websocket_and_the_webhook(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, receiver: Receiver
) -> None:
    consumer = spawn(
        "consumer",
        env={
            "CONSUMER__ALERTS__WEBHOOK_ATTEMPTS": "3",
            "CONSUMER__ALERTS__WEBHOOK_BACKOFF": "0.1",
            "CONSUMER__ALERTS__WEBHOOK_BACKOFF_MAX": "0.5",
        },
    )
    base = f"http://127.0.0.1:{consumer.port}"
    now = datetime.now(UTC)
    window = bucket_start(now.timestamp(), 900)
    # Published at the start of this 15-minute window, so the whole surge is in one window.
    surge_at = datetime.fromtimestamp(window, UTC)
    down = free_port()  # nothing listens there
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        spike = {"kind": "entity_spike", "entity": "org:acme"}
        live = await client.post(
            "/watchlists",
            json={"name": "Acme surges", "rules": [spike], "webhook_url": f"http://127.0.0.1:{receiver.port}/hook"},
        )
        assert live.status_code == 201, live.text
        dead = await client.post(
            "/watchlists",
            json={"name": "Acme, receiver down", "rules": [spike], "webhook_url": f"http://127.0.0.1:{down}/x"},
        )
        quiet = await client.post(
            "/watchlists", json={"name": "Zeta", "rules": [{"kind": "entity_spike", "entity": "org:zeta"}]}
        )
        assert dead.status_code == quiet.status_code == 201
        secret, live_id, dead_id = live.json()["secret"], live.json()["id"], dead.json()["id"]
        listed = (await client.get("/watchlists")).json()
        assert [w["id"] for w in listed] == [live_id, dead_id, quiet.json()["id"]]
        assert all("secret" not in w for w in listed)

    async with websockets.connect(ws_url(consumer, "?source=nobody&stories=false")) as ws:
        assert (await next_message(ws))["type"] == "initial_data"
        # A quiet baseline: one article naming Acme (and one naming Zeta) in each of the previous six windows.
        baseline = [
            make_article(
                i, entities=("Acme", "Zeta"), published=surge_at - timedelta(minutes=15 * (i + 1)), analyzed=now
            )
            for i in range(6)
        ]
        await produce(kafka_settings, baseline)
        await wait_stored(base, 6)
        # The surge: twelve articles naming Acme in this window; Zeta appears once.
        surge = [
            make_article(100 + i, entities=("Acme", *(("Zeta",) if i == 0 else ())), published=surge_at, analyzed=now)
            for i in range(12)
        ]
        await produce(kafka_settings, surge)
        first, second = await next_alert(ws), await next_alert(ws)
        alerts = {m["data"]["watchlist_id"]: m["data"] for m in (first, second)}
        assert set(alerts) == {live_id, dead_id}
        alert = alerts[live_id]
        assert alert["kind"] == "spike" and alert["subject"] == "org:acme" and alert["count"] >= 6
        assert alert["window_start"].startswith(surge_at.strftime("%Y-%m-%dT%H:%M")) and alert["p_value"] < 0.001
        # The batch again (a re-delivery) and the surge growing within the window: nothing new.
        await produce(kafka_settings, surge)
        await produce(kafka_settings, [make_article(200, entities=("Acme",), published=surge_at, analyzed=now)])
        await wait_stored(base, 19)
        with pytest.raises(TimeoutError):
            await next_alert(ws, 3)

    # The live receiver got exactly one POST, signed with the watchlist's secret.
    deadline = time.monotonic() + 20
    while not receiver.received and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    assert len(receiver.received) == 1
    body, headers = receiver.received[0]
    assert verify(body, secret, headers.get("X-Signature")) and json.loads(body)["id"] == alert["id"]
    assert not verify(body, "not the secret", headers.get("X-Signature"))
    # The idempotency key a receiver dedups on: the alert's id, on every attempt.
    assert headers.get(DELIVERY_HEADER) == alert["id"] and headers.get("X-News-Attempt") == "1"
    # The dead one: three attempts, then a dead letter with the alert as its payload and the reason.
    letters = [d for d in await dead_letters(kafka_settings, 1) if d["stage"] == "alerts"]
    assert len(letters) == 1 and json.loads(letters[0]["original"])["watchlist_id"] == dead_id
    assert letters[0]["attempts"] == 3 and letters[0]["original_key"] == alerts[dead_id]["id"]
    assert letters[0]["error"].startswith("webhook 127.0.0.1: ConnectError"), letters[0]["error"]

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        listed_alerts = (await client.get("/alerts")).json()
        assert sorted(a["watchlist_id"] for a in listed_alerts) == sorted([live_id, dead_id])
        assert [a["id"] for a in (await client.get("/alerts", params={"watchlist": live_id})).json()] == [alert["id"]]
        metrics = (await client.get("/metrics")).text
        assert 'alerts_raised_total{kind="spike"} 2.0' in metrics
        assert 'alert_webhook_deliveries_total{result="ok"} 1.0' in metrics
        assert 'alert_webhook_deliveries_total{result="failed"} 1.0' in metrics
        # Timelines: 13 in the surge window (counted once despite the re-delivery), 1 in each before.
        line = (
            await client.get(
                "/entities/org:acme/timeline",
                params={
                    "bucket": "15m",
                    "since": (surge_at - timedelta(minutes=90)).isoformat(),
                    "until": (surge_at + timedelta(minutes=15)).isoformat(),
                },
            )
        ).json()
        assert [p["count"] for p in line["points"]] == [1] * 6 + [13]
        top = (await client.get("/entities/top", params={"window": "24h"})).json()
        assert top[0] == {"id": "org:acme", "name": "Acme", "type": "ORG", "count": 19}
        assert (await client.get("/keywords/top", params={"window": "15m"})).json()[0]["id"] == "story"
        # Deleting: 204, then 404.
        assert (await client.delete(f"/watchlists/{dead_id}")).status_code == 204
        assert (await client.delete(f"/watchlists/{dead_id}")).status_code == 404
        assert (await client.post("/watchlists", json={"name": "x", "rules": []})).status_code == 422


async def test_two_replicas_deliver_each_alert_once(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, receiver: Receiver, redis: Any, namespace: str
) -> None:
    """Two consumer replicas (one Kafka group, one Redis): each matching article is one alert, raised by the
    replica that ingested it, and its webhook is POSTed once, by one replica, with a valid signature."""
    # A slow receiver keeps deliveries in flight, so both replicas' senders read the outbox at once.
    receiver.delay = 0.2
    replicas = [spawn("consumer", env={"CONSUMER__ALERTS__WEBHOOK_TIMEOUT": "2"}) for _ in range(2)]
    base = f"http://127.0.0.1:{replicas[0].port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        created = await client.post(
            "/watchlists",
            json={
                "name": "Acme, every article",
                "rules": [{"kind": "entity", "entity": "org:acme"}],
                "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
            },
        )
        assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    now = datetime.now(UTC)
    articles = [make_article(300 + i, entities=("Acme",), published=now, analyzed=now) for i in range(40)]
    await produce(kafka_settings, articles)
    await wait_for(lambda: len(receiver.posts) >= 40, 60, "40 webhook POSTs")
    await asyncio.sleep(2)  # room for a duplicate to show up
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        listed = (await client.get("/alerts", params={"limit": 200})).json()
    assert len(listed) == 40
    got = receiver.ids(accepted=False)
    assert sorted(got) == sorted(a["id"] for a in listed), "each alert POSTed exactly once"
    for body, headers in receiver.received:
        assert verify(body, secret, headers.get("X-Signature")) and headers[DELIVERY_HEADER] == json.loads(body)["id"]
    # Both replicas are consumers of the outbox's group, and it is drained (nothing pending, nothing left).
    assert len(await redis.xrange(f"{namespace}:whq")) == 0
    consumers = await redis.xinfo_consumers(f"{namespace}:whq", "webhooks")
    assert len(consumers) == 2 and all(c["pending"] == 0 for c in consumers)


SURGE_TEXTS = [
    ("Acme Corporation wins a record defence contract", "Acme Corporation said the deal runs ten years."),
    ("Regulators open an inquiry into Acme Corporation", "The inquiry looks at how Acme Corporation priced parts."),
    ("Acme Corporation shares jump in early trading", "Investors cheered Acme Corporation after the results."),
    ("Acme Corporation to build a factory in Ohio", "Acme Corporation expects to hire two thousand workers."),
    ("Unions praise Acme Corporation pay agreement", "Workers at Acme Corporation voted for the agreement."),
    ("Acme Corporation names a new chief executive", "The board of Acme Corporation chose an outsider."),
    ("Acme Corporation recalls a line of heaters", "Acme Corporation said no injuries were reported."),
    ("Analysts raise targets for Acme Corporation", "Acme Corporation beat forecasts for a third quarter."),
    ("Acme Corporation settles a patent dispute", "Acme Corporation will pay an undisclosed sum."),
    ("Acme Corporation expands its solar business", "Acme Corporation bought two panel makers this year."),
]


async def test_planted_surge_through_the_worker_alerts_on_the_websocket_and_the_webhook(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, receiver: Receiver
) -> None:
    """Raw articles in, alerts out: the worker's engine finds the entity, the consumer counts and tests it."""
    consumer = spawn("consumer")
    spawn("worker", env={"WORKER__BATCH_SIZE": "5", "WORKER__BATCH_TIMEOUT": "0.2"})
    base = f"http://127.0.0.1:{consumer.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        created = await client.post(
            "/watchlists",
            json={
                "name": "Acme Corporation surges",
                "rules": [{"kind": "entity_spike", "entity": "org:acme_corporation"}],
                "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
            },
        )
        assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    now = datetime.now(UTC)
    articles = [
        RawArticle(
            url=f"https://wire.example.com/acme/{i}",
            title=title,
            description=description,
            source=f"Wire {i % 4}",
            published_at=now,
        )
        for i, (title, description) in enumerate(SURGE_TEXTS)
    ]
    async with websockets.connect(ws_url(consumer, "?source=nobody&stories=false")) as ws:
        assert (await next_message(ws))["type"] == "initial_data"
        await produce_raw(
            kafka_settings,
            kafka_settings.topics.raw_topic,
            [(a.id.encode(), a.model_dump_json().encode()) for a in articles],
        )
        alert = (await next_alert(ws, timeout=120))["data"]
    assert alert["kind"] == "spike" and alert["subject"] == "org:acme_corporation" and alert["count"] >= 6
    await wait_for(lambda: len(receiver.received) >= 1, 30, "the webhook POST")
    body, headers = receiver.received[0]
    assert verify(body, secret, headers.get("X-Signature")) and json.loads(body)["id"] == alert["id"]
    assert headers[DELIVERY_HEADER] == alert["id"]
