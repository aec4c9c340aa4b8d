"""The installed `news` command as a real process: `analyze` on a real CSV (rows of the replay corpus, with a bad row
and a record that spans lines) with the standard engine, `analyze -` on NewsAPI JSONL from stdin, and `tail`
following a real consumer while articles are stored."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from common.schemas import AnalyzedArticle, RawArticle
from common.store import ArticleStore
from harness.processes import ServiceProcess
from producer.corpus import read_corpus
from tests.integration.test_store import make_article
from tests.support.pages.server import page_server

pytestmark = pytest.mark.integration

COLUMNS = ["url", "title", "description", "content", "published_at", "source"]


def _news() -> list[str]:
    found = shutil.which("news", path=str(Path(sys.executable).parent))
    # The console script `pip install` made; from a bare checkout, the module it runs.
    return [found] if found else [sys.executable, "-m", "news_cli.main"]


def test_analyze_a_real_csv_writes_analyses_and_rejects_the_bad_row_with_its_line(tmp_path: Path) -> None:
    rows = [r for r in itertools.islice(read_corpus(), 40) if r.get("title") and r.get("content")][:16]
    source = tmp_path / "articles.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for i, row in enumerate(rows):
            if i == 2:
                row = {**row, "content": "First paragraph.\n\nSecond paragraph."}  # spans lines 4-6
            if i == 5:
                row = {**row, "title": ""}  # the bad row: no title
            writer.writerow(row)
    lines = source.read_text(encoding="utf-8").splitlines()
    bad_line = next(n for n, text in enumerate(lines, 1) if text.startswith(rows[5]["url"]))
    assert bad_line == 9  # header, rows 1-2, row 3 over three lines, rows 4-5: the sixth row starts on line 9

    output = tmp_path / "out.jsonl"
    done = subprocess.run(  # noqa: S603 - our own command
        [*_news(), "analyze", str(source), "-o", str(output), "--batch-size", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr  # done, with a rejected row
    assert f"line {bad_line}: missing title/headline" in done.stderr
    assert "analysed 15, rejected 1" in done.stderr and "articles/s" in done.stderr

    analysed = [AnalyzedArticle.model_validate_json(line) for line in output.read_text().splitlines()]
    expected = [RawArticle.model_validate(r) for i, r in enumerate(rows) if i != 5]
    assert [a.id for a in analysed] == [r.id for r in expected]  # in input order, each once
    for article in analysed:
        assert article.analysis.engine_version != "0" and article.analysis.language == "en"
        assert article.analysis.embedding is not None  # the standard tier ran, not the lexicons
        assert article.origin == "cli"
    assert analysed[2].content == "First paragraph. Second paragraph."

    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert rejects == [{"line": bad_line, "error": "missing title/headline", "row": rejects[0]["row"]}]
    assert rejects[0]["row"]["url"] == rows[5]["url"]  # the row as it was, nothing lost
    assert not (tmp_path / "out.jsonl.part").exists()


def test_analyze_newsapi_jsonl_from_stdin(tmp_path: Path) -> None:
    articles = [
        {
            "source": {"id": None, "name": "Example Wire"},
            "title": f"Central bank raises rates for the {n}th time",
            "description": "Markets fell after the decision.",
            "url": f"https://example.com/rates/{n}",
            "publishedAt": "2024-11-26T05:00:00Z",
            "content": "The central bank said on Tuesday it would raise its main rate… [+2829 chars]",
        }
        for n in range(5)
    ]
    text = (
        "\n".join(json.dumps(a) for a in articles[:3]) + "\n{broken\n" + "\n".join(json.dumps(a) for a in articles[3:])
    )
    done = subprocess.run(  # noqa: S603
        [*_news(), "analyze", "-", "--tier", "fast", "--rejects", str(tmp_path / "bad.jsonl"), "--quiet"],
        input=text,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    out = [AnalyzedArticle.model_validate_json(line) for line in done.stdout.splitlines()]
    assert len(out) == 5 and {a.source for a in out} == {"Example Wire"}
    assert all("[+2829 chars]" not in (a.content or "") for a in out)
    reject = json.loads((tmp_path / "bad.jsonl").read_text())
    assert reject["line"] == 4 and reject["error"].startswith("not JSON") and reject["row"] == "{broken"


def test_analyze_a_list_of_urls_fetches_each_page(tmp_path: Path) -> None:
    with page_server() as pages:
        urls = [
            pages.page("harbour-bridge.html"),
            pages.page("private/leak.html"),  # robots.txt disallows it: never fetched
            pages.page("missing.html"),  # 404
            pages.page("wind-farm.html"),
        ]
        (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
        done = subprocess.run(  # noqa: S603
            [*_news(), "analyze", "urls.txt", "--tier", "fast", "-o", "out.jsonl", "--quiet"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert "/private/leak.html" not in pages.requests
    assert done.returncode == 1, done.stderr
    out = [AnalyzedArticle.model_validate_json(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [a.url for a in out] == [urls[0], urls[3]]
    assert all(a.title and len(a.content or "") > 500 for a in out)  # the page's title and main text
    assert "Engineers replaced" in (out[0].content or "")
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["error"].split(":")[0]) for r in rejects] == [
        (2, "could not fetch the page (robots)"),
        (3, "could not fetch the page (http_4xx)"),
    ]


async def test_tail_follows_the_live_feed_with_filters(
    spawn: Callable[..., ServiceProcess], redis: Redis, namespace: str
) -> None:
    consumer = spawn("consumer")
    base = f"http://127.0.0.1:{consumer.port}"
    tail = await asyncio.create_subprocess_exec(
        *_news(),
        "tail",
        "--json",
        "--count",
        "2",
        "--sentiment",
        "negative",
        "--api-url",
        base,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    store = ArticleStore(redis, prefix=f"{namespace}:")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:  # wait until it is connected
            for _ in range(150):
                if (await client.get("/")).json()["websocket_clients"] >= 1:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("news tail did not connect")
        for n in range(6):
            await store.put(make_article(n, sentiment="negative" if n % 3 == 0 else "positive", score=0.0))
        stdout, stderr = await asyncio.wait_for(tail.communicate(), 60)
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()
    assert tail.returncode == 0, stderr.decode()
    got = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [a["url"] for a in got] == ["https://example.com/story/0", "https://example.com/story/3"]
    assert {a["analysis"]["sentiment"] for a in got} == {"negative"}
