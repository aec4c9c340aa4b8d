"""The stream worker as a real process on real Kafka: articles, poison, crashes, rebalances, outages."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from common.schemas import DeadLetter, RawArticle
from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from tests.support.worker_support import fake_inference, produce, read_topic, real_articles

pytestmark = pytest.mark.integration

QUICK = {
    "WORKER__BATCH_SIZE": "5",
    "WORKER__BATCH_TIMEOUT": "0.2",
    "WORKER__LAG_INTERVAL": "1",
    "WORKER__SESSION_TIMEOUT": "6",  # a SIGKILLed member is noticed quickly
}
IN_PROCESS = {**QUICK, "INFERENCE__TIER": "fast"}


def encoded(articles: list[RawArticle]) -> list[tuple[bytes, bytes]]:
    return [(a.id.encode(), a.model_dump_json().encode()) for a in articles]


def ids_of(records: list[Any]) -> set[str]:
    return {r.key.decode() for r in records}


def distinct(n: int) -> Callable[[list[Any]], bool]:
    return lambda records: len(ids_of(records)) >= n


def metric(worker: ServiceProcess, name: str) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{worker.port}/metrics", timeout=5).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)
    }


async def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.3)


async def test_real_articles_flow_and_poison_goes_to_dlq(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    topics = kafka_settings.topics
    articles = real_articles(20)
    worker = spawn("worker", env=IN_PROCESS)
    poison = [
        (b"p-not-json", b"\xff\xfe this is not JSON"),
        (b"p-schema", orjson.dumps({"title": "no url, no date"})),
        (b"p-huge", os.urandom(10 * 1024 * 1024)),
    ]
    good = encoded(articles)
    await produce(kafka_settings, topics.raw_topic, good[:10] + poison + good[10:])

    analyzed = await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(20), timeout=90)
    assert ids_of(analyzed) == {a.id for a in articles}
    sample = orjson.loads(analyzed[0].value)
    assert sample["analysis"]["sentiment"] in {"positive", "neutral", "negative"}

    letters = await read_topic(kafka_settings, topics.dlq_topic, until=lambda rs: len(rs) >= 3, timeout=30)
    by_key = {r.key: DeadLetter.model_validate_json(r.value) for r in letters}
    assert by_key.keys() == {b"p-not-json", b"p-schema", b"p-huge"}
    assert "Invalid JSON" in by_key[b"p-not-json"].error
    assert by_key[b"p-not-json"].original_bytes() == poison[0][1]
    assert "url" in by_key[b"p-schema"].error and "Field required" in by_key[b"p-schema"].error
    assert f"message of {10 * 1024 * 1024} bytes" in by_key[b"p-huge"].error
    assert all(letter.stage == "stream_worker" and letter.attempts == 1 for letter in by_key.values())

    counters = metric(worker, "worker_")
    assert counters["worker_processed_total"] == 20
    assert counters['worker_dead_lettered_total{reason="not_json"}'] == 2
    assert counters['worker_dead_lettered_total{reason="invalid"}'] == 1
    assert counters["worker_batch_size_count"] >= 4
    await wait_for(lambda: len([k for k in metric(worker, "worker_consumer_lag{") if "news.raw" in k]) == 3)


async def test_sigkill_mid_stream_loses_nothing(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    topics = kafka_settings.topics
    n = 60
    articles = real_articles(n)
    server = fake_inference()
    server.mode, server.slow_s = "slow", 0.25
    env = {**QUICK, "WORKER__INFERENCE_URL": server.url}
    try:
        worker = spawn("worker", env=env)
        await produce(kafka_settings, topics.raw_topic, encoded(articles))
        first = await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(10), timeout=60)
        worker.kill()  # SIGKILL with batches in flight and uncommitted offsets
        done_before = len(ids_of(first))
        assert done_before < n, "the worker finished before it could be killed: make batches slower"

        server.slow_s = 0.01
        spawn("worker", env=env)
        analyzed = await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(n), timeout=90)
    finally:
        server.stop()
    assert ids_of(analyzed) == {a.id for a in articles}  # duplicates allowed, nothing missing


async def test_exactly_once_on_real_kafka(spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings) -> None:
    topics = kafka_settings.topics
    articles = real_articles(15)
    server = fake_inference()
    try:
        spawn(
            "worker",
            env={**QUICK, "WORKER__INFERENCE_URL": server.url, "WORKER__PROCESSING_GUARANTEE": "exactly_once"},
        )
        await produce(kafka_settings, topics.raw_topic, encoded(articles))
        analyzed = await read_topic(
            kafka_settings, topics.analyzed_topic, until=distinct(15), timeout=90, isolation_level="read_committed"
        )
    finally:
        server.stop()
    assert ids_of(analyzed) == {a.id for a in articles}
    assert len(analyzed) == 15  # committed transactions only, no duplicates without a crash


async def test_two_workers_then_one_leaves(spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings) -> None:
    topics = kafka_settings.topics
    n = 60
    articles = real_articles(n)
    server = fake_inference()
    server.mode, server.slow_s = "slow", 0.1
    env = {**QUICK, "WORKER__INFERENCE_URL": server.url}
    try:
        stays = spawn("worker", env=env)
        leaves = spawn("worker", env=env)

        def raw_partitions(worker: ServiceProcess) -> set[str]:
            return {k for k in metric(worker, "worker_consumer_lag{") if topics.raw_topic in k}

        def shared() -> bool:
            mine, theirs = raw_partitions(stays), raw_partitions(leaves)
            return bool(mine) and bool(theirs) and len(mine | theirs) == 3 and not mine & theirs

        await wait_for(shared, timeout=60)  # the group shares the three partitions
        await produce(kafka_settings, topics.raw_topic, encoded(articles))
        await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(10), timeout=60)
        leaves.stop()  # SIGTERM: finishes its batch, commits, leaves the group
        assert leaves.proc is not None and leaves.proc.returncode is not None
        await wait_for(lambda: len(raw_partitions(stays)) == 3, timeout=60)
        analyzed = await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(n), timeout=90)
    finally:
        server.stop()
    assert ids_of(analyzed) == {a.id for a in articles}
    # The leaver closed its analyser only after its agent stopped: a batch that met a closed client
    # would have dead-lettered its articles (analysis_failed).
    log = leaves.log_path.read_text(errors="replace")
    assert log.rindex("agents.analyze_raw]: Stopping") < log.rindex("worker context closed")
    assert not await read_topic(kafka_settings, topics.dlq_topic, timeout=1)


async def test_outage_pauses_and_bad_article_is_dead_lettered_with_attempts(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    topics = kafka_settings.topics
    articles = real_articles(20)
    bad = RawArticle.model_validate(
        {"url": "https://example.com/poison", "title": "POISON pill", "published_at": "2024-01-01T00:00:00Z"}
    )
    server = fake_inference()
    env = {
        **QUICK,
        "WORKER__INFERENCE_URL": server.url,
        "WORKER__MAX_ATTEMPTS": "3",
        "WORKER__RETRY_BACKOFF": "0.05",
        "WORKER__OUTAGE_BACKOFF_MAX": "1",
    }
    try:
        worker = spawn("worker", env=env)
        await produce(kafka_settings, topics.raw_topic, encoded(articles[:10] + [bad]))
        await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(10), timeout=60)
        letters = await read_topic(kafka_settings, topics.dlq_topic, until=lambda rs: len(rs) >= 1, timeout=30)
        letter = DeadLetter.model_validate_json(letters[0].value)
        assert letter.original_key == bad.id and letter.attempts == 3
        assert "422" in letter.error and letter.first_failure <= letter.last_failure

        server.mode = "500"  # the engine goes down mid-stream
        await produce(kafka_settings, topics.raw_topic, encoded(articles[10:]))
        await wait_for(lambda: metric(worker, "worker_backpressure").get("worker_backpressure") == 1.0)
        await asyncio.sleep(2)
        during = await read_topic(kafka_settings, topics.analyzed_topic, timeout=1)
        assert len(ids_of(during)) == 10  # nothing analysed, nothing dropped while it is down

        server.mode = "ok"
        analyzed = await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(20), timeout=60)
        assert ids_of(analyzed) == {a.id for a in articles}
        await wait_for(lambda: metric(worker, "worker_backpressure").get("worker_backpressure") == 0.0)
        letters = await read_topic(kafka_settings, topics.dlq_topic, timeout=1)
        assert len(letters) == 1  # the outage flooded nothing into the DLQ
    finally:
        server.stop()


async def test_sigterm_during_outage_gives_the_batch_back(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    topics = kafka_settings.topics
    articles = real_articles(10)
    server = fake_inference()
    server.mode = "500"
    env = {**QUICK, "WORKER__INFERENCE_URL": server.url, "WORKER__OUTAGE_BACKOFF_MAX": "1"}
    try:
        worker = spawn("worker", env=env)
        await produce(kafka_settings, topics.raw_topic, encoded(articles))
        await wait_for(lambda: metric(worker, "worker_backpressure").get("worker_backpressure") == 1.0)
        started = time.monotonic()
        worker.stop()  # SIGTERM while a batch waits out the outage
        assert worker.proc is not None and worker.proc.returncode is not None
        assert time.monotonic() - started < 25, "shutdown hung on the outage"

        server.mode = "ok"
        spawn("worker", env=env)
        analyzed = await read_topic(kafka_settings, topics.analyzed_topic, until=distinct(10), timeout=60)
    finally:
        server.stop()
    assert ids_of(analyzed) == {a.id for a in articles}
    assert not await read_topic(kafka_settings, topics.dlq_topic, timeout=1)
