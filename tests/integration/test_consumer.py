"""The consumer as a real process on real Kafka and Redis: ingest, REST, WebSocket fan-out, resume, auth."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from common.messages import SERVER_MESSAGES
from common.schemas import STORED, AnalyzedArticle
from common.settings import KafkaSettings, RedisSettings
from common.stats import SentimentCounts, StatsStore, entity_member
from consumer.api import ArticleSummary
from consumer.main import create_app
from consumer.settings import ConsumerConfig, ConsumerSettings
from harness.infra import ROOT, free_port
from harness.processes import ServiceProcess
from tests.integration.test_store import BASE, make_article

pytestmark = pytest.mark.integration


# --- helpers ------------------------------------------------------------------------------------


async def produce(kafka: KafkaSettings, messages: Sequence[AnalyzedArticle | bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for m in messages:
            if isinstance(m, AnalyzedArticle):
                await producer.send(kafka.topics.analyzed_topic, m.model_dump_json().encode(), key=m.id.encode())
            else:
                await producer.send(kafka.topics.analyzed_topic, m, key=b"junk")
        await producer.flush()
    finally:
        await producer.stop()


async def wait_stored(base: str, n: int, *, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, headers=headers or {}, timeout=5) as client:
        while True:
            reply = (await client.get("/")).json()
            assert "stored" in reply, reply
            stored = reply["stored"]
            if stored >= n:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stored} of {n} articles stored")
            await asyncio.sleep(0.2)


async def next_message(ws: Any, timeout: float = 15) -> dict[str, Any]:
    """The next message that is not a heartbeat (each one checked against `ServerMessage` on the way)."""
    while True:
        text = await asyncio.wait_for(ws.recv(), timeout)
        SERVER_MESSAGES.validate_json(text, context=STORED)
        message: dict[str, Any] = json.loads(text)
        if message["type"] != "ping":
            return message


async def collect_new(ws: Any, n: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The next `n` new_analysis messages (failing on anything else but heartbeats)."""
    out: list[dict[str, Any]] = []

    async def run() -> None:
        while len(out) < n:
            message = await next_message(ws, timeout)
            assert message["type"] == "new_analysis", message
            out.append(message)

    await asyncio.wait_for(run(), timeout)
    return out


async def assert_silent(ws: Any, seconds: float = 1.0) -> None:
    """Nothing but heartbeats arrives for a while."""
    try:
        message = await next_message(ws, seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {message}")


def ws_url(proc: ServiceProcess, query: str = "") -> str:
    return f"ws://127.0.0.1:{proc.port}/ws{query}"


# --- one replica: ingest, idempotency, REST, live filters ----------------------------------------


async def test_ingest_idempotent_rest_and_live_filters(
    spawn: Callable[..., ServiceProcess],
    kafka_settings: KafkaSettings,
    redis: Redis,
    redis_settings: RedisSettings,
    search_env: dict[str, str],
) -> None:
    consumer = spawn("consumer", env=search_env)
    base = f"http://127.0.0.1:{consumer.port}"
    async with (
        websockets.connect(ws_url(consumer)) as everything,
        websockets.connect(ws_url(consumer, "?sentiment=negative")) as negative,
    ):
        assert await next_message(everything) == {"type": "initial_data", "data": []}
        assert (await next_message(negative))["data"] == []
        async with websockets.connect(ws_url(consumer)) as acme:
            await next_message(acme)
            await acme.send(json.dumps({"type": "subscribe", "filters": {"entity": "ACME", "language": "en"}}))
            assert await next_message(acme) == {"type": "subscribed", "filters": {"entity": "ACME", "language": "en"}}
            await acme.send(json.dumps({"type": "subscribe", "filters": {"mood": "happy"}}))
            assert (await next_message(acme))["type"] == "error"
            await acme.send('{"type":"ping"}')
            assert await next_message(acme) == {"type": "pong"}

            newer = make_article(0, sentiment="negative", entities=("Acme",), analyzed=BASE + timedelta(hours=2))
            older = make_article(0, sentiment="positive", analyzed=BASE + timedelta(hours=1))
            others = [
                make_article(i, sentiment=("positive", "negative")[i % 2], entities=("Acme",) if i % 3 == 0 else ())
                for i in range(1, 13)
            ]
            # The same message three times, an older analysis after the newer one, and junk for the DLQ.
            await produce(kafka_settings, [newer, newer, newer, older, b"not an article", *others])
            await wait_stored(base, 13)

            live = await collect_new(everything, 13)
            assert sorted(m["data"]["id"] for m in live) == sorted(a.id for a in [newer, *others])
            assert all(m["cursor"] for m in live)
            await assert_silent(everything, 1.5)
            neg = await collect_new(negative, 7)
            assert {m["data"]["analysis"]["sentiment"] for m in neg} == {"negative"}
            await assert_silent(negative, 0.2)
            acme_live = await collect_new(acme, 5)
            assert {m["data"]["id"] for m in acme_live} == {a.id for a in [newer, *others[2::3]]}

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        stored = (await client.get(f"/news/{newer.id}")).json()
        assert stored["analysis"]["sentiment"] == "negative"  # the older analysis did not replace it
        missing = await client.get("/news/" + "f" * 32)
        assert missing.status_code == 404 and "no article" in missing.json()["detail"]

        # An unpaired surrogate (UTF-8-style bytes, which no UTF-8 text holds): refused by name, not a 500.
        surrogate = await client.get("/news/recent?source=%ED%A0%80")
        assert surrogate.status_code == 422 and surrogate.json()["detail"][0]["loc"] == ["query", "source"]

        # Filters and cursor paging: three pages of 5, 5, 3.
        ids: list[str] = []
        cursor = None
        for _ in range(3):
            r = await client.get("/news/recent", params={"limit": 5, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200
            ids += [a["id"] for a in r.json()]
            cursor = r.headers.get("x-next-cursor")
        assert cursor is None and len(ids) == 13 == len(set(ids))
        r = await client.get("/news/top", params={"sentiment": "negative", "entity": "acme", "limit": 50})
        assert {a["id"] for a in r.json()} == {
            a.id for a in [newer, *others] if a.analysis.sentiment == "negative" and a.analysis.entities
        }
        since = (BASE + timedelta(minutes=10)).isoformat()
        r = await client.get("/news/recent", params={"since": since})
        assert {a["id"] for a in r.json()} == {a.id for a in others if a.published_at >= BASE + timedelta(minutes=10)}

        # Lists are lean by default (ArticleSummary: a lead, no bodies, no embedding); view=full sends records.
        lean = (await client.get("/news/recent", params={"limit": 50})).json()
        full = (await client.get("/news/recent", params={"limit": 50, "view": "full"})).json()
        assert [a["id"] for a in lean] == [a["id"] for a in full] and len(lean) == 13
        for item in lean:
            ArticleSummary.model_validate(item)
            assert "description" not in item and "content" not in item and "embedding" not in item["analysis"]
        assert {a["lead"] for a in lean} == {a["description"] for a in full}
        assert [AnalyzedArticle.model_validate(a, strict=False, context=STORED).id for a in full] == [
            a["id"] for a in full
        ]
        top_lean = (await client.get("/news/top", params={"limit": 3})).json()
        assert all("lead" in a and "description" not in a for a in top_lean)

        # ETag / If-None-Match on lists and items: 304 without a body while nothing changed.
        for url, query in (("/news/recent", {"limit": 50}), (f"/news/{newer.id}", {})):
            first = await client.get(url, params=query)
            etag = first.headers["etag"]
            assert etag.startswith('W/"') and first.headers["cache-control"] == "no-cache"
            again = await client.get(url, params=query, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
            other = await client.get(url, params=query, headers={"If-None-Match": 'W/"' + "0" * 32 + '"'})
            assert other.status_code == 200 and other.content == first.content
        assert (await client.get("/news/recent", params={"limit": 5})).headers["etag"] != etag

        # gzip when the client accepts it and the answer is large enough; the same JSON either way.
        plain = await client.get("/news/recent", params={"limit": 50}, headers={"Accept-Encoding": "identity"})
        zipped = await client.get("/news/recent", params={"limit": 50}, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers
        assert zipped.headers["content-encoding"] == "gzip" and zipped.json() == plain.json()
        assert int(zipped.headers["content-length"]) < len(plain.content) // 2
        assert zipped.headers["etag"] == plain.headers["etag"]  # weak: the same content, either coding
        small = await client.get("/news/recent", params={"limit": 1}, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers  # under GZIP_MIN_BYTES: not worth compressing

        bad_params: list[tuple[str, dict[str, str | int]]] = [
            ("/news/recent", {"view": "everything"}),
            ("/news/recent", {"limit": 0}),
            ("/news/recent", {"limit": 201}),
            ("/news/recent", {"sentiment": "happy"}),
            ("/news/recent", {"cursor": "garbage"}),
            ("/news/top", {"cursor": "r_1714567890.5_" + "a" * 32}),  # a cursor of the other list
            ("/stats/sentiment", {"bucket": "0"}),
            ("/stats/sentiment", {"until": "0.5"}),
            ("/news/top", {"since": "yesterday"}),
            ("/news/top", {"source": "   "}),
            ("/stats/sentiment", {"bucket": "7m"}),
            ("/stats/sentiment", {"window": "forever"}),
            ("/trends", {"window": "1h"}),
            ("/trends", {"limit": 0}),
        ]
        for path, params in bad_params:
            r = await client.get(path, params=params)
            assert r.status_code == 422, (path, params, r.text)
            assert r.json()["detail"][0]["loc"][0] == "query"

        metrics = (await client.get("/metrics")).text
        assert 'news_stored_total{result="created"} 13.0' in metrics
        assert 'news_stored_total{result="duplicate"} 3.0' in metrics
        assert "consumer_dead_lettered_total 1.0" in metrics

    # Statistics come from the worker's windowed tables (written here the way the worker writes them).
    stats = StatsStore(redis, prefix=redis_settings.key_prefix)
    now = time.time()
    window = int(now // 300) * 300
    await stats.put_sentiment(window, "Example News", SentimentCounts(positive=2, negative=1, score_sum=0.5))
    await stats.put_trends("keyword", {(int(now // 60) * 60 - 840, "election"): 4})
    await stats.put_trends("entity", {(int(now // 60) * 60 - 840, entity_member("Acme", "ORG")): 3})
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        body = (await client.get("/stats/sentiment", params={"window": "1h", "bucket": "1h"})).json()
        assert [(b["positive"], b["negative"], b["count"]) for b in body["buckets"]] == [(2, 1, 3)]
        assert body["bucket_seconds"] == 3600
        by_source = (await client.get("/stats/sentiment", params={"source": "Nobody"})).json()
        assert by_source["buckets"] == []
        trends = (await client.get("/trends", params={"limit": 5})).json()
        assert trends["keywords"] == [{"term": "election", "count": 4, "type": None}]
        assert trends["entities"] == [{"term": "Acme", "count": 3, "type": "ORG"}]


# --- two replicas: fan-out to both, resume on the other one ---------------------------------------


async def test_two_replicas_deliver_everything_and_resume_is_exact(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    one = spawn("consumer", "consumer-1")
    two = spawn("consumer", "consumer-2")
    first = [make_article(i) for i in range(10)]
    async with websockets.connect(ws_url(one)) as a, websockets.connect(ws_url(two)) as b:
        await next_message(a)
        await next_message(b)
        await produce(kafka_settings, first)
        got_a = await collect_new(a, 10)
        got_b = await collect_new(b, 10)
        assert {m["data"]["id"] for m in got_a} == {m["data"]["id"] for m in got_b} == {x.id for x in first}
        cursor = got_a[-1]["cursor"]
        assert cursor == max((m["cursor"] for m in got_b), key=lambda c: tuple(map(int, c.split("-"))))

    # While the client is away: five articles (one of them twice), then it comes back on the other replica.
    missed = [make_article(i) for i in range(10, 15)]
    await produce(kafka_settings, [*missed, missed[0]])
    await wait_stored(f"http://127.0.0.1:{two.port}", 15)
    async with websockets.connect(ws_url(two, f"?since={cursor}")) as c:
        initial = await next_message(c)
        assert initial["type"] == "initial_data" and initial["resumed"] is True
        ids = [x["id"] for x in initial["data"]]
        assert sorted(ids) == sorted(x.id for x in missed)  # exactly the missed ones, each once
        after = make_article(99)
        await produce(kafka_settings, [after])
        (live,) = await collect_new(c, 1)
        assert live["data"]["id"] == after.id
        await assert_silent(c, 1.0)

    # A cursor too old to resume exactly (or not a cursor) says so, with the current snapshot.
    async with websockets.connect(ws_url(one, "?since=1-0")) as d:
        initial = await next_message(d)
        assert initial["resumed"] is True and len(initial["data"]) == 16  # 1-0 is still covered by the stream
    async with websockets.connect(ws_url(one, "?since=nonsense")) as e:
        assert (await next_message(e))["type"] == "error"
        initial = await next_message(e)
        assert initial["resumed"] is False and initial["cursor"]


# --- a slow client ------------------------------------------------------------------------------


async def test_slow_client_never_delays_a_fast_one(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    consumer = spawn("consumer", env={"CONSUMER__WS_QUEUE_SIZE": "8"})
    # The slow client reads nothing after connecting, through a small receive buffer and without
    # compression, so the server's writes to it block once the kernel's buffers (a few MB) are full.
    sock = socket.create_connection(("127.0.0.1", consumer.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    n = 400
    big = "x" * 19_000
    articles = [make_article(i, content=f"{i} {big}") for i in range(n)]
    async with websockets.connect(
        ws_url(consumer), sock=sock, max_queue=1, max_size=None, compression=None, ping_interval=None
    ) as slow:
        await next_message(slow)
        async with websockets.connect(ws_url(consumer), max_size=None) as fast:
            await next_message(fast)
            start = time.monotonic()
            await produce(kafka_settings, articles)
            got = await collect_new(fast, n, timeout=60)
            elapsed = time.monotonic() - start
            print(f"fast client got {n} in {elapsed:.1f}s")
            assert {m["data"]["id"] for m in got} == {a.id for a in articles}
        # Now the slow one reads: a lagged notice says how many it lost.
        seen: list[dict[str, Any]] = []
        while True:
            try:
                seen.append(await next_message(slow, 2))
            except TimeoutError:
                break
    lagged = [m for m in seen if m["type"] == "lagged"]
    delivered = [m for m in seen if m["type"] == "new_analysis"]
    assert lagged, f"{len(delivered)} delivered, nothing dropped"
    assert sum(m["dropped"] for m in lagged) + len(delivered) == n
    assert elapsed < 30
    metrics = httpx.get(f"http://127.0.0.1:{consumer.port}/metrics").text
    assert "ws_messages_dropped_total 0.0" not in metrics


# --- auth ----------------------------------------------------------------------------------------


async def test_token_auth_on(spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings) -> None:
    consumer = spawn("consumer", env={"API_TOKEN": "s3cret-token"})
    base = f"http://127.0.0.1:{consumer.port}"
    good = {"Authorization": "Bearer s3cret-token"}
    await produce(kafka_settings, [make_article(1)])
    await wait_stored(base, 1, headers=good)
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for path in ("/", "/news/recent", "/news/top", "/news/" + make_article(1).id, "/stats/sentiment", "/trends"):
            assert (await client.get(path)).status_code == 401, path
            wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
            assert (await client.get(path, headers=good)).status_code == 200, path
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200, path
        schema = (await client.get("/openapi.json")).json()
        assert "HTTPBearer" in schema["components"]["securitySchemes"]
    # A token in a URL is refused (access logs write URLs): the socket takes a single-use ticket.
    for query in ("", "?token=nope", "?token=s3cret-token"):
        async with websockets.connect(ws_url(consumer, query)) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    ticket = httpx.post(f"{base}/ws/ticket", headers=good).json()["ticket"]
    async with websockets.connect(ws_url(consumer, f"?ticket={ticket}")) as ws:
        initial = await next_message(ws)
        assert initial["type"] == "initial_data" and len(initial["data"]) == 1


async def test_token_auth_off_everything_open(spawn: Callable[..., ServiceProcess]) -> None:
    consumer = spawn("consumer")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{consumer.port}", timeout=10) as client:
        for path in ("/", "/news/recent", "/news/top", "/stats/sentiment", "/trends", "/healthz", "/metrics"):
            assert (await client.get(path, headers={"Authorization": "Bearer anything"})).status_code == 200, path
        assert "securitySchemes" not in (await client.get("/openapi.json")).json().get("components", {})
    async with websockets.connect(ws_url(consumer, "?token=whatever")) as ws:
        assert (await next_message(ws))["type"] == "initial_data"


# --- start-up --------------------------------------------------------------------------------------


async def test_start_up_failing_half_way_closes_what_it_opened(
    redis: Redis, redis_settings: RedisSettings, namespace: str
) -> None:
    """Redis opened, then Kafka does not answer: a clear error, and the Redis connection is closed."""
    name = f"{namespace}-startup"
    kafka = free_port()  # nothing listens there
    settings = ConsumerSettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{kafka}"),
        redis=RedisSettings(url=f"{redis_settings.url}?client_name={name}", key_prefix=redis_settings.key_prefix),
        consumer=ConsumerConfig(startup_timeout=3.0),
    )
    app = create_app(settings, CollectorRegistry())

    async def connections() -> int:
        return sum(c["name"] == name for c in await redis.client_list())

    async def start() -> None:
        async with app.router.lifespan_context(app):
            raise AssertionError("started without Kafka")

    starting = asyncio.create_task(start())
    deadline = time.monotonic() + 3
    while not await connections():  # opened: its connection is there while it waits for Kafka
        assert time.monotonic() < deadline and not starting.done(), "the consumer never connected to Redis"
        await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError, match=rf"Kafka at 127\.0\.0\.1:{kafka} did not answer within 3s"):
        await starting
    assert await connections() == 0, "start-up failed and left its Redis connection open"


# --- the OpenAPI document, fuzzed ----------------------------------------------------------------


async def test_schemathesis_every_check_passes(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, search_env: dict[str, str]
) -> None:
    """The document says exactly what the consumer accepts and answers: every schemathesis check, including
    that every request the document allows is accepted (positive_data_acceptance) and every one it forbids
    is refused (negative_data_rejection). A fixed seed, so CI sees the same cases each run. With a real
    OpenSearch behind /search and the archive (a 503 would fail `not_a_server_error`)."""
    # Imported here: that module imports this one's helpers.
    from tests.integration.test_consumer_stories import produce_updates, updates_for

    consumer = spawn("consumer", env=search_env)
    articles = [make_article(i, entities=("Acme",)) for i in range(5)]
    await produce(kafka_settings, articles)
    await wait_stored(f"http://127.0.0.1:{consumer.port}", 5)
    # Two stories, so the story routes and /news/top's story ranking answer with data, not only empty lists.
    await produce_updates(kafka_settings, [*updates_for(articles[:3]), *updates_for(articles[3:])])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{consumer.port}", timeout=5) as client:
        deadline = time.monotonic() + 30
        while len((await client.get("/stories")).json()) < 2:
            assert time.monotonic() < deadline, "the stories were not stored"
            await asyncio.sleep(0.2)
    # FUZZ_SEED (a number, or "random") and FUZZ_MAX_EXAMPLES make a longer randomised run (make chaos).
    seed = os.environ.get("FUZZ_SEED", "20240501")
    examples = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"http://127.0.0.1:{consumer.port}/openapi.json",
        "--checks",
        "all",
        *([] if seed == "random" else ["--seed", seed]),
        "--max-examples",
        str(examples),
        "--workers",
        "2",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "10",
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90 + examples)
    print(out.decode()[-3000:])  # the summary: operations, cases, checks
    assert proc.returncode == 0, out.decode()[-6000:]
