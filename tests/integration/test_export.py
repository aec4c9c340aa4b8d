"""`GET /export` on a real consumer process over real Redis (and OpenSearch for `q`): every row round-trips in
each format, the list routes' filters and the limit apply, and an export of 10,000 articles streams in constant
memory (the consumer process's peak RSS, VmHWM in /proc, hardly moves between a warm-up export and the big one)."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from redis.asyncio import Redis

from common.schemas import STORED, AnalyzedArticle
from common.search_index import document, index_name
from common.store import ArticleStore
from consumer.export import CSV_COLUMNS, flat_row
from harness.processes import ServiceProcess
from tests.integration.test_store import make_article

pytestmark = pytest.mark.integration

N = 10_000
# The body is what makes an article weigh: about 2.5 KB each, so 10,000 of them (25 MB as JSON, several times
# that as Python objects) would show in the peak RSS if the export held them.
BODY = " ".join(f"word{i % 97}" for i in range(400))


def _article(n: int) -> AnalyzedArticle:
    sentiment = ("positive", "neutral", "negative")[n % 3]
    return make_article(
        n,
        sentiment=sentiment,
        score={"positive": 0.5, "neutral": 0.0, "negative": -0.5}[sentiment],
        entities=("Acme", "Jane Doe") if n % 2 else (),
        content=f"{BODY} {n}",
        category="business" if n % 5 == 0 else "world",
    )


async def _fill(redis: Redis, prefix: str, articles: list[AnalyzedArticle]) -> None:
    store = ArticleStore(redis, prefix=prefix, stream_maxlen=20_000)
    for i in range(0, len(articles), 16):  # a few at once: the test client's connection pool is small
        await asyncio.gather(*(store.put(a) for a in articles[i : i + 16]))


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def _download(base: str, params: dict[str, str | int]) -> bytes:
    chunks = []
    with httpx.stream("GET", f"{base}/export", params=params, timeout=120) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_bytes():
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
async def consumer(spawn: Callable[..., ServiceProcess], redis: Redis, namespace: str) -> tuple[str, int]:
    proc = spawn("consumer")
    assert proc.proc is not None
    return f"http://127.0.0.1:{proc.port}", proc.proc.pid


async def test_export_of_10000_articles_streams_in_constant_memory_and_round_trips(
    consumer: tuple[str, int], redis: Redis, namespace: str, tmp_path: Path
) -> None:
    base, pid = consumer
    articles = [_article(n) for n in range(N)]
    await _fill(redis, f"{namespace}:", articles)
    by_id = {a.id: a for a in articles}

    # Warm-up: every format once, past one Parquet row group and several pages, so that what the steady state
    # needs (imports, buffers, allocator arenas) is already in the peak.
    for fmt in ("jsonl", "csv", "parquet"):
        await asyncio.to_thread(_download, base, {"format": fmt, "limit": 2_500})
    before = _peak_rss_kb(pid)

    jsonl = await asyncio.to_thread(_download, base, {"format": "jsonl", "limit": N})
    csv_body = await asyncio.to_thread(_download, base, {"format": "csv", "limit": N})
    parquet = await asyncio.to_thread(_download, base, {"format": "parquet", "limit": N})
    after = _peak_rss_kb(pid)
    grown_mb = (after - before) / 1024
    print(
        f"consumer peak RSS {before / 1024:.1f} MB -> {after / 1024:.1f} MB (+{grown_mb:.1f} MB); "
        f"jsonl {len(jsonl) / 1e6:.1f} MB, csv {len(csv_body) / 1e6:.1f} MB, parquet {len(parquet) / 1e6:.1f} MB"
    )
    # Holding the export would cost at least its JSON size (about 27 MB) on top; pages of 500 cost a few MB.
    assert grown_mb < 15, f"peak RSS grew by {grown_mb:.1f} MB over a 10,000-article export"

    # JSONL: the stored articles exactly, newest first, each once.
    lines = jsonl.decode("utf-8").splitlines()
    assert len(lines) == N
    got = [AnalyzedArticle.model_validate_json(line, context=STORED) for line in lines]
    assert [a.id for a in got] == [a.id for a in sorted(articles, key=lambda a: a.published_at, reverse=True)]
    for article in got:
        assert article == by_id[article.id]

    # CSV: the documented columns, the analysis flattened.
    rows = list(csv.DictReader(io.StringIO(csv_body.decode("utf-8"), newline="")))
    assert len(rows) == N
    assert tuple(rows[0]) == CSV_COLUMNS
    for row in rows:
        expected = {k: str(v) for k, v in flat_row(by_id[row["id"]]).items()}
        assert row == expected
    assert any(row["entities"] == "Acme (ORG); Jane Doe (ORG)" for row in rows)

    # Parquet: row groups, typed columns, every value back.
    path = tmp_path / "export.parquet"
    path.write_bytes(parquet)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == N and meta.num_row_groups >= N // 2_000
    for record in pq.read_table(path).to_pylist():
        article = by_id[record["id"]]
        assert record["title"] == article.title and record["content"] == article.content
        assert record["published_at"] == article.published_at
        assert record["sentiment"] == article.analysis.sentiment
        assert record["sentiment_score"] == article.analysis.sentiment_score
        assert record["keywords"] == article.analysis.keywords
        assert [e["text"] for e in record["entities"]] == [e.text for e in article.analysis.entities]


async def test_export_applies_the_list_filters_and_the_limit(
    consumer: tuple[str, int], redis: Redis, namespace: str
) -> None:
    base, _ = consumer
    articles = [_article(n) for n in range(300)]
    await _fill(redis, f"{namespace}:", articles)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        negative = (await client.get("/export", params={"sentiment": "negative", "category": "business"})).text
        ids = {AnalyzedArticle.model_validate_json(line, context=STORED).id for line in negative.splitlines()}
        assert ids == {
            a.id for a in articles if a.analysis.sentiment == "negative" and a.analysis.category == "business"
        }

        top = (await client.get("/export", params={"order": "top", "limit": 7, "format": "csv"})).text
        assert len(top.splitlines()) == 1 + 7

        empty = await client.get("/export", params={"format": "csv", "source": "nobody"})
        assert empty.status_code == 200 and empty.text.splitlines() == [",".join(CSV_COLUMNS)]
        assert empty.headers["content-type"].startswith("text/csv")
        assert "news-export.csv" in empty.headers["content-disposition"]

        for bad in ({"format": "xml"}, {"limit": 100_001}, {"limit": 0}, {"sentiment": "happy"}):
            refused = await client.get("/export", params=bad)
            assert refused.status_code == 422, bad


async def test_news_export_command_writes_the_file(
    consumer: tuple[str, int], redis: Redis, namespace: str, tmp_path: Path
) -> None:
    base, _ = consumer
    articles = [_article(n) for n in range(120)]
    await _fill(redis, f"{namespace}:", articles)
    target = tmp_path / "out.parquet"
    done = subprocess.run(  # noqa: S603 - our own entry point
        [
            sys.executable,
            "-m",
            "news_cli.main",
            "export",
            "-f",
            "parquet",
            "-o",
            str(target),
            "--language",
            "en",
            "--api-url",
            base,
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert pq.read_table(target).num_rows == 120
    assert not (tmp_path / "out.parquet.part").exists()

    refused = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "news_cli.main",
            "export",
            "-o",
            str(tmp_path / "x.jsonl"),
            "--sentiment",
            "happy",
            "--api-url",
            base,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "happy" in refused.stderr  # refused by the CLI's own choices
    gone = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "news_cli.main",
            "export",
            "-o",
            str(tmp_path / "y.jsonl"),
            "--since",
            "yesterday",
            "--api-url",
            base,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gone.returncode == 1 and "since" in gone.stderr, gone.stderr  # the server's 422, in one line
    assert not (tmp_path / "y.jsonl").exists() and not (tmp_path / "y.jsonl.part").exists()


async def test_export_with_q_reads_the_archive_search(
    spawn: Callable[..., ServiceProcess], search_env: dict[str, str], opensearch: Any, search_prefix: str
) -> None:
    articles = [make_article(n, title=f"{'Bridge' if n % 3 == 0 else 'Harbour'} works, part {n}") for n in range(30)]
    for article in articles:
        await opensearch.index(
            index=index_name(search_prefix, article.published_at), id=article.id, body=document(article)
        )
    await opensearch.indices.refresh(index=f"{search_prefix}*")
    proc = spawn("consumer", env=search_env)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.port}", timeout=30) as client:
        found = await client.get("/export", params={"q": "bridge", "limit": 100})
        assert found.status_code == 200, found.text
        got = [AnalyzedArticle.model_validate_json(line, context=STORED) for line in found.text.splitlines()]
        assert sorted(a.id for a in got) == sorted(a.id for a in articles if a.title.startswith("Bridge"))
        assert got[0] == next(a for a in articles if a.id == got[0].id)  # the whole stored article

        capped = await client.get("/export", params={"q": "works", "limit": 4, "format": "csv"})
        assert len(capped.text.splitlines()) == 1 + 4
