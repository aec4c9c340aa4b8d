"""`news analyze`: articles from a file (JSONL, CSV or a list of URLs) through the local engine, offline.

The engine is `inference.core` (the one synchronous core the stream worker runs), in `inference.pool.CorePool`
processes when `--workers` is above 1: no Kafka, Redis or service is needed. Every input row ends either as one
analysed article (a line of the output, `AnalyzedArticle` JSON) or as one line of the reject file saying which
input line it was and why: nothing is dropped quietly.

Fields (first non-empty wins; names are case-sensitive):
  url           `url` or `link`                           required: the article's id is a hash of it
  title         `title` or `headline`                     required
  description   `description`, `subtitle` or `summary`
  content       `content`, `body` or `text`               NewsAPI's "[+1234 chars]" marker is removed
  published_at  `published_at`, `publishedAt` or `date`   ISO 8601, RFC 2822, 2017/2/7 or epoch seconds;
                                                          absent: the time of the analysis
  source        `source` (a name, or NewsAPI's {"id", "name"})  absent: "unknown"
  author        `author`
  language      `language`, `lang` or `language_hint`     a hint; absent: detected
So a NewsAPI article object (title, description, content, url, source, publishedAt) and a plain record (title,
body or text, url, published_at) are both read as they are. A list of URLs is one `http(s)://` URL per line:
each page is fetched and its title, date and main text extracted by the producer's full-text fetcher
(`producer.fulltext`: robots.txt honoured, one page at a time per host, bounded in size and time); a page that
cannot be fetched or gives no title or text is rejected with the reason.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from common.schemas import Analysis, AnalyzedArticle, RawArticle

__all__ = [
    "FIELD_ALIASES",
    "InputFormat",
    "Reject",
    "Row",
    "Summary",
    "count_rows",
    "detect_format",
    "read_rows",
    "run_analysis",
    "to_raw",
]

InputFormat = Literal["jsonl", "csv", "urls"]

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "url": ("url", "link"),
    "title": ("title", "headline"),
    "description": ("description", "subtitle", "summary"),
    "content": ("content", "body", "text"),
    "published_at": ("published_at", "publishedAt", "date"),
    "source": ("source",),
    "author": ("author",),
    "language_hint": ("language", "lang", "language_hint"),
}
_TRUNCATION_MARKER = re.compile(r"\s*\[\+\d+ chars\]\s*$")  # NewsAPI cuts `content` at 200 characters and says so
_URL_LINE = re.compile(r"^https?://\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class Row:
    """One input record: its data, or why it could not be read; `line` is where it starts (1-based)."""

    line: int
    data: dict[str, Any] | None
    original: str | dict[str, Any]
    error: str | None = None
    fetch: bool = False  # a bare URL: its page gives the article


@dataclass(frozen=True)
class Reject:
    line: int
    error: str
    original: str | dict[str, Any]

    def json(self) -> str:
        return json.dumps({"line": self.line, "error": self.error, "row": self.original}, ensure_ascii=False)


@dataclass
class Summary:
    analysed: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejects: list[Reject] = field(default_factory=list)  # the first few, for the terminal

    @property
    def rate(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


# --- reading --------------------------------------------------------------------------------------------


def detect_format(name: str | None, first_line: str) -> InputFormat:
    """By the file's extension, else by its first non-blank line (stdin): `{` is JSONL, a lone URL a URL list."""
    suffix = Path(name).suffix.lower() if name else ""
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".txt", ".urls", ".lst"):
        return "urls"
    text = first_line.strip()
    if text.startswith("{"):
        return "jsonl"
    if _URL_LINE.match(text):
        return "urls"
    return "csv"


def read_rows(stream: Iterable[str], fmt: InputFormat) -> Iterator[Row]:
    """Every record of `stream` with its line number; blank lines are skipped (they are not records)."""
    if fmt == "csv":
        yield from _csv_rows(stream)
        return
    for number, line in enumerate(stream, 1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if fmt == "urls":
            url = text.strip()
            if _URL_LINE.match(url):
                yield Row(number, {"url": url}, text, fetch=True)
            else:
                yield Row(number, None, text, "not an http(s) URL")
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Row(number, None, text, f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(data, dict):
            yield Row(number, None, text, f"not a JSON object (a {type(data).__name__})")
            continue
        yield Row(number, data, data)


def _csv_rows(stream: Iterable[str]) -> Iterator[Row]:
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield Row(1, None, "", f"the header row is not CSV: {exc}")
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    if "title" not in header and "headline" not in header:
        yield Row(1, None, ",".join(header), f"the header names no title column: {header[:12]}")
        return
    end = reader.line_num
    while True:
        start = end + 1  # a record may span lines (quoted newlines): its number is the line it starts on
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield Row(start, None, "", f"not CSV: {exc}")
            continue
        end = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            yield Row(
                start,
                None,
                {str(i): c for i, c in enumerate(record)}
                if len(record) > len(header)
                else dict(zip(header, record, strict=False)),
                f"{len(record)} fields where the header has {len(header)}",
            )
            continue
        data = dict(zip(header, record, strict=True))
        yield Row(start, data, data)


def count_rows(path: Path, fmt: InputFormat) -> int | None:
    """How many records the file holds (for the progress bar), or None when that cannot be told cheaply."""
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            if fmt == "csv":
                csv.field_size_limit(sys.maxsize)
                return max(0, sum(1 for r in csv.reader(fh) if any(c.strip() for c in r)) - 1)
            return sum(1 for line in fh if line.strip())
    except (OSError, csv.Error):
        return None


def _first(data: dict[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        return value
    return None


def to_raw(data: dict[str, Any], *, now: datetime | None = None) -> RawArticle:
    """The article a record describes (see the module's field table); ValueError naming the fields at fault."""
    picked = {name: _first(data, aliases) for name, aliases in FIELD_ALIASES.items()}
    missing = [name for name in ("url", "title") if picked[name] is None]
    if missing:
        known = ", ".join("/".join(FIELD_ALIASES[m]) for m in missing)
        raise ValueError(f"missing {known}")
    if isinstance(picked["content"], str):
        picked["content"] = _TRUNCATION_MARKER.sub("", picked["content"])
    if picked["published_at"] is None:
        picked["published_at"] = now or datetime.now(UTC)
    elif isinstance(picked["published_at"], str) and picked["published_at"].strip().isdigit():
        picked["published_at"] = int(picked["published_at"].strip())  # epoch seconds written as text (CSV)
    article = {k: v for k, v in picked.items() if v is not None}
    article["origin"] = "cli"
    try:
        return RawArticle.model_validate(article, strict=False)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'article'}: {e['msg']}" for e in exc.errors())
        ) from None
    except ValueError as exc:  # raised by a model validator (text that is not valid Unicode)
        raise ValueError(str(exc)) from None


# --- analysing --------------------------------------------------------------------------------------------


async def run_analysis(
    rows: Iterable[Row],
    *,
    tier: Literal["fast", "standard"],
    batch_size: int,
    workers: int,
    write: Callable[[str], None],
    reject: Callable[[Reject], None],
    advance: Callable[[int], None],
    ready: Callable[[], None] | None = None,
    threads: int = 1,
) -> Summary:
    """Analyse every valid row in batches of `batch_size` on `workers` engine processes, in input order.

    `ready` is called once the models are loaded (the rate counts from there); `advance` per row done.
    """
    from inference.core import CoreSettings, item_of
    from inference.pool import CorePool

    summary = Summary()
    now = datetime.now(UTC)

    def refuse(line: int, error: str, original: str | dict[str, Any]) -> None:
        item = Reject(line, error, original)
        summary.rejected += 1
        if len(summary.rejects) < 20:
            summary.rejects.append(item)
        reject(item)
        advance(1)

    pool = CorePool(CoreSettings(tier=tier, threads=threads), processes=workers)
    pages = _Pages()
    try:
        await pool.start()
        if ready is not None:
            ready()
        started = time.perf_counter()
        batch: list[tuple[Row, RawArticle]] = []

        async def flush() -> None:
            if not batch:
                return
            t = time.perf_counter()
            results: list[Analysis | None]
            try:
                results = [r.analysis for r in await pool.analyze([item_of(a) for _, a in batch])]
            except Exception:  # noqa: BLE001 - one article broke the batch: find it, keep the others
                results = await _one_by_one(pool, batch, refuse)
            elapsed_ms = round((time.perf_counter() - t) * 1000, 3)
            for (_, article), analysis in zip(batch, results, strict=True):
                if analysis is None:
                    continue
                done = analysis.model_copy(update={"latency_ms": elapsed_ms})
                write(AnalyzedArticle.from_raw(article, done).model_dump_json())
                summary.analysed += 1
            advance(len(batch) - results.count(None))
            batch.clear()

        for row in rows:
            if row.data is None:
                refuse(row.line, row.error or "unreadable", row.original)
                continue
            data = row.data
            if row.fetch:
                fetched = await pages.fetch(data["url"])
                if isinstance(fetched, str):
                    refuse(row.line, fetched, row.original)
                    continue
                data = fetched
            try:
                article = to_raw(data, now=now)
            except ValueError as exc:
                refuse(row.line, str(exc), row.original)
                continue
            batch.append((row, article))
            if len(batch) >= batch_size:
                await flush()
        await flush()
        summary.seconds = time.perf_counter() - started
    finally:
        pool.close()
        await pages.close()
    return summary


class _Pages:
    """Article pages for bare URLs, through the producer's full-text fetcher (opened on the first URL)."""

    def __init__(self) -> None:
        self._fetcher: Any = None
        self._client: Any = None

    async def fetch(self, url: str) -> dict[str, Any] | str:
        """The article the page at `url` gives, or why there is none."""
        import httpx

        from producer.fulltext import FullText, FullTextFailure
        from producer.settings import FullTextSettings

        if self._fetcher is None:
            self._fetcher = FullText(FullTextSettings(enabled=True))
            self._client = httpx.AsyncClient()
        try:
            page = await self._fetcher.fetch_page(url, self._client)
        except FullTextFailure as exc:
            return f"could not fetch the page ({exc.reason}): {exc}"
        if not page.title:
            return "the page gives no title"
        return {"url": url, "title": page.title, "content": page.text, "published_at": page.date}

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def _one_by_one(
    pool: Any, batch: list[tuple[Row, RawArticle]], refuse: Callable[[int, str, str | dict[str, Any]], None]
) -> list[Analysis | None]:
    from inference.core import item_of

    out: list[Analysis | None] = []
    for row, article in batch:
        try:
            out.append((await pool.analyze([item_of(article)]))[0].analysis)
        except Exception as exc:  # noqa: BLE001 - reported with the row, the rest go on
            refuse(row.line, f"the engine failed on it: {type(exc).__name__}: {exc}"[:500], row.original)
            out.append(None)
    return out
