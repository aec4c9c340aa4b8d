"""Stop and restart the Kafka broker and Redis in the middle of a stream (slow: each starts its own broker).

Both run on a Kafka or Redis of their own (free ports, data dirs under tmp_path): the shared instances
other tests use are never stopped. Services get the dedicated address through their environment.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from itertools import islice
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from common.schemas import RawArticle
from common.settings import KafkaSettings
from harness.infra import ROOT
from harness.processes import ServiceProcess
from tests.support.chaos import DedicatedKafka, DedicatedRedis, Outcome, WsWatcher, analyzed, stored_ids, wait_until
from tests.support.worker_support import produce, real_articles

WORKER = {
    "INFERENCE__TIER": "fast",
    "WORKER__BATCH_SIZE": "10",
    "WORKER__BATCH_TIMEOUT": "0.2",
    "WORKER__SESSION_TIMEOUT": "6",
}


async def _all_stored(base: str, expected: set[str]) -> bool:
    return expected <= set(await stored_ids(base))


def _push_item(article: RawArticle) -> dict[str, object]:
    return {
        "url": article.url,
        "title": article.title,
        "description": article.description,
        "source": article.source,
        "published_at": article.published_at.isoformat(),
    }


@pytest.mark.slow_chaos
async def test_kafka_broker_restart_mid_stream(spawn: Callable[..., ServiceProcess], tmp_path: Path) -> None:
    """Producer, worker and consumer keep running while the broker goes away for a few seconds."""
    kafka = DedicatedKafka(tmp_path / "kafka")
    kafka.start()
    try:
        env = {"KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap}
        consumer = spawn("consumer", env=env)
        spawn("worker", env={**env, **WORKER})
        producer = spawn("producer", env={**env, "PRODUCER__POLLING": "false"})
        base = f"http://127.0.0.1:{consumer.port}"
        watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()

        n = 100
        articles = real_articles(n)
        expected = {a.id for a in articles}
        refused = 0  # push requests answered with an error during the outage (the client retried them)
        outage: dict[str, float] = {}

        async def push(batch: list[RawArticle]) -> None:
            nonlocal refused
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=60) as client:
                for i in range(0, len(batch), 5):
                    body = {"articles": [_push_item(a) for a in batch[i : i + 5]]}
                    while True:  # a client that retries until every item is accepted (or known)
                        try:
                            response = await client.post("/articles", json=body)
                        except httpx.HTTPError:
                            response = None
                        if response is not None and response.status_code == 200:
                            statuses = {item["status"] for item in response.json()["items"]}
                            if statuses <= {"accepted", "duplicate"}:
                                break
                        refused += 1
                        await asyncio.sleep(0.5)
                    await asyncio.sleep(0.1)

        await push(articles[:40])
        await wait_until(lambda: _at_least(base, expected, 20), 90, "first articles stored")
        outage["down"] = time.monotonic()
        await asyncio.to_thread(kafka.stop)
        during = asyncio.create_task(push(articles[40:70]))  # pushed while the broker is away
        await asyncio.sleep(3.0)
        await asyncio.to_thread(kafka.start)
        back = time.monotonic()
        await asyncio.wait_for(during, 180)
        await push(articles[70:])
        await wait_until(lambda: _all_stored(base, expected), 180, "every article stored after the broker restart")
        recovery = time.monotonic() - back
        await asyncio.sleep(1.0)
        listed = await stored_ids(base)
        await watcher.stop()
    finally:
        kafka.stop()

    outcome = Outcome("kafka-restart", "Kafka broker stopped for 3 s mid-stream, restarted", n, slow=True)
    outcome.recovery_s = round(recovery, 1)
    outcome.count(expected, listed)
    outcome.duplicates_ws = watcher.duplicates
    outcome.notes.append(
        f"broker down {back - outage['down']:.1f} s (stop, 3 s, start); 30 articles pushed during the outage, "
        f"{refused} push request(s) refused and retried by the client"
    )
    outcome.write()
    assert outcome.lost == 0 and outcome.duplicates_rest == 0
    assert watcher.deliveries.keys() >= expected
    assert outcome.duplicates_ws == 0, f"ids delivered twice over WebSocket: {watcher.deliveries.most_common(3)}"


async def _at_least(base: str, expected: set[str], k: int) -> bool:
    return len(expected & set(await stored_ids(base))) >= k


# An outage may cost a few lines a second (each client's failure once per window, reconnect notices); the
# flood it replaced was aiokafka's reconnect loop, thousands of lines a second for as long as the broker was away.
MAX_LINES_PER_OUTAGE_SECOND = 100


def _log_sizes(logs: Mapping[str, Path]) -> dict[str, int]:
    return {name: path.stat().st_size if path.exists() else 0 for name, path in logs.items()}


def _log_slice(path: Path, start: int, end: int) -> bytes:
    with path.open("rb") as f:
        f.seek(start)
        return f.read(end - start)


def _corpus_ids(limit: int) -> set[str]:
    """The ids `python -m producer.replay --limit <limit>` produces: the valid rows among the first `limit`."""
    from producer.corpus import read_corpus

    ids: set[str] = set()
    for item in islice(read_corpus(), limit):
        try:
            ids.add(RawArticle.model_validate(item).id)
        except ValidationError:
            continue  # replay rejects it to the dead-letter topic
    return ids


@pytest.mark.slow_chaos
async def test_kafka_outage_keeps_logs_bounded(
    spawn: Callable[..., ServiceProcess], service_env: dict[str, str], tmp_path: Path
) -> None:
    """A broker outage (stopped, 5 s, started) while a replay streams: every service's log stays under
    `MAX_LINES_PER_OUTAGE_SECOND` lines per second of outage, and nothing is lost or duplicated."""
    kafka = DedicatedKafka(tmp_path / "kafka")
    kafka.start()
    replay: subprocess.Popen[bytes] | None = None
    try:
        env = {"KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap}
        consumer = spawn("consumer", env=env)
        worker = spawn("worker", env={**env, **WORKER})
        producer = spawn("producer", env={**env, "PRODUCER__POLLING": "false"})
        base = f"http://127.0.0.1:{consumer.port}"
        watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()

        limit = 400
        expected = _corpus_ids(limit)
        logs = {p.name: p.log_path for p in (consumer, worker, producer)}
        logs["replay"] = tmp_path / "replay.log"
        with logs["replay"].open("ab") as out:
            replay = subprocess.Popen(
                [sys.executable, "-m", "producer.replay", "--limit", str(limit), "--rate", "20", "--no-progress"],
                cwd=ROOT,
                env={**os.environ, **service_env, **env, "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await wait_until(lambda: _at_least(base, expected, 20), 90, "first replayed articles stored")
        before = _log_sizes(logs)
        down = time.monotonic()
        await asyncio.to_thread(kafka.stop)
        await asyncio.sleep(5.0)
        await asyncio.to_thread(kafka.start)
        back = time.monotonic()
        # the clients' reconnection (and its summary lines) belongs to the outage too
        await asyncio.sleep(5.0)
        after = _log_sizes(logs)
        window = time.monotonic() - down
        assert await asyncio.to_thread(replay.wait, 180) == 0, logs["replay"].read_text(errors="replace")[-3000:]
        await wait_until(lambda: _all_stored(base, expected), 240, "every replayed article stored after the outage")
        recovery = time.monotonic() - back
        await asyncio.sleep(1.0)
        listed = await stored_ids(base)
        await watcher.stop()
    finally:
        if replay is not None and replay.poll() is None:
            replay.kill()
            replay.wait(timeout=30)
        kafka.stop()

    written = {name: _log_slice(logs[name], before[name], after[name]) for name in logs}
    lines = {name: chunk.count(b"\n") for name, chunk in written.items()}
    outage_s = back - down
    total = sum(lines.values())
    outcome = Outcome("kafka-outage-logs", "Kafka broker stopped for 5 s during a replay, restarted", len(expected))
    outcome.slow = True
    outcome.recovery_s = round(recovery, 1)
    outcome.count(expected, listed)
    outcome.duplicates_ws = watcher.duplicates
    outcome.notes.append(
        f"broker down {outage_s:.1f} s; {total} log lines ({sum(len(c) for c in written.values())} bytes) written "
        f"by the services in the {window:.1f} s from the stop to 5 s after the restart: "
        + ", ".join(f"{name.split('-')[0]} {n}" for name, n in lines.items())
    )
    outcome.write()
    print(outcome.notes[-1])
    noisiest = max(written, key=lambda name: lines[name])
    assert total < MAX_LINES_PER_OUTAGE_SECOND * outage_s, (
        f"{total} log lines in a {outage_s:.1f} s outage ({lines}); the noisiest ({noisiest}) ends with:\n"
        + written[noisiest].decode(errors="replace")[-3000:]
    )
    assert outcome.lost == 0 and outcome.duplicates_rest == 0
    assert watcher.deliveries.keys() >= expected
    assert outcome.duplicates_ws == 0, f"ids delivered twice over WebSocket: {watcher.deliveries.most_common(3)}"


@pytest.mark.slow_chaos
async def test_redis_restart_mid_stream_keeps_articles(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """Redis (AOF) stopped and started while articles arrive: what was stored survives, the rest follows."""
    redis = DedicatedRedis(tmp_path / "redis")
    redis.start()
    try:
        consumer = spawn("consumer", env={"REDIS__URL": redis.url})
        base = f"http://127.0.0.1:{consumer.port}"
        watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()
        n = 150
        articles = [analyzed(a, i) for i, a in enumerate(real_articles(n))]
        expected = {a.id for a in articles}

        async def stream() -> None:
            for i in range(0, n, 10):
                chunk = articles[i : i + 10]
                await produce(
                    kafka_settings,
                    kafka_settings.topics.analyzed_topic,
                    [(a.id.encode(), a.model_dump_json().encode()) for a in chunk],
                )
                await asyncio.sleep(0.5)

        feeder = asyncio.create_task(stream())
        await wait_until(lambda: _at_least(base, expected, 40), 60, "first articles stored")
        before = set(await stored_ids(base))
        down = time.monotonic()
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(3.0)
        await asyncio.to_thread(redis.start)
        back = time.monotonic()
        await feeder
        await wait_until(lambda: _all_stored(base, expected), 90, "every article stored after the Redis restart")
        recovery = time.monotonic() - back
        await asyncio.sleep(1.0)
        listed = await stored_ids(base)
        await watcher.stop()
    finally:
        redis.stop()

    outcome = Outcome("redis-restart", "Redis (AOF) stopped for 3 s mid-stream, restarted", n, slow=True)
    outcome.recovery_s = round(recovery, 1)
    outcome.count(expected, listed)
    outcome.duplicates_ws = watcher.duplicates
    survived = len(before & set(listed))
    outcome.notes.append(
        f"Redis down {back - down:.1f} s; {survived} of {len(before)} articles stored before the stop survived it"
    )
    outcome.write()
    assert survived == len(before)
    assert outcome.lost == 0 and outcome.duplicates_rest == 0
    assert watcher.deliveries.keys() >= expected
    assert outcome.duplicates_ws == 0, f"ids delivered twice over WebSocket: {watcher.deliveries.most_common(3)}"
