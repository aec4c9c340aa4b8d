"""`make bench-indexing`: bulk-indexing throughput and index size per article, on real article texts.

    python -m bench.indexing [--articles 20000] [--batch-size 500] [--in-flight 2] [--save]
    python -m bench indexing        # `run(log)`: BENCH_INDEXING_ARTICLES (default 20,000), saves `indexing`

Real texts (`producer.corpus.read_corpus()`, cycled with a new URL (a new id) per copy when more are asked for than
the corpus holds) with plausible analysis fields (sentiment, keywords, entities) are produced to a fresh topic;
then `indexer.reindex` indexes all of them through the service's own loop (decode, bulk with external
versions, commit) into fresh indices, and `_cat/indices` gives the store size. Kafka and OpenSearch are
reused on KAFKA_PORT / OPENSEARCH_PORT or started (harness.infra); the topic and indices are deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import env_int, save_section
from common.kafka import ensure_topics
from common.schemas import Analysis, AnalyzedArticle, Entity, RawArticle
from common.search_index import BASE_NAME, make_client
from common.settings import KafkaSettings, OpenSearchSettings, TopicNames
from common.vectors import pack
from harness.infra import start_infra, stop_infra
from indexer.reindex import reindex
from indexer.settings import IndexerConfig, IndexerSettings
from producer.corpus import read_corpus

__all__ = ["articles", "main", "measure", "run"]

TARGET_PER_SECOND = 1_000  # issue 16

_SENTIMENTS: tuple[Literal["positive", "neutral", "negative"], ...] = ("positive", "neutral", "negative")
_CATEGORIES = ("world", "politics", "business", "technology", "sports")


def articles(count: int) -> list[AnalyzedArticle]:
    rows = [row for row in read_corpus() if "__error__" not in row and row.get("title")]
    # Real analyses carry the 384-dimension embedding (int8, base64) that the archive keeps in `_source`.
    rng = np.random.default_rng(16)
    embeddings = [pack(rng.standard_normal(384).astype(np.float32)) for _ in range(64)]
    out: list[AnalyzedArticle] = []
    for n, row in zip(range(count), itertools.cycle(rows), strict=False):
        # A query parameter makes a distinct article id (a #fragment would be canonicalised away).
        url = row["url"] if n < len(rows) else f"{row['url']}{'&' if '?' in row['url'] else '?'}copy={n}"
        try:
            raw = RawArticle.model_validate({**row, "url": url})
        except ValueError:
            continue  # a corpus row the producer would refuse too
        words = [w for w in raw.title.split() if len(w) > 4][:5]
        analysis = Analysis(
            sentiment=_SENTIMENTS[n % 3],
            sentiment_score=((n % 21) - 10) / 10,
            keywords=[w.lower() for w in words],
            entities=[Entity(text=w, type="ORG") for w in words[:3]],
            category=_CATEGORIES[n % 5],
            language="en",
            importance_score=float(n % 10),
            embedding=embeddings[n % len(embeddings)],
        )
        analyzed_at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
        out.append(AnalyzedArticle.from_raw(raw, analysis).model_copy(update={"analyzed_at": analyzed_at}))
    return out


async def measure(
    count: int, batch_size: int, in_flight: int = 2, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Produce `count` articles, index them with `indexer.reindex`, measure the rate and the size: the section."""
    infra = start_infra(opensearch=True)
    tag = f"bench{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=infra.bootstrap, partitions=3, topics=TopicNames(prefix=f"{tag}."))
    opensearch = OpenSearchSettings(url=infra.opensearch_url, index_prefix=f"{tag}-", refresh_interval="30s")
    config = IndexerConfig(batch_size=batch_size, in_flight=in_flight, links=False)
    settings = IndexerSettings(kafka=kafka, opensearch=opensearch, indexer=config)
    items = articles(count)
    log(f"producing {len(items)} articles to {kafka.topics.analyzed_topic}")
    await ensure_topics(kafka, [kafka.topics.analyzed_topic, kafka.topics.dlq_topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=50, max_request_size=8 << 20)
    await producer.start()
    try:
        for article in items:
            await producer.send(
                kafka.topics.analyzed_topic, article.model_dump_json().encode(), key=article.id.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()
    client = make_client(opensearch)
    try:
        summary = await reindex(
            settings, group=f"{tag}-indexer", batch_size=batch_size, in_flight=in_flight, links=False
        )
        log(json.dumps(summary))  # the rate, even if the size step fails
        # One segment per index: the size a settled month has (merging continues after a bulk load).
        await client.indices.forcemerge(index=f"{tag}-{BASE_NAME}-*", max_num_segments=1, request_timeout=900)
        # The merged segment replaces the old ones only at the next refresh: without it both are counted.
        await client.indices.refresh(index=f"{tag}-{BASE_NAME}-*")
        rows = await client.cat.indices(index=f"{tag}-{BASE_NAME}-*", format="json", bytes="b")
        docs = sum(int(r["docs.count"]) for r in rows)
        size = sum(int(r["store.size"]) for r in rows)
        json_bytes = sum(len(a.model_dump_json()) for a in items)
        return {
            **summary,
            "batch_size": batch_size,
            "in_flight": in_flight,
            "refresh_interval": opensearch.refresh_interval,
            "articles": count,
            "distinct_ids": len({a.id for a in items}),
            "docs": docs,
            "store_bytes": size,
            "bytes_per_article": round(size / docs) if docs else None,
            "kafka_json_bytes_per_article": round(json_bytes / count),
        }
    finally:
        # Deleting by wildcard is refused (action.destructive_requires_name): name each index.
        made = await client.cat.indices(index=f"{tag}-{BASE_NAME}-*", format="json")
        if made:
            await client.indices.delete(index=",".join(r["index"] for r in made))
        await client.indices.delete_index_template(name=f"{tag}-{BASE_NAME}")
        await client.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([kafka.topics.analyzed_topic, kafka.topics.dlq_topic])
        finally:
            await admin.close()
        stop_infra(infra)


def _save(section: dict[str, Any], command: str, started: float) -> None:
    section["targets"] = {"articles_per_second": TARGET_PER_SECOND}
    save_section("indexing", section, command=command, started=started)


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    """`python -m bench indexing`: BENCH_INDEXING_ARTICLES (default 20,000: about 1 to 2 minutes on 2 cores)."""
    started = time.monotonic()
    count = env_int("BENCH_INDEXING_ARTICLES", 20_000, 2_000)
    section = asyncio.run(measure(count, 500, 2, log))
    _save(section, f"BENCH_INDEXING_ARTICLES={count} python -m bench indexing", started)
    return section


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="bulk-indexing throughput and index size per article")
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=2, help="bulk requests in flight (INDEXER__IN_FLIGHT)")
    parser.add_argument("--save", action="store_true", help="save the figures as the `indexing` section")
    args = parser.parse_args(argv)
    started = time.monotonic()
    section = asyncio.run(measure(args.articles, args.batch_size, args.in_flight))
    print(json.dumps(section, indent=2))
    if args.save:
        command = f"python -m bench.indexing --articles {args.articles} --batch-size {args.batch_size}"
        _save(section, f"{command} --in-flight {args.in_flight}", started)


if __name__ == "__main__":
    main()
