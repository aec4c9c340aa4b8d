"""Search latency and hot/cold storage per article (issue 16): `python -m bench.search [--docs N] [--rounds R]`.

1. Indexes N real-text articles into a fresh prefix of the OpenSearch on `OPENSEARCH_PORT` (started with
   scripts/opensearch.sh when nothing answers there): the NewsArticles corpus (`producer.corpus.read_corpus`)
   replayed and varied (each pass a new URL, so a new id, published a few days later, its paragraphs rotated),
   with about 5 % Korean articles built from the NSMC reviews in data/ko (real Korean text). Analysis fields
   (sentiment, category, source rotation) are assigned deterministically from the id: the text is what is real.
2. Runs the documented query mix (`QUERIES`) through `consumer.search.Archive.search` (query building, the
   engine, parsing: the route without HTTP), one warm-up round then R measured rounds, and prints p50/p95/max
   per kind and overall.
3. Prints disk per article in OpenSearch (primary store after a refresh and a force-merge, `article` field
   included) and memory per article in Redis (`MEMORY USAGE` of every key the store writes for the first
   3,000 articles, plus used_memory's growth), on `REDIS_PORT`, with the projection for 300,000 a day.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import itertools
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from opensearchpy import AsyncOpenSearch
from redis.asyncio import Redis

from common.schemas import AnalyzedArticle
from common.search_index import document, index_name, template_body
from common.search_query import ARCHIVE_FIELD, SearchParams
from common.settings import OpenSearchSettings
from common.store import ArticleStore
from consumer.search import Archive
from harness.infra import ROOT, Infra, _env_port, port_open
from producer.corpus import read_corpus

__all__ = ["QUERIES", "main"]

START = datetime(2017, 1, 1, tzinfo=UTC)
_SOURCES = ("BBC", "CNN", "Al Jazeera", "TASS", "RTE", "Deutsche Welle", "China Daily", "ABC News", "HuffPost")
_CATEGORIES = ("world", "politics", "business", "technology", "science", "health", "sports", "entertainment")
_SENTIMENTS = ("positive", "neutral", "negative")
_MONTH = {"from": datetime(2017, 3, 1, tzinfo=UTC), "to": datetime(2017, 4, 1, tzinfo=UTC)}

# The query mix: (kind, parameters). Words and phrases common and rare in the corpus.
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("word", {"q": "election"}),
    ("word", {"q": "refugees"}),
    ("word", {"q": "economy"}),
    ("word", {"q": "syria"}),
    ("phrase", {"q": '"white house"'}),
    ("phrase", {"q": '"prime minister"'}),
    ("phrase", {"q": '"european union"'}),
    ("and/or/not", {"q": "trump russia"}),
    ("and/or/not", {"q": "syria | iraq"}),
    ("and/or/not", {"q": "election -france"}),
    ("and/or/not", {"q": "climat* (china | india)"}),
    ("filter", {"q": "police", "source": "bbc"}),
    ("filter", {"q": "", "lang": "en", "sentiment": "negative"}),
    ("filter", {"q": "market", "category": "business", "since": _MONTH["from"], "until": _MONTH["to"]}),
    ("korean", {"q": "영화"}),
    ("korean", {"q": "배우 연기"}),
    ("korean", {"q": "감독", "lang": "ko"}),
]


def _pick(article_id: str, options: tuple[str, ...], salt: str) -> str:
    return options[int(hashlib.sha256((salt + article_id).encode()).hexdigest()[:8], 16) % len(options)]


def _analysed(raw: dict[str, Any], language: str) -> AnalyzedArticle | None:
    try:
        article = AnalyzedArticle.model_validate(
            {**raw, "analysis": {"sentiment": "neutral", "sentiment_score": 0.0, "language": language}},
            strict=False,
        )
    except ValueError:
        return None
    sentiment = _pick(article.id, _SENTIMENTS, "s")
    score = {"positive": 0.6, "neutral": 0.0, "negative": -0.6}[sentiment]
    analysis = article.analysis.model_copy(
        update={
            "sentiment": sentiment,
            "sentiment_score": score,
            "category": _pick(article.id, _CATEGORIES, "c"),
            "importance_score": float(int(article.id[:2], 16) % 10),
        }
    )
    return article.model_copy(update={"analysis": analysis})


def _korean_texts() -> list[str]:
    path = ROOT / "data" / "ko" / "nsmc_sentiment_train.tsv"
    with path.open(encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh, delimiter="\t") if len(row.get("text") or "") > 10]


def corpus(n: int) -> Iterator[AnalyzedArticle]:
    """`n` articles: the English corpus replayed with variations, every 20th one Korean."""
    english = [row for row in read_corpus() if "__error__" not in row and row.get("title")]
    korean = _korean_texts()
    made = 0
    for cycle in itertools.count():
        for i, row in enumerate(english):
            if made >= n:
                return
            if made % 20 == 19:
                k = (made * 7) % (len(korean) - 8)
                raw = {
                    "url": f"https://ko.example.com/review/{cycle}/{i}",
                    "title": korean[k][:120],
                    "content": " ".join(korean[k : k + 8]),
                    "source": "NSMC",
                    "published_at": (START + timedelta(minutes=made * 3)).isoformat(),
                    "origin": "replay",
                }
                article = _analysed(raw, "ko")
            else:
                paragraphs = str(row.get("content") or "").split("\n")
                shift = cycle % max(1, len(paragraphs))
                raw = {
                    **row,
                    "url": f"{row['url']}?replay={cycle}",
                    "content": "\n".join(paragraphs[shift:] + paragraphs[:shift])[:20_000],
                    "source": _SOURCES[(i + cycle) % len(_SOURCES)],
                    "published_at": (START + timedelta(minutes=made * 3)).isoformat(),
                }
                article = _analysed(raw, "en")
            if article is not None:
                made += 1
                yield article


async def index_corpus(client: AsyncOpenSearch, prefix: str, n: int, batch: int = 500) -> tuple[int, float]:
    settings = OpenSearchSettings(index_prefix=prefix, refresh_interval="-1")
    await client.indices.put_index_template(name=f"{prefix}news-articles", body=_with_archive(template_body(settings)))
    started = time.monotonic()
    lines: list[dict[str, Any]] = []
    count = 0
    for article in corpus(n):
        doc = {**document(article), ARCHIVE_FIELD: article.model_dump(mode="json")}
        lines += [{"index": {"_index": index_name(prefix, article.published_at), "_id": article.id}}, doc]
        count += 1
        if len(lines) >= 2 * batch:
            await _bulk(client, lines)
            lines = []
            if count % 10_000 < batch:
                print(f"  indexed {count}", flush=True)
    if lines:
        await _bulk(client, lines)
    await client.indices.refresh(index=f"{prefix}news-articles")
    return count, time.monotonic() - started


def _with_archive(body: dict[str, Any]) -> dict[str, Any]:
    # The whole article for GET /news/{id}'s fallback (kept in _source, not indexed), until the template has it.
    properties = body["template"]["mappings"]["properties"]
    properties.setdefault(ARCHIVE_FIELD, {"type": "object", "enabled": False})
    return body


async def _bulk(client: AsyncOpenSearch, lines: list[dict[str, Any]]) -> None:
    answer = await client.bulk(body=lines, request_timeout=120)
    if answer["errors"]:
        first = next(i for i in answer["items"] if "error" in i["index"])
        raise RuntimeError(f"bulk refused a document: {first}")


async def measure_queries(archive: Archive, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for r in range(rounds + 1):
        for kind, params in QUERIES:
            started = time.perf_counter()
            result = await archive.search(SearchParams(**params))
            elapsed = (time.perf_counter() - started) * 1000
            if r == 0:
                print(f"  {kind:11} {params!s:70.70} total {result.total}", flush=True)
                continue  # warm-up
            times.setdefault(kind, []).append(elapsed)
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def redis_per_article(redis_url: str, n: int = 3_000) -> tuple[float, float]:
    redis = Redis.from_url(redis_url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    store = ArticleStore(redis, prefix=prefix, ttl_seconds=48 * 3600, stream_maxlen=10_000)
    try:
        before = int((await redis.info("memory"))["used_memory"])
        for article in corpus(n):
            await store.put(article)
        after = int((await redis.info("memory"))["used_memory"])
        total = 0
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            total += int(await redis.memory_usage(key, samples=0) or 0)
        return total / n, (after - before) / n
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i : i + 500])
        await redis.aclose()


async def run(docs: int, rounds: int, redis_port: int) -> None:
    infra = Infra(kafka_port=_env_port("KAFKA_PORT", 9092), redis_port=redis_port, started=[])
    url = infra.ensure_opensearch()
    client = AsyncOpenSearch(hosts=[url], timeout=120, max_retries=0)
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    try:
        print(f"indexing {docs} articles into {url} ({prefix}news-articles)", flush=True)
        count, seconds = await index_corpus(client, prefix, docs)
        print(f"indexed {count} in {seconds:.0f} s ({count / seconds:.0f}/s, one client, bulks of 500)")
        alias = f"{prefix}news-articles"
        await client.indices.forcemerge(index=alias, max_num_segments=1, request_timeout=600)
        stats = await client.indices.stats(index=alias, metric="store,docs")
        size = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        print(f"disk: {size / 2**20:.0f} MiB for {count} articles = {size / count / 1024:.1f} KiB per article")
        print(f"      300,000 articles a day: {size / count * 300_000 / 2**30:.2f} GiB a day")
        archive = Archive(client, prefix, url)
        times = await measure_queries(archive, rounds)
        every = [t for values in times.values() for t in values]
        print(f"search latency over {count} articles, {rounds} rounds of {len(QUERIES)} queries (ms):")
        for kind, values in [*times.items(), ("all", every)]:
            p50, p95 = _p(values, 0.5), _p(values, 0.95)
            print(f"  {kind:11} n={len(values):4}  p50 {p50:6.1f}  p95 {p95:6.1f}  max {max(values):6.1f}")
        print(f"  mean {statistics.mean(every):.1f}")
    finally:
        names = (await client.indices.get_alias(index=f"{prefix}news-articles")).keys()
        if names:
            await client.indices.delete(index=",".join(names))
        await client.indices.delete_index_template(name=f"{prefix}news-articles")
        await client.close()
    if port_open(redis_port):
        keys_bytes, used_bytes = await redis_per_article(infra.redis_url)
        print(
            f"redis: MEMORY USAGE of the store's keys {keys_bytes / 1024:.1f} KiB per article, used_memory growth "
            f"{used_bytes / 1024:.1f} KiB per article"
        )
        print(f"       300,000 articles a day: {used_bytes * 300_000 / 2**30:.2f} GiB per day of hot window")
    else:
        print(f"redis: nothing on port {redis_port}; start it (scripts/redis.sh start) to measure memory per article")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--redis-port", type=int, default=_env_port("REDIS_PORT", 6379))
    args = parser.parse_args(argv)
    asyncio.run(run(args.docs, args.rounds, args.redis_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
