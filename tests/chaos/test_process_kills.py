"""SIGKILL a stream worker mid-batch and a consumer mid-stream, restart them: nothing lost, nothing shown twice."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from tests.support.chaos import Outcome, WsWatcher, analyzed, stored_ids, wait_until
from tests.support.worker_support import fake_inference, produce, read_topic, real_articles

WORKER = {
    "WORKER__BATCH_SIZE": "5",
    "WORKER__BATCH_TIMEOUT": "0.2",
    "WORKER__SESSION_TIMEOUT": "6",  # the killed member's partitions are reassigned after this
}


async def _count_stored(base: str, expected: set[str]) -> int:
    return len(expected & set(await stored_ids(base)))


async def test_worker_sigkill_mid_batch(spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings) -> None:
    n = 60
    articles = real_articles(n)
    expected = {a.id for a in articles}
    inference = fake_inference()
    inference.mode, inference.slow_s = "slow", 0.3  # every batch is in flight for a while: a kill lands in one
    env = {**WORKER, "WORKER__INFERENCE_URL": inference.url}
    try:
        consumer = spawn("consumer")
        base = f"http://127.0.0.1:{consumer.port}"
        watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()
        worker = spawn("worker", env=env)
        await produce(
            kafka_settings,
            kafka_settings.topics.raw_topic,
            [(a.id.encode(), a.model_dump_json().encode()) for a in articles],
        )
        await wait_until(lambda: _at_least(base, expected, 10), 60, "first articles stored")
        worker.kill()
        before = await _count_stored(base, expected)
        restarted = time.monotonic()
        worker.start()
        worker.wait_ready()
        await wait_until(lambda: _at_least(base, expected, n), 120, "every article stored after the restart")
        recovery = time.monotonic() - restarted
        await asyncio.sleep(1.0)  # late re-deliveries would show up now
        listed = await stored_ids(base)
        await watcher.stop()
    finally:
        inference.stop()

    outcome = Outcome(
        "worker-sigkill", "stream worker SIGKILLed mid-batch, restarted", n, recovery_s=round(recovery, 1)
    )
    outcome.count(expected, listed)
    outcome.duplicates_ws = watcher.duplicates
    records = await read_topic(kafka_settings, kafka_settings.topics.analyzed_topic, until=lambda rs: len(rs) >= n)
    reanalysed = len(records) - len({r.key for r in records})
    outcome.notes.append(
        f"{before} of {n} stored when killed; {reanalysed} article(s) analysed twice (produced, not yet committed)"
    )
    outcome.write()
    assert before < n, "the worker finished before it was killed: slow the batches down"
    assert outcome.lost == 0 and outcome.stored == n
    assert outcome.duplicates_rest == 0
    assert watcher.deliveries.keys() >= expected
    assert outcome.duplicates_ws == 0, f"ids delivered twice over WebSocket: {watcher.deliveries.most_common(3)}"


def _engine_children(pid: int) -> list[int]:
    """The engine's pool processes under a worker (multiprocessing's spawned children, not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


async def test_engine_process_sigkill_in_worker(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    """The worker's in-process engine runs on 2 processes; one is SIGKILLed while articles flow."""
    n = 200
    articles = real_articles(n)
    expected = {a.id for a in articles}
    env = {**WORKER, "INFERENCE__TIER": "fast", "INFERENCE__PROCESSES": "2"}
    consumer = spawn("consumer")
    base = f"http://127.0.0.1:{consumer.port}"
    worker = spawn("worker", env=env)
    assert worker.proc is not None

    async def stream() -> None:  # 200 articles over about 4 s
        for i in range(0, n, 10):
            chunk = articles[i : i + 10]
            await produce(
                kafka_settings,
                kafka_settings.topics.raw_topic,
                [(a.id.encode(), a.model_dump_json().encode()) for a in chunk],
            )
            await asyncio.sleep(0.2)

    feeder = asyncio.create_task(stream())
    await wait_until(lambda: _at_least(base, expected, 20), 60, "first articles stored")
    children = _engine_children(worker.proc.pid)
    assert len(children) == 2, f"expected 2 engine processes under the worker, found {children}"
    os.kill(children[0], signal.SIGKILL)
    killed = time.monotonic()
    await feeder
    await wait_until(lambda: _at_least(base, expected, n), 90, "every article stored after the engine process died")
    recovery = time.monotonic() - killed
    listed = await stored_ids(base)
    after = _engine_children(worker.proc.pid)

    outcome = Outcome("engine-process-sigkill", "one of the worker's 2 engine processes SIGKILLed mid-stream", n)
    outcome.recovery_s = round(recovery, 1)
    outcome.count(expected, listed)
    outcome.notes.append(f"the worker kept running (pid {worker.proc.pid}); engine processes after: {len(after)}")
    outcome.write()
    assert worker.proc.poll() is None, "the worker died with its engine process"
    assert outcome.lost == 0 and outcome.stored == n and outcome.duplicates_rest == 0
    assert children[0] not in after and after, f"engine processes after the kill: {after}"
    assert "restarting the pool" in worker.tail(400)


async def _at_least(base: str, expected: set[str], k: int) -> bool:
    return await _count_stored(base, expected) >= k


async def test_consumer_sigkill_mid_stream(spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings) -> None:
    n = 150
    articles = [analyzed(a, i) for i, a in enumerate(real_articles(n))]
    expected = {a.id for a in articles}
    topic = kafka_settings.topics.analyzed_topic
    consumer = spawn("consumer")
    base = f"http://127.0.0.1:{consumer.port}"
    watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()

    async def stream() -> None:  # 150 articles over about 7.5 s
        for i in range(0, n, 10):
            chunk = articles[i : i + 10]
            await produce(kafka_settings, topic, [(a.id.encode(), a.model_dump_json().encode()) for a in chunk])
            await asyncio.sleep(0.5)

    feeder = asyncio.create_task(stream())
    await wait_until(lambda: _at_least(base, expected, 30), 60, "first articles stored")
    consumer.kill()
    before_restart = time.monotonic()
    await asyncio.sleep(1.0)  # the stream goes on while it is down
    consumer.start()
    consumer.wait_ready()
    await feeder
    await wait_until(lambda: _at_least(base, expected, n), 60, "every article stored after the restart")
    recovery = time.monotonic() - before_restart
    await asyncio.sleep(1.0)
    listed = await stored_ids(base)
    await watcher.stop()

    outcome = Outcome("consumer-sigkill", "consumer SIGKILLed mid-stream, restarted after 1 s", n)
    outcome.recovery_s = round(recovery, 1)
    outcome.count(expected, listed)
    outcome.duplicates_ws = watcher.duplicates
    outcome.notes.append(
        f"the dashboard client reconnected {watcher.reconnects} time(s) with ?since=, "
        f"resumed exactly: {watcher.resumed}; the new consumer waits out the dead member's Kafka session"
    )
    outcome.write()
    assert outcome.lost == 0 and outcome.duplicates_rest == 0
    assert watcher.deliveries.keys() >= expected, (
        f"{len(expected - watcher.deliveries.keys())} never reached the client"
    )
    assert outcome.duplicates_ws == 0, f"ids delivered twice over WebSocket: {watcher.deliveries.most_common(3)}"


async def test_reanalysis_is_not_delivered_twice_over_websocket(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    """What a worker crash leaves in `news.analyzed`: the same article analysed twice, moments apart."""
    article = real_articles(1)[0]
    first = analyzed(article)
    again = first.model_copy(update={"analyzed_at": first.analyzed_at + timedelta(seconds=5)})
    consumer = spawn("consumer")
    watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()
    topic = kafka_settings.topics.analyzed_topic
    for version in (first, again):
        await produce(kafka_settings, topic, [(version.id.encode(), version.model_dump_json().encode())])
        await asyncio.sleep(1.0)
    await watcher.stop()
    assert await stored_ids(f"http://127.0.0.1:{consumer.port}") == [article.id]
    assert watcher.deliveries == {article.id: 1}
