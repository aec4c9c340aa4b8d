"""The stream layer alone: Kafka -> one stream worker (no-op analyser) -> Kafka -> consumer -> Redis.

What the issue 18 target measures: how many articles per second the parts around the engine move when the
engine costs nothing (`WORKER__NOOP_ANALYSIS=true`: a fixed analysis of the standard tier's shape). One worker
process and one consumer process on a fresh slice of the real Kafka and Redis. BENCH_STREAM_ARTICLES (5,000)
real corpus articles (each copy under its own URL, so its own id) are produced to `news.raw` first, as a backlog
(one Python producer is slower than the layer it feeds, so producing while measuring would measure the producer),
then the consumer and the worker are started on it.

Rate = stored articles per second between the 10th and the 90th percentile of the backlog (start-up and the
tail left out); "stored" is the consumer's `idx:recent` count (polled every 50 ms), the end of the path
produce -> stored. The worker's and the consumer's CPU seconds over the same window are read from /proc, per
article; py-spy samples the worker for 5 s (its top functions go into the section) unless BENCH_STREAM_PROFILE=0.

Runs: one per Kafka compression codec in BENCH_STREAM_CODECS (default "zstd,lz4,gzip": side by side in the same
run, so the pick is measured on this machine), each with `KAFKA__COMPRESSION_TYPE` for every process (worker and
consumer producers; the bench's own producer uses the same codec). The worker's batch size is the default unless
WORKER__BATCH_SIZE is set; the section records which.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from bench.common import corpus, cpu_seconds, env_int, save_section
from bench.profiling import record_pid, top_inclusive
from bench.services import Slice, start_infra, stop_infra
from common.schemas import RawArticle
from stream_worker.settings import WorkerConfig

__all__ = ["run", "stream_run"]


def _articles(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    """`n` (key, value) records of real articles, each under a URL of its own (so an id of its own)."""
    base = corpus()
    out: list[tuple[bytes, bytes]] = []
    for i in range(n):
        src = base[i % len(base)]
        data = src.model_dump(mode="json", exclude={"id"})
        data["url"] = f"{src.url}{'&' if '?' in src.url else '?'}bench_{tag}={i}"
        article = RawArticle.model_validate(data)
        out.append((article.id.encode(), article.model_dump_json().encode()))
    return out


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], codec: str) -> float:
    """Send every record (not waiting one by one: the producer batches), then flush; seconds taken."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        t = time.perf_counter()
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
        return time.perf_counter() - t
    finally:
        await producer.stop()


async def _count_stored(redis: Redis, key: str, want: int, timeout: float) -> list[tuple[float, int]]:
    """(time.perf_counter(), stored count) every 50 ms until `want` are stored or `timeout` passes."""
    deadline = time.perf_counter() + timeout
    series: list[tuple[float, int]] = []
    while time.perf_counter() < deadline:
        count = int(await redis.zcard(key))
        series.append((time.perf_counter(), count))
        if count >= want:
            break
        await asyncio.sleep(0.05)
    return series


async def stream_run(slice_: Slice, *, articles: int, codec: str, profile: bool) -> dict[str, Any]:
    """Produce the backlog, start a consumer and one worker on it, time the drain (10th to 90th percentile)."""
    await slice_.create_topics()
    topic = slice_.kafka.topics.raw_topic
    produce_s = await _produce(slice_.infra.bootstrap, topic, _articles(articles, slice_.run_id), codec)
    consumer = slice_.start_consumer()
    worker = slice_.start_worker()
    assert worker.proc is not None and consumer.proc is not None
    pids = {"worker": worker.proc.pid, "consumer": consumer.proc.pid}
    recent = f"{slice_.key_prefix}idx:recent"
    redis = Redis.from_url(slice_.infra.redis_url)
    lo, hi = articles // 10, (9 * articles) // 10
    try:
        warm = await _count_stored(redis, recent, lo, 240)
        if warm[-1][1] < lo:
            raise TimeoutError(f"{warm[-1][1]} of {lo} stored in 240 s: {slice_.log_tails()}")
        # CPU from the moment the first tenth is stored (start-up behind) to the ninth.
        cpu0 = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
        spy = asyncio.create_task(record_pid(worker.proc.pid, 5)) if profile else None
        series = await _count_stored(redis, recent, hi, 60 + articles / 100)
        cpu = {name: (cpu_seconds(pid) or 0.0) - cpu0[name] for name, pid in pids.items()}
        rest = await _count_stored(redis, recent, articles, 60)
        done = series[-1][1] - warm[-1][1]
        span = series[-1][0] - warm[-1][0]
        result: dict[str, Any] = {
            "codec": codec,
            "articles": articles,
            "stored": rest[-1][1],
            "complete": rest[-1][1] >= articles,
            "bench_produce_rate": round(articles / produce_s, 1) if produce_s else None,
            "measured": f"stored articles {lo} to {hi} of a backlog of {articles} (10th to 90th percentile)",
            "measured_s": round(span, 2),
            "articles_per_s": round(done / span, 1) if span > 0 else None,
            "worker_cpu_ms_per_article": round(cpu["worker"] * 1000 / max(1, done), 3),
            "consumer_cpu_ms_per_article": round(cpu["consumer"] * 1000 / max(1, done), 3),
            "worker_cores": round(cpu["worker"] / span, 2) if span > 0 else None,
            "consumer_cores": round(cpu["consumer"] / span, 2) if span > 0 else None,
            "peak_rss_mb": slice_.peak_rss(),
        }
        if spy is not None:
            result["worker_profile"] = top_inclusive(await spy, 30)
        return result
    finally:
        await redis.aclose()


async def _main(log: Callable[[str], None]) -> dict[str, Any]:
    articles = env_int("BENCH_STREAM_ARTICLES", 5_000, 2_000)
    codecs = [c.strip() for c in os.environ.get("BENCH_STREAM_CODECS", "zstd,lz4,gzip").split(",") if c.strip()]
    profile = os.environ.get("BENCH_STREAM_PROFILE", "1") != "0"
    infra = start_infra()
    section: dict[str, Any] = {
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
        "target_articles_per_s": 5_000,
        "analyser": "no-op (WORKER__NOOP_ANALYSIS=true: a fixed analysis, 5 keywords, 2 entities, no embedding)",
        "worker_batch_size": int(os.environ.get("WORKER__BATCH_SIZE", "") or WorkerConfig().batch_size),
        "runs": {},
    }
    try:
        for codec in codecs:
            env = {"WORKER__NOOP_ANALYSIS": "true", "KAFKA__COMPRESSION_TYPE": codec}
            slice_ = Slice(infra, f"stream-{codec}", extra_env=env)
            try:
                r = await stream_run(slice_, articles=articles, codec=codec, profile=profile)
            finally:
                await slice_.close()
            section["runs"][codec] = r
            log(
                f"  stream layer, {codec}: {r['stored']}/{articles} stored; middle 80% in {r['measured_s']}s = "
                f"{r['articles_per_s']} art/s; worker {r['worker_cpu_ms_per_article']} CPU-ms/article, "
                f"consumer {r['consumer_cpu_ms_per_article']}"
            )
    finally:
        stop_infra(infra)
    best = max(section["runs"].values(), key=lambda r: r["articles_per_s"] or 0, default=None)
    if best is not None:
        section["best"] = {"codec": best["codec"], "articles_per_s": best["articles_per_s"]}
    return section


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    section = asyncio.run(_main(log))
    save_section("stream_layer", section, command="python -m bench.stream_layer", started=started)
    return section


if __name__ == "__main__":
    run()
