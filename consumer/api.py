"""The consumer's REST routes: articles (recent, top, by id), stories, and statistics, plus the open ops
routes.

`router` serves data and is mounted behind the optional bearer token; `ops` (health, readiness, metrics)
stays open for probes and Prometheus. The live WebSocket is `consumer.ws`.

Reads send the stored JSON as it is (no parse, validate, serialise round trip): a list sends each article's
list view, written beside the record when it was stored (`common.store.list_view`: no bodies, no embedding,
a `lead`), or with `view=full` the whole records. Every data answer carries a weak `ETag` (a hash of the
body) and `Cache-Control: no-cache`: a client that sends it back in `If-None-Match` gets `304 Not Modified`
without the body. Answers of `GZIP_MIN_BYTES` or more are gzip-compressed for clients that accept it.

Workers: one uvicorn process serves from one asyncio thread, so it uses at most one core; run one worker per
core given to the consumer (`uvicorn consumer.main:app --workers N`), not more (extra workers on a core only
add switches). Workers share nothing but Redis and Kafka: each runs its own ingest (one consumer group, the
partitions shared out) and its own WebSocket hub tailing the store's event stream. Dependencies here are
`async def`: FastAPI runs a plain `def` dependency in a thread pool, a thread hop per request.

The OpenAPI document is the contract: every parameter's constraint is declared where it is validated (a
pattern, a range, an enum), so any value the document allows is accepted, and every status a route can
answer is listed with its body.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from common.schemas import Analysis, AnalyzedArticle, Sentiment
from common.stats import SentimentBucket, TrendsSnapshot
from common.store import CURSOR_PATTERNS, LEAD_MAX, ArticleFilters, ArticleStore, InvalidCursor, Order, View, list_view
from common.stories import Story
from common.story_store import (
    STORY_CURSOR_PATTERNS,
    Coverage,
    InvalidStoryCursor,
    RankedStory,
    StoryDetail,
    StoryFilters,
    StoryOrder,
    newest_first,
    ranked_json,
    story_score,
)
from common.webapp import ops_router
from consumer.deps import StatsDep, StoreDep, StoriesDep
from consumer.ranking import TOP_CURSOR_PATTERN, top_page

__all__ = [
    "BUCKET_PATTERN",
    "GZIP_LEVEL",
    "GZIP_MIN_BYTES",
    "NEXT_CURSOR_HEADER",
    "UNAUTHORIZED",
    "WINDOW_PATTERN",
    "AnalysisSummary",
    "ArticleSummary",
    "ErrorBody",
    "SentimentStats",
    "Status",
    "UnavailableBody",
    "ops",
    "router",
    "seconds",
]

NEXT_CURSOR_HEADER = "X-Next-Cursor"


async def _readiness(request: Request) -> dict[str, bool]:
    state = request.app.state
    checks = {"redis": await state.store.ping(), "kafka": bool(state.ingestor.running)}
    archive = getattr(state, "archive", None)
    if archive is not None:
        checks["search"] = await archive.answers()
    return checks


# Search is reported, not required: /search answers 503 on its own while OpenSearch is down.
ops = ops_router(lambda r: r.app.state.registry, _readiness, optional={"search"})


# --- models -------------------------------------------------------------------------------------


class Status(BaseModel):
    service: Literal["consumer"] = "consumer"
    status: Literal["running"] = "running"
    stored: int = Field(description="articles in the recent index")
    websocket_clients: int = Field(description="WebSocket clients of this replica")


class ErrorBody(BaseModel):
    detail: str


# The list view's shape, derived from the stored record's models so that the two cannot drift apart: the
# same fields, types and limits, less the bodies and the embedding (what `common.store.list_view` drops).
_SUMMARY = ConfigDict(extra="forbid", frozen=True)
AnalysisSummary = create_model(  # type: ignore[call-overload]
    "AnalysisSummary",
    __config__=_SUMMARY,
    __doc__="An article's analysis as a list shows it: everything but the embedding.",
    **{name: (f.annotation, f) for name, f in Analysis.model_fields.items() if name != "embedding"},
)
ArticleSummary = create_model(  # type: ignore[call-overload]
    "ArticleSummary",
    __config__=_SUMMARY,
    __doc__="An article as a list shows it (the default `view=lean` of `/news/recent` and `/news/top`): no "
    "`description` or `content` but a `lead`, and the analysis without its embedding. `view=full` or "
    "`GET /news/{id}` give the whole AnalyzedArticle.",
    **{
        name: (f.annotation, f)
        for name, f in AnalyzedArticle.model_fields.items()
        if name not in ("description", "content", "analysis")
    },
    lead=(
        str | None,
        Field(
            default=None,
            description=f"the article's description, or where it has none the start of its content (at most "
            f"{LEAD_MAX} characters); null when it has neither",
        ),
    ),
    analysis=(AnalysisSummary, ...),
)


class UnavailableBody(BaseModel):
    """What a 503 says: the store (Redis) did not answer; try again."""

    detail: str
    error: str = Field(description="the error's class, e.g. StoreError")


class SentimentStats(BaseModel):
    since: datetime
    until: datetime
    bucket_seconds: int
    source: str | None = Field(description="the source asked for; null means every source summed")
    buckets: list[SentimentBucket] = Field(description="buckets that hold data, oldest first")


# Listed on every data route (main.py adds 401 when a token is set).
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "missing or wrong bearer token",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
    }
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": UnavailableBody, "description": "the store (Redis) did not answer; try again"}
}
_CACHE_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "weak validator of the answer's content; send it back in `If-None-Match`",
        "schema": {"type": "string", "pattern": '^W/"[0-9a-f]{32}"$'},
    },
    "Cache-Control": {"description": "always `no-cache`: keep it, revalidate it", "schema": {"type": "string"}},
}
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "not modified: `If-None-Match` named the current ETag (no body)",
        "headers": _CACHE_HEADERS,
    }
}
_CACHED: dict[int | str, dict[str, Any]] = {200: {"headers": _CACHE_HEADERS}, **_NOT_MODIFIED}


# --- query text must be UTF-8 -------------------------------------------------------------------


def _query_error(name: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": message, "input": None}])


async def _utf8_query(request: Request) -> None:
    """Refuse a query whose percent-escapes are not UTF-8 (an unpaired UTF-16 surrogate, say), naming the
    parameter: Starlette would turn them into U+FFFD and answer as if that had been asked."""
    raw: bytes = request.scope.get("query_string", b"")
    if b"%" not in raw and raw.isascii():  # nothing escaped: ASCII is UTF-8 (the common case, checked cheaply)
        return
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        for text in (name, value):
            try:
                text.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                shown = name.encode("latin-1").decode("utf-8", "replace")[:40]
                raise _query_error(shown, "not UTF-8 text (an unpaired surrogate or a stray byte)") from None


router = APIRouter()
_UTF8 = [Depends(_utf8_query)]  # on every route that reads the query


# --- parameters ---------------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=200, description="how many articles (1-200)")]
ArticleId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the article's id (32 hex characters)")]
# Filter text must hold something besides whitespace (it is stripped). \x1c-\x1f spelt out: Python's `\s`
# counts them as whitespace and Rust's (pydantic's) does not, and the document must mean one thing.
_FilterText = Query(min_length=1, max_length=200, pattern=r"[^\s\x1c-\x1f]")

# Durations, exactly as accepted: a pattern says the unit and the range, so nothing the document allows
# is refused. Seconds (bare or `s`) 1-2678400, minutes 1-44640, hours 1-744, days 1-31: at most 31 days.
WINDOW_PATTERN = (
    r"^(?:(?:[1-9][0-9]{0,5}|1[0-9]{6}|2[0-5][0-9]{5}|26[0-6][0-9]{4}|267[0-7][0-9]{3}|2678[0-3][0-9]{2}|2678400)s?"
    r"|(?:[1-9][0-9]{0,3}|[1-3][0-9]{4}|4[0-3][0-9]{3}|44[0-5][0-9]{2}|446[0-3][0-9]|44640)m"
    r"|(?:[1-9][0-9]?|[1-6][0-9]{2}|7[0-3][0-9]|74[0-4])h"
    r"|(?:[1-9]|[12][0-9]|3[01])d)$"
)
# Bucket widths: a positive multiple of 5 minutes up to 7 days: 5m-10080m in steps of 5, 1h-168h, 1d-7d.
BUCKET_PATTERN = (
    r"^(?:(?:5|[1-9][0-9]{0,2}[05]|100[0-7][05]|10080)m"
    r"|(?:[1-9]|[1-9][0-9]|1[0-5][0-9]|16[0-8])h"
    r"|[1-7]d)$"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    """`90s`, `300`, `5m`, `1h`, `7d` in seconds (the route's pattern has checked the shape and range)."""
    unit = duration[-1] if duration[-1] in _UNITS else "s"
    return int(duration.rstrip("smhd")) * _UNITS[unit]


def _iso_only(value: Any) -> Any:
    # Pydantic would also take a number of seconds ("0.5") as a date-time; the document says ISO 8601.
    if isinstance(value, str) and not re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}", value):
        raise ValueError("an ISO 8601 date-time such as 2024-05-01T12:00:00Z (no zone means UTC)")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


async def article_filters(
    sentiment: Annotated[Sentiment | None, Query(description="positive, neutral or negative")] = None,
    source: Annotated[str | None, _FilterText, Query(description="source name (case-insensitive)")] = None,
    category: Annotated[str | None, _FilterText, Query(description="category (case-insensitive)")] = None,
    language: Annotated[str | None, _FilterText, Query(description="language code, e.g. en, ko")] = None,
    entity: Annotated[str | None, _FilterText, Query(description="an entity's text (case-insensitive)")] = None,
) -> ArticleFilters:
    try:
        return ArticleFilters(sentiment=sentiment, source=source, category=category, language=language, entity=entity)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from exc


FiltersDep = Annotated[ArticleFilters, Depends(article_filters)]
Since = Annotated[
    IsoDateTime | None,
    Query(description="only articles published at or after this time (ISO 8601; no zone means UTC)"),
]


def _cursor(order: Order) -> Any:
    return Query(
        pattern=CURSOR_PATTERNS[order],
        description=f"continue after the page that returned this value in `{NEXT_CURSOR_HEADER}`",
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- articles -----------------------------------------------------------------------------------


def _paged_by(pattern: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "headers": {
                NEXT_CURSOR_HEADER: {
                    "description": "pass as `cursor` for the next page; absent on the last page",
                    "schema": {"type": "string", "pattern": pattern},
                },
                **_CACHE_HEADERS,
            }
        },
        **_NOT_MODIFIED,
        **_UNAVAILABLE,
    }


def _paged(order: Order) -> dict[int | str, dict[str, Any]]:
    return _paged_by(CURSOR_PATTERNS[order])


@router.get("/", response_model=Status, responses=_UNAVAILABLE, tags=["status"])
async def status(request: Request, store: StoreDep) -> Status:
    return Status(stored=await store.count(), websocket_clients=len(request.app.state.hub))


async def _page(
    request: Request,
    store: ArticleStore,
    order: Order,
    limit: int,
    filters: ArticleFilters,
    since: datetime | None,
    cursor: str | None,
    view: View,
) -> Response:
    try:
        page = await store.page_json(order, limit, filters=filters, since=since, cursor=cursor, view=view)
    except InvalidCursor as exc:  # the pattern admits only cursors of this list; kept as a safety net
        raise _query_error("cursor", str(exc)) from exc
    headers = {} if page.next_cursor is None else {NEXT_CURSOR_HEADER: page.next_cursor}
    # The records were validated when stored: send their JSON as it is instead of building models
    # and serialising them again (that round trip was most of a read's CPU; see docs/BENCHMARKS.md).
    return _send(request, page.body, headers)


def _json(request: Request, body: str, headers: dict[str, str] | None = None) -> Response:
    return _send(request, body.encode("utf-8"), headers)


_ARTICLE_LIST = list[ArticleSummary] | list[AnalyzedArticle]


GZIP_MIN_BYTES = 1400
"""Answers at least this long are gzip-compressed for a client that accepts gzip: below about one TCP segment
compressing saves no round trip and costs CPU (measured in bench/serving.py)."""
GZIP_LEVEL = 1
"""zlib level: on a 20-item list (23 KB lean, 69 KB full) level 1 gives 7.0 KB / 27.6 KB against level 6's
6.4 KB / 24.3 KB at about half the CPU (measured on the bench's corpus records)."""


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # Weak comparison (RFC 9110 13.1.2): `W/` is ignored on both sides; `*` matches any current answer.
    wanted = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == wanted for t in (x.strip() for x in if_none_match.split(",")))


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip().rstrip("0").rstrip(".") in ("0", ""))
    return False


def _send(request: Request, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """`body` (JSON) with a weak ETag; 304 when `If-None-Match` holds it; gzip when accepted and worth it.

    The ETag is weak because the same JSON is sent plain or gzip-compressed: it names the content, not the
    bytes on the wire. `no-cache` lets a browser keep the answer but ask again each time (with the ETag)."""
    # SHA-1 (a validator, not a signature): hardware-accelerated, 3x faster than BLAKE2 here on 20 KB.
    etag = f'W/"{hashlib.sha1(body, usedforsecurity=False).hexdigest()[:32]}"'
    out = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding", **(headers or {})}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=out)
    if len(body) >= GZIP_MIN_BYTES and _accepts_gzip(request.headers.get("accept-encoding", "")):
        body = gzip.compress(body, GZIP_LEVEL, mtime=0)
        out["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=out)


_VIEW = Query(
    description="`lean` (default): what a list shows (ArticleSummary: a `lead` instead of `description` and "
    "`content`, no embedding); `full`: the whole stored AnalyzedArticle"
)


@router.get(
    "/news/recent",
    response_model=_ARTICLE_LIST,
    responses=_paged("recent"),
    tags=["articles"],
    dependencies=_UTF8,
)
async def recent(
    request: Request,
    store: StoreDep,
    filters: FiltersDep,
    limit: Limit = 20,
    since: Since = None,
    cursor: Annotated[str | None, _cursor("recent")] = None,
    view: Annotated[View, _VIEW] = "lean",
) -> Response:
    """Newest first (by publication time), filtered; page on with `cursor`. Lean list items unless `view=full`."""
    return await _page(request, store, "recent", limit, filters, since, cursor, view)


@router.get(
    "/news/top",
    response_model=_ARTICLE_LIST,
    responses=_paged_by(TOP_CURSOR_PATTERN),
    tags=["articles"],
    dependencies=_UTF8,
)
async def top(
    request: Request,
    store: StoreDep,
    stories: StoriesDep,
    filters: FiltersDep,
    limit: Limit = 10,
    since: Since = None,
    cursor: Annotated[
        str | None,
        Query(
            pattern=TOP_CURSOR_PATTERN,
            description=f"continue after the page that returned this value in `{NEXT_CURSOR_HEADER}`",
        ),
    ] = None,
    view: Annotated[View, _VIEW] = "lean",
) -> Response:
    """Top stories: one representative article per story, by importance from coverage (docs/api.md "Stories"),
    then articles with no story yet by importance_score; filtered; page on with `cursor`. Lean list items
    unless `view=full`."""
    page = await top_page(store, stories, limit, filters=filters, since=since, cursor=cursor)
    headers = {} if page.next_cursor is None else {NEXT_CURSOR_HEADER: page.next_cursor}
    # The ranking reads whole records (it filters and orders by them); a lean page is projected from them.
    records = [r.encode("utf-8") for r in page.raw] if view == "full" else [list_view(r) for r in page.raw]
    return _send(request, b"[" + b",".join(records) + b"]", headers)


@router.get(
    "/news/{article_id}",
    response_model=AnalyzedArticle,
    responses={
        **_CACHED,
        404: {"model": ErrorBody, "description": "no article with this id, recent or archived"},
        503: {"model": UnavailableBody, "description": "the store (Redis) or the archive (OpenSearch) did not answer"},
    },
    tags=["articles"],
)
async def get_article(article_id: ArticleId, store: StoreDep, request: Request) -> Response:
    """One article, whole: from Redis within the hot window, else from the archive (OpenSearch), in the same
    shape."""
    article = await store.get_bytes(article_id)
    archive = getattr(request.app.state, "archive", None)  # consumer/search.py, opened in the lifespan
    if article is None and archive is not None:
        archived = await archive.get_json(article_id)
        article = None if archived is None else archived.encode("utf-8")
    if article is None:
        raise HTTPException(404, f"no article with id {article_id}, recent or archived")
    return _send(request, article)


@router.get(
    "/news/{article_id}/story",
    response_model=RankedStory,
    responses={
        **_CACHED,
        404: {"model": ErrorBody, "description": "the article is in no story (unknown, not assigned yet, or expired)"},
        **_UNAVAILABLE,
    },
    tags=["stories"],
)
async def article_story(article_id: ArticleId, stories: StoriesDep, request: Request) -> Response:
    """The story the article joined, with its score now."""
    story_id = await stories.story_of(article_id)
    raw = None if story_id is None else await stories.get_json(story_id)
    if raw is None:
        raise HTTPException(404, f"article {article_id} is in no story (unknown, not assigned yet, or expired)")
    return _json(request, _ranked(raw))


# --- stories (written by the story stage, through news.stories) -----------------------------------

# Story filter text: no control characters at all (NUL included), and something besides whitespace. Every
# character class is spelt out where Python's, Rust's and ECMA's `\s` differ (\x1c-\x1f, \x85, \ufeff), so
# the document means one thing to every reader of it.
_StoryText = Query(
    min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f\ufeff][^\x00-\x1f\x7f-\x9f]*$"
)
StoryId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the story's id (its first article's id)")]
_STORY_CURSOR = f"^(?:{STORY_CURSOR_PATTERNS['score'][1:-1]}|{STORY_CURSOR_PATTERNS['recent'][1:-1]})$"


def _ranked(story_json: str) -> str:
    story = Story.model_validate_json(story_json)
    return ranked_json(story_json, story_score(Coverage.of(story), datetime.now(UTC).timestamp()))


@router.get(
    "/stories",
    response_model=list[RankedStory],
    responses=_paged_by(_STORY_CURSOR),
    tags=["stories"],
    dependencies=_UTF8,
)
async def list_stories(
    request: Request,
    stories: StoriesDep,
    order: Annotated[
        StoryOrder, Query(description="`score`: importance from coverage, best first; `recent`: last seen first")
    ] = "score",
    limit: Annotated[int, Query(ge=1, le=200, description="how many stories (1-200)")] = 20,
    language: Annotated[str | None, _StoryText, Query(description="the story's language code, e.g. en, ko")] = None,
    source: Annotated[str | None, _StoryText, Query(description="a source covering it (case-insensitive)")] = None,
    entity: Annotated[
        str | None, _StoryText, Query(description="a canonical entity id it names, e.g. person:donald_trump")
    ] = None,
    since: Annotated[
        IsoDateTime | None, Query(description="only stories seen (last_seen) at or after this time (ISO 8601)")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            pattern=_STORY_CURSOR,
            description=f"continue after the page that returned this value in `{NEXT_CURSOR_HEADER}` (a cursor "
            "carries its order: it pages on in the order of the page that returned it)",
        ),
    ] = None,
) -> Response:
    """Stories, by importance from coverage or by last seen, filtered; page on with `cursor`."""
    filters = StoryFilters(language=language, source=source, entity=entity)
    if cursor is not None:
        order = "recent" if cursor.startswith("sr_") else "score"
    try:
        page = await stories.query(order, limit, filters=filters, since=since, cursor=cursor)
    except InvalidStoryCursor as exc:  # the pattern admits only this list's cursors; kept as a safety net
        raise _query_error("cursor", str(exc)) from exc
    headers = {} if page.next_cursor is None else {NEXT_CURSOR_HEADER: page.next_cursor}
    return _json(request, "[" + ",".join(page.ranked_json()) + "]", headers)


@router.get(
    "/stories/{story_id}",
    response_model=StoryDetail,
    responses={
        **_CACHED,
        404: {"model": ErrorBody, "description": "no story with this id (unknown or expired)"},
        **_UNAVAILABLE,
    },
    tags=["stories"],
    dependencies=_UTF8,
)
async def get_story(
    request: Request,
    story_id: StoryId,
    store: StoreDep,
    stories: StoriesDep,
    articles: Annotated[int, Query(ge=0, le=200, description="how many member articles (0-200), newest first")] = 50,
) -> Response:
    """One story with its score, its timeline and entities, and its stored member articles, newest first."""
    raw = await stories.get_json(story_id)
    if raw is None:
        raise HTTPException(404, f"no story with id {story_id} (it may have expired)")
    members = await stories.members(story_id, max(articles, 1) * 2) if articles else []
    found = [r for r in await store.get_many_json(members) if r is not None] if members else []
    listed = newest_first(found)[:articles]
    ranked = _ranked(raw)
    return _json(request, f'{{"articles":[{",".join(listed)}],{ranked[1:]}')


# --- statistics (written by the stream worker's windowed tables) ---------------------------------

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@router.get(
    "/stats/sentiment", response_model=SentimentStats, responses=_UNAVAILABLE, tags=["statistics"], dependencies=_UTF8
)
async def sentiment_stats(
    stats: StatsDep,
    bucket: Annotated[
        str,
        Query(
            pattern=BUCKET_PATTERN,
            description="bucket width, a multiple of 5 minutes up to 7 days: 5m, 10m ... 10080m, 1h ... 168h, 1d ... "
            "7d",
        ),
    ] = "5m",
    window: Annotated[
        str,
        Query(
            pattern=WINDOW_PATTERN,
            description="how far back when `since` is absent, up to 31 days: seconds (`90`, `90s`), `m`, `h` or `d`",
        ),
    ] = "24h",
    since: Annotated[IsoDateTime | None, Query(description="start (ISO 8601); default: `until` - `window`")] = None,
    until: Annotated[IsoDateTime | None, Query(description="end, exclusive (ISO 8601); default: now")] = None,
    source: Annotated[str | None, _FilterText, Query(description="one source; absent: every source summed")] = None,
    by_source: Annotated[bool, Query(description="one bucket per source and time instead of the sum")] = False,
) -> SentimentStats:
    """Counts per sentiment and mean score per time bucket (by analysis time), for one source if asked."""
    size = seconds(bucket)
    end = _aware(until) if until is not None else datetime.now(UTC)
    if since is not None:
        start = _aware(since)
    else:
        try:
            start = end - timedelta(seconds=seconds(window))
        except OverflowError:  # the window reaches back before year 1: it starts there
            start = _EARLIEST
    source = source.strip() if source is not None else None
    buckets = await stats.sentiment(start, end, source=source, bucket=size, by_source=by_source) if start < end else []
    return SentimentStats(since=start, until=end, bucket_seconds=size, source=source, buckets=buckets)


@router.get("/trends", response_model=TrendsSnapshot, responses=_UNAVAILABLE, tags=["statistics"], dependencies=_UTF8)
async def trends(
    stats: StatsDep,
    window: Annotated[Literal["15m"], Query(description="window length (the worker publishes 15m windows)")] = "15m",
    limit: Annotated[int, Query(ge=1, le=100, description="how many keywords and entities (1-100)")] = 20,
) -> TrendsSnapshot:
    """Most frequent keywords and entities of articles analysed in the window that ends now."""
    return await stats.trends(window_minutes=int(window[:-1]), limit=limit)
