"""`GET /export`: any article query as a file (JSONL, CSV or Parquet), streamed in constant memory (issue 20).

The rows are those of the list routes: the same filters (`consumer.api.article_filters`) and `since`, read
page by page from Redis with the same cursor paging as `/news/recent` (newest first) or `/news/top`; with
`q`, from the archive's full-text search instead (OpenSearch, best match first, `search_after` paging).
One page (`PAGE_SIZE` articles) is held at a time, whatever the export's size: the response is a
generator over pages, so a 100,000-row export costs the server what a 500-row one does.

An export is bounded: `limit` rows at most (default `EXPORT_DEFAULT`, at most `EXPORT_MAX`). The first page is
read before the response starts, so a store or archive that does not answer is a 503 and a query the search
engine refuses a 422, with a body; a failure after that (rare: the first page worked) cuts the stream off
without its end, which every HTTP client reports as an incomplete body, never as a shorter file.

Formats (docs/cli.md "Export"):
  jsonl    one stored article JSON per line, exactly as `GET /news/{id}` answers it (lossless);
  csv      `CSV_COLUMNS`, the analysis flattened: keywords and entities joined with "; " (entities as
           `text (TYPE)`); a header row first;
  parquet  `PARQUET_SCHEMA`: the same columns typed (timestamps in UTC, keywords as a list of strings, entities as
           a list of {text, type, id, name}), written in row groups of `ROW_GROUP_ROWS` with pyarrow.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from common.schemas import STORED, AnalyzedArticle
from common.search_query import ARCHIVE_FIELD, MAX_QUERY_LENGTH, QUERY_PATTERN, SearchParams, build_query
from common.store import ArticleFilters, ArticleStore, InvalidCursor, Order
from consumer.api import _UNAVAILABLE, _UTF8, FiltersDep, Since, _query_error
from consumer.deps import StoreDep
from consumer.search import Archive

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_DEFAULT",
    "EXPORT_MAX",
    "MEDIA_TYPES",
    "PAGE_SIZE",
    "PARQUET_SCHEMA",
    "ROW_GROUP_ROWS",
    "ExportFormat",
    "export_router",
    "flat_row",
]

EXPORT_MAX = 100_000
EXPORT_DEFAULT = 10_000
PAGE_SIZE = 500  # articles read (and held) at a time
ROW_GROUP_ROWS = 2_000  # Parquet rows per row group: what the writer holds before it writes them out
JOIN = "; "

ExportFormat = Literal["jsonl", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "url",
    "title",
    "description",
    "content",
    "source",
    "author",
    "published_at",
    "analyzed_at",
    "language",
    "category",
    "sentiment",
    "sentiment_score",
    "importance_score",
    "keywords",
    "entities",
    "summary",
    "engine_version",
)

_UTC_US = pa.timestamp("us", tz="UTC")
PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("content", pa.string()),
        ("source", pa.string()),
        ("author", pa.string()),
        ("published_at", _UTC_US),
        ("analyzed_at", _UTC_US),
        ("language", pa.string()),
        ("category", pa.string()),
        ("sentiment", pa.string()),
        ("sentiment_score", pa.float64()),
        ("importance_score", pa.float64()),
        ("keywords", pa.list_(pa.string())),
        (
            "entities",
            pa.list_(
                pa.struct([("text", pa.string()), ("type", pa.string()), ("id", pa.string()), ("name", pa.string())])
            ),
        ),
        ("summary", pa.string()),
        ("engine_version", pa.string()),
    ]
)


def flat_row(article: AnalyzedArticle) -> dict[str, Any]:
    """One article as a CSV row (`CSV_COLUMNS`): the analysis flattened, lists joined with "; "."""
    a = article.analysis
    return {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "description": article.description or "",
        "content": article.content or "",
        "source": article.source,
        "author": article.author or "",
        "published_at": article.published_at.isoformat(),
        "analyzed_at": article.analyzed_at.isoformat(),
        "language": a.language,
        "category": a.category,
        "sentiment": a.sentiment,
        "sentiment_score": a.sentiment_score,
        "importance_score": a.importance_score,
        "keywords": JOIN.join(a.keywords),
        "entities": JOIN.join(f"{e.text} ({e.type})" for e in a.entities),
        "summary": a.summary or "",
        "engine_version": a.engine_version,
    }


def _typed_row(article: AnalyzedArticle) -> dict[str, Any]:
    a = article.analysis
    return {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "description": article.description,
        "content": article.content,
        "source": article.source,
        "author": article.author,
        "published_at": article.published_at,
        "analyzed_at": article.analyzed_at,
        "language": a.language,
        "category": a.category,
        "sentiment": a.sentiment,
        "sentiment_score": a.sentiment_score,
        "importance_score": a.importance_score,
        "keywords": list(a.keywords),
        "entities": [{"text": e.text, "type": e.type, "id": e.id, "name": e.name} for e in a.entities],
        "summary": a.summary,
        "engine_version": a.engine_version,
    }


# --- where the rows come from: pages of (article, its stored JSON) --------------------------------

Rows = list[tuple[AnalyzedArticle, str]]


async def _store_pages(
    store: ArticleStore, order: Order, filters: ArticleFilters, since: datetime | None, limit: int
) -> AsyncIterator[Rows]:
    cursor: str | None = None
    left = limit
    while left > 0:
        try:
            page = await store.query(order, min(PAGE_SIZE, left), filters=filters, since=since, cursor=cursor)
        except InvalidCursor as exc:  # only this loop writes cursors; kept as a safety net
            raise _query_error("cursor", str(exc)) from exc
        if page.items:
            yield list(zip(page.items, page.raw, strict=True))
        left -= len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _archive_body(params: SearchParams, size: int) -> dict[str, Any]:
    """The search body of `GET /search` for these parameters, reduced to what an export reads: the whole
    stored article of each hit, in the same order, without facets, histogram or highlights."""
    body = build_query(params)
    for unused in ("aggs", "highlight"):
        body.pop(unused, None)
    body["size"] = size
    body["track_total_hits"] = False
    body["_source"] = [ARCHIVE_FIELD]
    return body


async def _archive_pages(archive: Archive, params: SearchParams, limit: int) -> AsyncIterator[Rows]:
    from opensearchpy.exceptions import RequestError

    after: list[Any] | None = None
    left = limit
    while left > 0:
        body = _archive_body(params, min(PAGE_SIZE, left))
        if after is not None:
            body["search_after"] = after
        try:
            hits = await archive.hits(body)
        except RequestError as exc:
            raise _query_error("q", f"the search engine refused it: {str(exc.error)[:300]}") from exc
        if hits is None:  # nothing archived yet: the alias does not exist
            return
        rows: Rows = []
        for hit in hits:
            stored = hit.get("_source", {}).get(ARCHIVE_FIELD)
            if stored is None:  # an old document without the whole article: it cannot be exported whole
                continue
            article = AnalyzedArticle.model_validate(stored, context=STORED)
            rows.append((article, article.model_dump_json()))
        if rows:
            yield rows
        left -= len(hits)
        if len(hits) < body["size"]:
            return
        after = hits[-1]["sort"]


# --- how they are written ---------------------------------------------------------------------------


class _Chunks:
    """A write-only file for pyarrow's writer that hands back what was written since the last `take()`, so
    each row group goes out as soon as it is written instead of piling up in a buffer."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _csv_text(rows: Iterator[dict[str, Any]], *, header: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


async def _encode(fmt: ExportFormat, first: Rows | None, pages: AsyncIterator[Rows]) -> AsyncIterator[bytes]:
    async def every() -> AsyncIterator[Rows]:
        if first is not None:
            yield first
        async for rows in pages:
            yield rows

    if fmt == "jsonl":
        async for rows in every():
            yield "".join(f"{raw}\n" for _, raw in rows).encode("utf-8")
        return
    if fmt == "csv":
        yield _csv_text(iter(()), header=True)  # the header even when nothing matches
        async for rows in every():
            yield _csv_text((flat_row(a) for a, _ in rows), header=False)
        return
    sink = _Chunks()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), PARQUET_SCHEMA, compression="zstd")
    pending: list[dict[str, Any]] = []
    try:
        async for rows in every():
            pending.extend(_typed_row(a) for a, _ in rows)
            if len(pending) >= ROW_GROUP_ROWS:
                table = pa.Table.from_pylist(pending, schema=PARQUET_SCHEMA)
                pending = []
                # Compressing a row group is CPU work: off the event loop, so other requests are served meanwhile.
                await asyncio.to_thread(writer.write_table, table)
                yield sink.take()
        if pending:
            await asyncio.to_thread(writer.write_table, pa.Table.from_pylist(pending, schema=PARQUET_SCHEMA))
    finally:
        writer.close()  # the footer; on a failure the stream is cut before it is sent
    yield sink.take()


# --- the route ----------------------------------------------------------------------------------------

export_router = APIRouter()

_FORMAT_CONTENT: dict[str, Any] = {
    MEDIA_TYPES["jsonl"]: {"schema": {"type": "string", "description": "one article JSON per line"}},
    MEDIA_TYPES["csv"].split(";")[0]: {"schema": {"type": "string", "description": "CSV with a header row"}},
    MEDIA_TYPES["parquet"]: {"schema": {"type": "string", "format": "binary"}},
}


@export_router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"description": "the file, streamed (Content-Disposition names it)", "content": _FORMAT_CONTENT},
        503: {**_UNAVAILABLE[503], "description": "the store (Redis) or, with `q`, the archive did not answer"},
    },
    tags=["export"],
    dependencies=_UTF8,
)
async def export(
    request: Request,
    store: StoreDep,
    filters: FiltersDep,
    fmt: Annotated[ExportFormat, Query(alias="format", description="jsonl, csv or parquet")] = "jsonl",
    limit: Annotated[
        int, Query(ge=1, le=EXPORT_MAX, description=f"at most this many articles (1-{EXPORT_MAX:,})")
    ] = EXPORT_DEFAULT,
    since: Since = None,
    order: Annotated[
        Order, Query(description="without `q`: `recent` (newest first) or `top` (most important first)")
    ] = "recent",
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_QUERY_LENGTH,
            pattern=QUERY_PATTERN,
            description="full-text query over the archive (OpenSearch), as `GET /search` reads it; rows then come "
            "best match first",
        ),
    ] = None,
) -> StreamingResponse:
    """Every article the query matches, up to `limit`, as one file: JSONL, CSV or Parquet (docs/cli.md "Export")."""
    pages: AsyncIterator[Rows]
    if q is not None and q.strip():
        params = SearchParams(
            q=q,
            since=since,
            lang=filters.language,
            source=filters.source,
            category=filters.category,
            sentiment=filters.sentiment,
            entity=filters.entity,
        )
        pages = _archive_pages(request.app.state.archive, params, limit)
    else:
        pages = _store_pages(store, order, filters, since, limit)
    # The first page before the response starts: a store that does not answer is still a 503 with a body.
    first = await anext(pages, None)
    extension = fmt
    return StreamingResponse(
        _encode(fmt, first, pages),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="news-export.{extension}"'},
    )
