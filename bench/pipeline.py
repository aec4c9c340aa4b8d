"""Whole-pipeline benchmark on the real Kafka and Redis: replay -> Kafka -> stream worker(s) -> Kafka -> consumer
-> Redis -> WebSocket.

Runs, each on its own slice (topic prefix, key prefix, groups), with freshly started services:
1. `max`: the whole corpus replayed as fast as the producer goes, 1 worker; measured for a bounded window
   (BENCH_PIPELINE_SECONDS, default 100) or until every article is stored, whichever comes first;
2. `paced`: half the sustained rate of run 1 for BENCH_PACED_SECONDS (60): latency under steady load;
   `paced_flush`: the same with `WORKER__BATCH_TIMEOUT=BENCH_PACED_FLUSH` (1.0 s against the 0.2 s default; empty,
   or equal to the setting in force, skips it); every run records the batch size and timeout it ran with;
3. `workers2`: as run 1 with 2 workers, for BENCH_SCALE_SECONDS (60): the scaling shape.

Times: `fetched_at` is stamped by the producer when it validates an article, just before it sends it;
the store time is the Redis stream entry id of the article's event (Redis's clock, milliseconds; the same
host's clock); the WebSocket time is when the bench's client read the message. The workers' models are
warmed on 24 extra articles before the measured replay starts.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import websockets
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from bench.common import ROOT, corpus, cpu_seconds, env_float, latency_summary, machine_ticks, rss_mb, save_section
from bench.profiling import record_pid, top_inclusive
from bench.services import Slice, env_for_replay, infra_pids, start_infra, stop_infra, wait_until
from common.kafka import make_producer
from stream_worker.settings import WorkerConfig

__all__ = ["pipeline_run", "run"]

_WARMUP = 24


class Listener:
    """One WebSocket client of the consumer: every `new_analysis`, with the client's receive time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.records: list[dict[str, Any]] = []
        self.warmup = 0
        self.lagged = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 30)

    async def _run(self) -> None:
        async with websockets.connect(self.url, max_size=None, ping_interval=None) as ws:
            async for raw in ws:
                now = time.time()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "initial_data":
                    self._ready.set()
                elif kind == "lagged":
                    self.lagged += int(message.get("dropped", 0))
                elif kind == "new_analysis":
                    data = message["data"]
                    if "bench_warmup" in data["url"]:
                        self.warmup += 1
                        continue
                    self.records.append(
                        {
                            "id": data["id"],
                            "fetched": _ts(data["fetched_at"]),
                            "analyzed": _ts(data["analyzed_at"]),
                            "stored": int(message["cursor"].split("-")[0]) / 1000,
                            "received": now,
                        }
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, websockets.ConnectionClosed):
                pass

    @property
    def unique(self) -> int:
        return len({r["id"] for r in self.records})


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Lag:
    """Consumer lag of the worker group on `news.raw` and the consumer group on `news.analyzed`, over time."""

    def __init__(self, slice_: Slice, listener: Listener, interval: float = 2.0) -> None:
        self.slice = slice_
        self.listener = listener
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self, t0: float) -> None:
        self.t0 = t0
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.slice.infra.bootstrap)
        self._offsets = AIOKafkaConsumer(bootstrap_servers=self.slice.infra.bootstrap)
        await self._admin.start()
        await self._offsets.start()
        self._task = asyncio.create_task(self._run())

    async def _lag(self, topic: str, group: str) -> tuple[int, int]:
        parts = self._offsets.partitions_for_topic(topic) or set()
        if not parts:
            await self._offsets._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            parts = self._offsets.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        ends = await self._offsets.end_offsets(tps)
        committed = await self._admin.list_consumer_group_offsets(group, partitions=tps)
        done = {tp: (o.offset if o and o.offset >= 0 else 0) for tp, o in committed.items()}
        return sum(ends.values()), sum(max(0, ends[tp] - done.get(tp, 0)) for tp in tps)

    async def _run(self) -> None:
        topics = self.slice.kafka.topics
        while True:
            try:
                raw_end, worker_lag = await self._lag(topics.raw_topic, self.slice.worker_group)
                analyzed_end, consumer_lag = await self._lag(topics.analyzed_topic, self.slice.consumer_group)
                self.samples.append(
                    {
                        "t_s": round(time.time() - self.t0, 1),
                        "produced": raw_end,
                        "worker_lag": worker_lag,
                        "analyzed": analyzed_end,
                        "consumer_lag": consumer_lag,
                        "stored_seen_by_ws": len(self.listener.records),
                    }
                )
            except Exception as exc:  # a failed sample is a gap in the series, not a failed benchmark
                self.samples.append({"t_s": round(time.time() - self.t0, 1), "error": str(exc)[:200]})
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._offsets.stop()
        await self._admin.close()


class Memory:
    """Peak resident memory per process: VmHWM for the services (read before they stop), sampled VmRSS for
    the replay (it exits on its own) and for Kafka and Redis (shared, long-running: their peak since boot
    would say nothing about this run)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self.peak: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        self._t = time.monotonic()
        self._ticks = machine_ticks()
        self._cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def cpu_use(self, pids: dict[str, int]) -> dict[str, Any]:
        """Cores each process used on average since `start`, and the machine's idle share meanwhile."""
        wall = time.monotonic() - self._t
        idle, total = machine_ticks()
        out: dict[str, Any] = {
            "machine_idle_pct": round((idle - self._ticks[0]) / max(1, total - self._ticks[1]) * 100, 1)
        }
        for name, pid in pids.items():
            now, before = cpu_seconds(pid), self._cpu.get(name)
            if now is not None and before is not None and wall > 0:
                out[name] = round((now - before) / wall, 2)
        return out

    async def _run(self) -> None:
        while True:
            for name, pid in list(self.pids.items()):
                value = rss_mb(pid)
                if value is not None:
                    self.peak[name] = max(value, self.peak.get(name, 0.0))
            await asyncio.sleep(0.25)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


async def _warm_up(slice_: Slice, listener: Listener, timeout: float) -> None:
    """Send extra articles (URLs marked `bench_warmup`) through the pipeline so the workers load their models."""
    producer = make_producer(slice_.kafka, client_id="bench-warmup")
    await producer.start()
    try:
        for i, article in enumerate(corpus()[-_WARMUP:]):
            a = article.model_copy(update={"url": f"https://bench.invalid/warmup?bench_warmup={i}", "id": f"w{i}"})
            body = a.model_dump_json().encode()
            await producer.send(slice_.kafka.topics.raw_topic, body, key=a.id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    if not await wait_until(lambda: listener.warmup >= _WARMUP, timeout):
        raise TimeoutError(f"warm-up articles not through {slice_.name} within {timeout}s: {slice_.log_tails()}")


async def pipeline_run(
    slice_: Slice,
    *,
    workers: int,
    rate: float,
    limit: int | None,
    window: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    await slice_.create_topics()
    consumer = slice_.start_consumer()
    for _ in range(workers):
        slice_.start_worker()
    consumer.wait_ready(timeout=120)
    slice_.wait_workers_assigned(slice_.kafka.partitions, timeout=180)
    listener = Listener(f"ws://127.0.0.1:{consumer.port}/ws")
    await listener.start()
    t = time.monotonic()
    await _warm_up(slice_, listener, timeout=180)
    log(f"  {slice_.name}: {workers} worker(s) ready, warm-up through in {time.monotonic() - t:.1f}s")

    services = {p.name: p.proc.pid for p in slice_.procs if p.proc is not None}
    memory = Memory({**infra_pids(slice_.infra), **services})
    memory.start()
    lag = Lag(slice_, listener)
    t0 = time.time()
    await lag.start(t0)
    argv = [sys.executable, "-m", "producer.replay", "--no-progress", "--no-dedup", "--rate", str(rate)]
    if limit:
        argv += ["--limit", str(limit)]
    replay = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        env=env_for_replay(slice_),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    memory.pids["replay"] = replay.pid
    spy = None
    if slice_.name == "max" and slice_.workers[0].proc is not None:  # what bounds a worker at full load
        spy = asyncio.create_task(record_pid(slice_.workers[0].proc.pid, min(20.0, window / 3)))
    try:
        out, _ = await asyncio.wait_for(replay.communicate(), timeout=window + 60)
    except TimeoutError:
        out = b"replay killed: it outlasted the window"
    finally:  # also on Ctrl-C or `timeout`: the replay runs in its own session, so nobody else stops it
        if replay.returncode is None:
            os.killpg(replay.pid, signal.SIGKILL)
            await replay.wait()
    replay_s = time.time() - t0
    text = out.decode(errors="replace")
    accepted = _count(text, "accepted")
    log(f"  {slice_.name}: replay finished in {replay_s:.1f}s: {text.strip().splitlines()[-1][:160]}")
    remaining = max(0.0, window - (time.time() - t0))
    drained = await wait_until(lambda: listener.unique >= accepted > 0, remaining, interval=0.5)
    measured_s = time.time() - t0
    cores = memory.cpu_use({k: v for k, v in memory.pids.items() if k != "replay"})
    peaks = slice_.peak_rss()
    await lag.stop()
    await memory.stop()
    await listener.stop()
    peaks.update(memory.peak)
    result = _summarise(listener, t0)
    if spy is not None:
        result["worker_profile"] = top_inclusive(await spy, 40)
    result.update(
        {
            "workers": workers,
            "rate_asked": rate,
            "limit": limit,
            "replay_accepted": accepted,
            "replay_s": round(replay_s, 2),
            "produce_rate": round(accepted / replay_s, 1) if replay_s else None,
            "window_s": window,
            "measured_s": round(measured_s, 1),
            "drained": drained,
            "lagged_notices": listener.lagged,
            "peak_rss_mb": peaks,
            "cores_used": cores,
            "lag": lag.samples,
        }
    )
    log(
        f"  {slice_.name}: stored {result['stored']} of {accepted} in {measured_s:.0f}s; sustained "
        f"{result['sustained_rate']} art/s; produce->stored p95 {result['produce_to_stored']['p95_ms']} ms"
    )
    return result


def _worker_setting(name: str, extra: dict[str, str]) -> float:
    """The value a worker started by this bench runs with: the run's own environment, the bench's, or the default."""
    value = extra.get(name) or os.environ.get(name)
    if value:
        return float(value)
    field = name.removeprefix("WORKER__").lower()
    return float(getattr(WorkerConfig(), field))


def _count(text: str, word: str) -> int:
    for line in text.splitlines():
        if line.startswith("replay done:"):
            for part in line.split(":", 1)[1].split(","):
                bits = part.split()
                if len(bits) >= 2 and bits[1] == word:
                    return int(bits[0])
    return 0


def _summarise(listener: Listener, t0: float) -> dict[str, Any]:
    first: dict[str, dict[str, Any]] = {}
    for r in listener.records:  # a redelivered article counts once, at its first arrival
        first.setdefault(r["id"], r)
    records = sorted(first.values(), key=lambda r: r["stored"])
    n = len(records)
    sustained = None
    if n >= 10:
        lo, hi = records[n // 10], records[(9 * n) // 10 - 1]
        span = hi["stored"] - lo["stored"]
        sustained = round(((9 * n) // 10 - 1 - n // 10) / span, 2) if span > 0 else None
    return {
        "stored": n,
        "duplicates_seen": len(listener.records) - n,
        "overall_rate": round(n / (records[-1]["stored"] - t0), 2) if n else None,
        "sustained_rate": sustained,
        "sustained_how": "stored articles per second between the 10th and the 90th percentile of store times",
        "produce_to_analyzed": latency_summary([r["analyzed"] - r["fetched"] for r in records]),
        "produce_to_stored": latency_summary([r["stored"] - r["fetched"] for r in records]),
        "produce_to_websocket": latency_summary([r["received"] - r["fetched"] for r in records]),
        "stored_to_websocket": latency_summary([r["received"] - r["stored"] for r in records]),
    }


async def _main(log: Callable[[str], None]) -> dict[str, Any]:
    window = env_float("BENCH_PIPELINE_SECONDS", 100, 30)
    paced_s = env_float("BENCH_PACED_SECONDS", 60, 20)
    scale_s = env_float("BENCH_SCALE_SECONDS", 60, 25)
    infra = start_infra()
    section: dict[str, Any] = {
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
        "corpus_rows": 3824,
        "valid_articles": len(corpus()),
        "infra_started_by_bench": list(infra.started),
        # What the workers really ran with: the environment this bench passes on, else WorkerConfig's defaults (the
        # section once said "1.0 (default)" while the default was 0.2 s, so "0.2 vs 1.0" compared 0.2 with itself).
        "worker_batch": {
            "size": _worker_setting("WORKER__BATCH_SIZE", {}),
            "timeout_s": _worker_setting("WORKER__BATCH_TIMEOUT", {}),
        },
        "runs": {},
    }
    try:
        flush = os.environ.get("BENCH_PACED_FLUSH", "1.0")
        plan: list[tuple[str, int, float | None, int | None, float, dict[str, str]]] = [
            ("max", 1, 0.0, None, window, {}),
            ("paced", 1, None, None, paced_s, {}),
            ("workers2", 2, 0.0, None, scale_s, {}),
        ]
        # The same half load with another batch timeout (BENCH_PACED_FLUSH, default 1.0 s: the default is 0.2 s),
        # so the paced pair compares two settings; each run records the one it used.
        if flush and float(flush) != _worker_setting("WORKER__BATCH_TIMEOUT", {}):
            plan.insert(2, ("paced_flush", 1, None, None, paced_s, {"WORKER__BATCH_TIMEOUT": flush}))
        for name, workers, rate, limit, seconds, extra in plan:
            if rate is None:
                top = section["runs"]["max"]["sustained_rate"] or section["runs"]["max"]["overall_rate"] or 2.0
                rate = round(top / 2, 2)
                limit = max(10, math.ceil(rate * seconds))
            slice_ = Slice(infra, name, extra_env=extra)
            try:
                log(f"  {name}: {workers} worker(s), rate {rate or 'max'}, limit {limit or 'all'}, window {seconds}s")
                section["runs"][name] = await pipeline_run(
                    slice_,
                    workers=workers,
                    rate=rate or 0.0,
                    limit=limit,
                    window=seconds + (30 if limit else 0),
                    log=log,
                )
                section["runs"][name]["batch_timeout_s"] = _worker_setting("WORKER__BATCH_TIMEOUT", extra)
                section["runs"][name]["batch_size"] = _worker_setting("WORKER__BATCH_SIZE", extra)
            finally:
                await slice_.close()
    finally:
        stop_infra(infra)
    return section


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    section = asyncio.run(_main(log))
    save_section("pipeline", section, command="make bench-pipeline", started=started)
    return section


if __name__ == "__main__":
    run()
