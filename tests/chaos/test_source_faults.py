"""News sources that error, hang, serve 50 MB or garbage, beside two healthy feeds: the healthy ones keep
flowing into `news.raw`, each new item once, and the producer stays responsive with bounded memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from tests.support.chaos import Outcome, rss_mb
from tests.support.fake_news import FeedItem, NewsServer, rss_feed

ROUNDS = 4
PER_ROUND = 5


def _items(feed: str, upto: int) -> list[FeedItem]:
    base = datetime(2024, 11, 26, 9, tzinfo=UTC)
    return [
        FeedItem(
            f"{feed} story {i}",
            f"https://{feed}.example.org/news/{i}",
            f"Lead of {feed} story {i}.",
            base + timedelta(minutes=i),
        )
        for i in range(upto)
    ]


def _huge_feed(megabytes: int) -> bytes:
    filler = "x" * (megabytes * 2**20)
    return rss_feed("huge", [FeedItem("huge story", "https://huge.example.org/1", filler)])


async def test_bad_sources_do_not_stop_the_good_ones(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    server = NewsServer()
    serving = server.serve()
    next(serving)
    try:
        for good in ("good-a", "good-b"):
            server.set_feed(good, rss_feed(good, _items(good, PER_ROUND)))
        server.set_feed("erroring", b"", status=500)
        server.set_feed("hanging", rss_feed("hanging", _items("hanging", 2)), delay=60)
        server.set_feed("huge", _huge_feed(50))
        server.set_feed("malformed", b"\x00\xff{ this is neither RSS nor Atom <<<")
        feeds = [
            {"url": server.feed_url(n), "name": n}
            for n in ("good-a", "good-b", "erroring", "hanging", "huge", "malformed")
        ]
        producer = spawn(
            "producer",
            env={
                "PRODUCER__RSS_FEEDS": json.dumps(feeds),
                "PRODUCER__RSS_INTERVAL_SECONDS": "1",
                "PRODUCER__HTTP_TIMEOUT_SECONDS": "2",
                "PRODUCER__RETRY_ATTEMPTS": "2",
                "PRODUCER__RETRY_MAX_WAIT_SECONDS": "0.5",
                "PRODUCER__MAX_BACKOFF_SECONDS": "2",
            },
        )
        assert producer.proc is not None
        pid = producer.proc.pid
        base = f"http://127.0.0.1:{producer.port}"
        health: list[float] = []
        memory: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:  # /healthz latency and memory, every 0.2 s
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    await client.get("/healthz")
                    health.append(time.monotonic() - started)
                    memory.append(rss_mb(pid))
                    await asyncio.sleep(0.2)

        prober = asyncio.create_task(probe())
        arrived: dict[str, float] = {}
        titles: Counter[str] = Counter()
        reader = asyncio.create_task(_read(kafka_settings, arrived, titles, stop))
        appeared = {f"{g} story {i}": time.monotonic() for g in ("good-a", "good-b") for i in range(PER_ROUND)}
        for round_ in range(1, ROUNDS):
            await asyncio.sleep(3.0)
            for good in ("good-a", "good-b"):
                upto = PER_ROUND * (round_ + 1)
                server.set_feed(good, rss_feed(good, _items(good, upto)))
                for i in range(upto - PER_ROUND, upto):
                    appeared[f"{good} story {i}"] = time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not appeared.keys() <= arrived.keys():
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # a late duplicate would arrive now
        stop.set()
        await prober
        await reader
        status = httpx.get(base + "/", timeout=10).json()["sources"]
    finally:
        with contextlib.suppress(StopIteration):
            next(serving)

    good_titles = {t: n for t, n in titles.items() if t in appeared}
    delays = [arrived[t] - appeared[t] for t in appeared if t in arrived]
    outcome = Outcome(
        "source-faults", "sources: HTTP 500, hanging, 50 MB feed, malformed feed; 2 healthy feeds", len(appeared)
    )
    outcome.stored = len(good_titles)
    outcome.lost = len(appeared.keys() - good_titles.keys())
    outcome.duplicates_rest = sum(n - 1 for n in good_titles.values())
    outcome.recovery_s = round(max(delays), 1) if delays else None
    errors = {name: (s["last_error_code"], s["polls"]) for name, s in status.items()}
    outcome.notes.append(
        f"counted in news.raw; recovery = longest item appearance -> in Kafka; producer /healthz worst "
        f"{max(health):.2f} s, peak memory {max(memory):.0f} MiB; per source (last error, polls): {errors}"
    )
    outcome.write()
    assert outcome.lost == 0 and outcome.duplicates_rest == 0
    assert max(delays) < 15
    for bad, code in (("erroring", "http_500"), ("hanging", "timeout"), ("malformed", "malformed")):
        assert status[bad]["last_error_code"] == code, (bad, status[bad])
    assert max(memory) < 600, f"peak memory {max(memory):.0f} MiB"
    # The producer's responsiveness with the 50 MB feed is held by test_huge_feed_does_not_block_the_producer.


async def _read(kafka: KafkaSettings, arrived: dict[str, float], titles: Counter[str], stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        kafka.topics.raw_topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    title = orjson.loads(r.value)["title"]
                    titles[title] += 1
                    arrived.setdefault(title, time.monotonic())
    finally:
        await consumer.stop()


async def test_huge_feed_does_not_block_the_producer(spawn: Callable[..., ServiceProcess]) -> None:
    server = NewsServer()
    serving = server.serve()
    next(serving)
    try:
        server.set_feed("huge", _huge_feed(50))
        feeds = [{"url": server.feed_url("huge"), "name": "huge"}]
        producer = spawn("producer", env={"PRODUCER__RSS_FEEDS": json.dumps(feeds), "PRODUCER__POLLING": "false"})
        base = f"http://127.0.0.1:{producer.port}"
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            poll = asyncio.create_task(client.post("/fetch-now"))
            worst = 0.0
            while not poll.done():
                started = time.monotonic()
                await client.get("/healthz")
                worst = max(worst, time.monotonic() - started)
                await asyncio.sleep(0.05)
            await poll
    finally:
        with contextlib.suppress(StopIteration):
            next(serving)
    assert worst < 0.5, f"/healthz took {worst:.2f} s while a 50 MB feed was read"
