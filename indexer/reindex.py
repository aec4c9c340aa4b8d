"""`make reindex`: rebuild the search index from Kafka, then exit.

    python -m indexer.reindex [--group NAME] [--batch-size N]

Reads `news.analyzed` from its earliest offset under a fresh consumer group (the live indexer's offsets are
untouched, so it may keep running), up to the end offsets seen at start, through the same `Indexer` as the
service: same documents, same external versions, same dead letters. Replaying into an index that already
holds the articles changes nothing (an equal version is a 409, counted as stale); into an empty or new
index (another `OPENSEARCH__INDEX_PREFIX`, or after deleting the month's indices) it rebuilds them.
What Kafka no longer retains cannot be replayed: the topic's retention bounds what a rebuild recovers.
Then `news.stories` is replayed the same way (`indexer.stories.StoryLinker`, a `-stories` group), so the
rebuilt index knows each article's story (`--no-links` skips it). Prints what it did and the articles' rate
(articles/s), which is also the bulk-indexing figure of docs/SEARCH.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from contextlib import AsyncExitStack

from aiokafka import AIOKafkaProducer, TopicPartition
from opensearchpy import AsyncOpenSearch
from prometheus_client import CollectorRegistry

from common.kafka import open_consumer, open_producer
from common.search_index import alias_name, make_client
from common.topics import Topics
from common.webapp import configure_logging
from indexer.bulk import Indexer
from indexer.metrics import IndexerMetrics
from indexer.settings import IndexerSettings, get_settings
from indexer.stories import StoryLinker

__all__ = ["main", "reindex"]

log = logging.getLogger(__name__)


async def reindex(
    settings: IndexerSettings, *, group: str, batch_size: int, in_flight: int | None = None, links: bool = True
) -> dict[str, float]:
    """Index every record of `news.analyzed` present now, then (`links`) replay `news.stories` onto them; a
    summary of counts and the articles' rate."""
    linked = 0
    topics = Topics.of(settings.kafka.topics)
    metrics = IndexerMetrics.create(CollectorRegistry())
    async with AsyncExitStack() as stack:
        client = make_client(settings.opensearch)
        stack.push_async_callback(client.close)
        dlq = await open_producer(
            stack, settings.kafka, client_id="news-reindex-dlq", topics=[topics.dead_letters.name]
        )
        consumer = await open_consumer(
            stack,
            settings.kafka,
            topics.analyzed.name,
            group_id=group,
            client_id="news-reindex",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
            max_poll_interval_ms=30 * 60 * 1000,
        )
        indexer = Indexer(
            consumer, dlq, client, topics, settings.opensearch, metrics, batch_size=batch_size, poll_timeout_ms=1000
        )
        await indexer.prepare_index()
        partitions = [
            TopicPartition(topics.analyzed.name, p)
            for p in sorted(consumer.partitions_for_topic(topics.analyzed.name) or ())
        ]
        ends = await consumer.end_offsets(partitions)
        wanted = {tp.partition for tp in partitions}

        async def done() -> bool:
            # Done when every partition's position reached its end offset at start (records after that
            # are the live indexer's business).
            assigned = consumer.assignment()
            if not assigned or {tp.partition for tp in assigned} < wanted:
                return False
            return all([await consumer.position(tp) >= ends.get(tp, 0) for tp in assigned])

        started = time.perf_counter()
        records = await indexer.pump(depth=in_flight or settings.indexer.in_flight, done=done)
        elapsed = time.perf_counter() - started
        await client.indices.refresh(index=alias_name(settings.opensearch.index_prefix))
        if links:
            # Then the story links, so a rebuilt index answers `?story=` too (their articles are all in now).
            linked = await _replay_links(stack, settings, topics, client, dlq, metrics, group, batch_size)
            await client.indices.refresh(index=alias_name(settings.opensearch.index_prefix))
    counts = {
        sample.labels["result"]: sample.value
        for family in metrics.documents.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    return {
        "records": records,
        "seconds": round(elapsed, 2),
        "articles_per_second": round(records / elapsed, 1) if elapsed else 0.0,
        "story_link_records": linked,
        **{result: counts.get(result, 0.0) for result in ("indexed", "stale", "failed")},
    }


async def _replay_links(
    stack: AsyncExitStack,
    settings: IndexerSettings,
    topics: Topics,
    client: AsyncOpenSearch,
    dlq: AIOKafkaProducer,
    metrics: IndexerMetrics,
    group: str,
    batch_size: int,
) -> int:
    """Every record of `news.stories` present now through `StoryLinker` (missing articles wait 10 s at most:
    they are not coming); the number of records."""
    consumer = await open_consumer(
        stack,
        settings.kafka,
        topics.stories.name,
        group_id=f"{group}-stories",
        client_id="news-reindex-stories",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
        max_poll_interval_ms=30 * 60 * 1000,
    )
    linker = StoryLinker(
        consumer, dlq, client, topics, settings.opensearch, metrics, batch_size=batch_size, wait_seconds=10.0
    )
    partitions = [
        TopicPartition(topics.stories.name, p) for p in sorted(consumer.partitions_for_topic(topics.stories.name) or ())
    ]
    ends = await consumer.end_offsets(partitions)
    records = 0
    while True:
        assigned = consumer.assignment()
        if assigned and {tp.partition for tp in assigned} >= {tp.partition for tp in partitions}:
            if all([await consumer.position(tp) >= ends.get(tp, 0) for tp in assigned]):
                return records
        records += await linker.run_once()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--group", default=None, help="consumer group (default: a fresh one per run)")
    parser.add_argument("--batch-size", type=int, default=None, help="articles per bulk (default INDEXER__BATCH_SIZE)")
    parser.add_argument("--in-flight", type=int, default=None, help="bulks in flight (default INDEXER__IN_FLIGHT)")
    parser.add_argument("--no-links", action="store_true", help="do not replay news.stories (story_id)")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    group = args.group or f"{settings.indexer.group_id}-reindex-{int(time.time())}"
    batch = args.batch_size or settings.indexer.batch_size
    depth = args.in_flight or settings.indexer.in_flight
    summary = asyncio.run(reindex(settings, group=group, batch_size=batch, in_flight=depth, links=not args.no_links))
    print(json.dumps({"group": group, "batch_size": batch, "in_flight": depth, **summary}))


if __name__ == "__main__":
    main()
