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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import NotFoundError
from redis.asyncio import Redis

from bench.common import env_int, save_section
from common.schemas import AnalyzedArticle
from common.search_index import document, index_name, make_client, template_body
from common.search_query import SearchParams
from common.settings import OpenSearchSettings
from common.store import ArticleStore
from consumer.search import Archive
from harness.infra import ROOT, Infra, _env_port, port_open
from producer.corpus import read_corpus

__all__ = ["QUERIES", "main", "measure", "run"]

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


async def index_corpus(
    client: AsyncOpenSearch, prefix: str, n: int, log: Callable[[str], None], batch: int = 500, depth: int = 2
) -> tuple[int, float]:
    """Bulk `n` articles (external versions, as the indexer writes them) with `depth` bulks in flight."""
    settings = OpenSearchSettings(index_prefix=prefix, refresh_interval="-1")
    await client.indices.put_index_template(name=f"{prefix}news-articles", body=template_body(settings))
    started = time.monotonic()
    pending: set[asyncio.Task[None]] = set()
    lines: list[bytes] = []
    count = 0
    for article in corpus(n):
        action = {"index": {"_index": index_name(prefix, article.published_at), "_id": article.id}}
        lines += (orjson.dumps(action), orjson.dumps(document(article)))
        count += 1
        if len(lines) >= 2 * batch:
            if len(pending) >= depth:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            pending.add(asyncio.create_task(_bulk(client, b"\n".join(lines) + b"\n")))
            lines = []
            if count % 10_000 < batch:
                log(f"  indexed {count}")
    if lines:
        pending.add(asyncio.create_task(_bulk(client, b"\n".join(lines) + b"\n")))
    for task in pending:
        await task
    await client.indices.refresh(index=f"{prefix}news-articles")
    return count, time.monotonic() - started


async def _bulk(client: AsyncOpenSearch, body: bytes) -> None:
    answer = await client.bulk(body=body, request_timeout=300)
    if answer["errors"]:
        first = next(i for i in answer["items"] if "error" in i["index"])
        raise RuntimeError(f"bulk refused a document: {first}")


async def measure_queries(archive: Archive, rounds: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for r in range(rounds + 1):
        for kind, params in QUERIES:
            started = time.perf_counter()
            result = await archive.search(SearchParams(**params))
            elapsed = (time.perf_counter() - started) * 1000
            if r == 0:
                log(f"  {kind:11} {params!s:70.70} total {result.total}")
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


async def _indices(client: AsyncOpenSearch, alias: str) -> list[str]:
    try:
        return list((await client.indices.get_alias(index=alias)).keys())
    except NotFoundError:
        return []


async def measure(
    docs: int,
    rounds: int,
    redis_port: int,
    log: Callable[[str], None] = print,
    *,
    reuse: str | None = None,
    keep: bool = False,
) -> dict[str, Any]:
    """Index (or reuse) the corpus, time the query mix, measure disk and Redis memory per article: the section."""
    infra = Infra(kafka_port=_env_port("KAFKA_PORT", 9092), redis_port=redis_port, started=[])
    url = infra.ensure_opensearch()
    client = make_client(OpenSearchSettings(url=url, timeout_seconds=300))
    prefix = reuse or f"bench-{uuid.uuid4().hex[:8]}-"
    alias = f"{prefix}news-articles"
    section: dict[str, Any] = {"docs_asked": docs, "rounds": rounds, "queries": len(QUERIES)}
    try:
        existing = await _indices(client, alias)
        if reuse and existing:
            count = int((await client.count(index=alias))["count"])
            log(f"reusing {alias}: {count} articles")
        else:
            log(f"indexing {docs} articles into {url} ({alias})")
            count, seconds = await index_corpus(client, prefix, docs, log)
            log(f"indexed {count} in {seconds:.0f} s ({count / seconds:.0f}/s, 2 bulks of 500 in flight)")
            section.update(index_seconds=round(seconds, 1), index_rate=round(count / seconds, 1))
            await client.indices.forcemerge(index=alias, max_num_segments=1, request_timeout=900)
        # The merged segment replaces the old ones only at the next refresh (refresh_interval is -1 here):
        # without it the store counts both, about twice the size.
        await client.indices.refresh(index=alias)
        stats = await client.indices.stats(index=alias, metric="store,docs")
        size = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        section.update(
            docs=count,
            store_bytes=size,
            disk_bytes_per_article=round(size / count),
            disk_gib_per_300k_articles=round(size / count * 300_000 / 2**30, 2),
        )
        log(f"disk: {size / 2**20:.0f} MiB for {count} articles = {size / count / 1024:.1f} KiB per article")
        log(f"      300,000 articles a day: {size / count * 300_000 / 2**30:.2f} GiB a day")
        archive = Archive(client, prefix, url)
        times = await measure_queries(archive, rounds, log)
        every = [t for values in times.values() for t in values]
        log(f"search latency over {count} articles, {rounds} rounds of {len(QUERIES)} queries (ms):")
        kinds: dict[str, dict[str, float]] = {}
        for kind, values in [*times.items(), ("all", every)]:
            p50, p95 = _p(values, 0.5), _p(values, 0.95)
            kinds[kind] = {
                "n": len(values),
                "p50_ms": round(p50, 1),
                "p95_ms": round(p95, 1),
                "max_ms": round(max(values), 1),
            }
            log(f"  {kind:11} n={len(values):4}  p50 {p50:6.1f}  p95 {p95:6.1f}  max {max(values):6.1f}")
        log(f"  mean {statistics.mean(every):.1f}")
        section.update(latency=kinds, p95_ms=kinds["all"]["p95_ms"], p50_ms=kinds["all"]["p50_ms"])
    finally:
        if not keep:
            names = await _indices(client, alias)
            if names:
                await client.indices.delete(index=",".join(names))
            await client.indices.delete_index_template(name=alias, ignore=[404])
        await client.close()
    if port_open(redis_port):
        keys_bytes, used_bytes = await redis_per_article(infra.redis_url)
        log(
            f"redis: MEMORY USAGE of the store's keys {keys_bytes / 1024:.1f} KiB per article, used_memory growth "
            f"{used_bytes / 1024:.1f} KiB per article"
        )
        log(f"       300,000 articles a day: {used_bytes * 300_000 / 2**30:.2f} GiB per day of hot window")
        section.update(
            redis_key_bytes_per_article=round(keys_bytes),
            redis_bytes_per_article=round(used_bytes),
            redis_gib_per_300k_articles=round(used_bytes * 300_000 / 2**30, 2),
        )
    else:
        log(f"redis: nothing on port {redis_port}; start it (scripts/redis.sh start) to measure memory per article")
    return section


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    """`python -m bench search`: BENCH_SEARCH_DOCS articles (default 20,000, about 3 minutes on 2 cores;
    `make bench-search` runs the issue's 100,000), BENCH_SEARCH_ROUNDS measured rounds of the query mix."""
    started = time.monotonic()
    docs = env_int("BENCH_SEARCH_DOCS", 20_000, 2_000)
    rounds = env_int("BENCH_SEARCH_ROUNDS", 5, 1)
    section = asyncio.run(measure(docs, rounds, _env_port("REDIS_PORT", 6379), log))
    section["targets"] = {"p95_ms": 100, "docs": 100_000}
    save_section("search", section, command=f"BENCH_SEARCH_DOCS={docs} python -m bench search", started=started)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--redis-port", type=int, default=_env_port("REDIS_PORT", 6379))
    parser.add_argument("--reuse", metavar="PREFIX", help="search an index left by --keep instead of indexing")
    parser.add_argument("--keep", action="store_true", help="keep the indices (print the prefix to --reuse)")
    parser.add_argument("--save", action="store_true", help="save the figures as the `search` section")
    args = parser.parse_args(argv)
    started = time.monotonic()
    section = asyncio.run(measure(args.docs, args.rounds, args.redis_port, reuse=args.reuse, keep=args.keep))
    if args.save:
        section["targets"] = {"p95_ms": 100, "docs": 100_000}
        command = f"python -m bench.search --docs {args.docs} --rounds {args.rounds}"
        save_section("search", section, command=command, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
