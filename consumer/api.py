"""Consumer routes: articles (recent, top, by id), statistics, the live WebSocket, health and metrics.

`router` serves data and is mounted behind the optional bearer token; `ops` (health, readiness,
metrics) stays open for probes and Prometheus; `/ws` checks its own token (`?token=`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from common.schemas import AnalyzedArticle, Sentiment
from common.stats import SENTIMENT_WINDOW_S, SentimentBucket, TrendsSnapshot
from common.store import ArticleFilters, ArticleStore, InvalidCursor, Order, StoredEvent, stream_id
from common.webapp import ops_router, websocket_authorized
from consumer.deps import SettingsDep, StatsDep, StoreDep
from consumer.ws import Hub, filters_error

__all__ = ["ops", "router", "ws_router"]

NEXT_CURSOR_HEADER = "X-Next-Cursor"


async def _readiness(request: Request) -> dict[str, bool]:
    state = request.app.state
    return {"redis": await state.store.ping(), "kafka": bool(state.ingestor.running)}


ops = ops_router(lambda r: r.app.state.registry, _readiness)
router = APIRouter()
ws_router = APIRouter()


# --- models -------------------------------------------------------------------------------------


class Status(BaseModel):
    service: Literal["consumer"] = "consumer"
    status: Literal["running"] = "running"
    stored: int = Field(description="articles in the recent index")
    websocket_clients: int = Field(description="WebSocket clients of this replica")


class ErrorBody(BaseModel):
    detail: str


class SentimentStats(BaseModel):
    since: datetime
    until: datetime
    bucket_seconds: int
    source: str | None = Field(description="the source asked for; null means every source summed")
    buckets: list[SentimentBucket] = Field(description="buckets that hold data, oldest first")


# --- parameters ---------------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=200, description="how many articles (1-200)")]
ArticleId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the article's id (32 hex characters)")]
_FilterText = Query(min_length=1, max_length=200)
_DURATION = r"^[0-9]{1,7}[smhd]?$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _query_error(name: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": message, "input": None}])


def article_filters(
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
    datetime | None,
    Query(description="only articles published at or after this time (ISO 8601; no zone means UTC)"),
]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description=f"continue after the page that returned this value in `{NEXT_CURSOR_HEADER}`"),
]


def _seconds(name: str, value: str) -> int:
    if not re.fullmatch(_DURATION, value):
        raise _query_error(name, "a duration such as 300, 90s, 5m, 1h or 7d")
    unit = value[-1] if value[-1] in _UNITS else "s"
    return int(value.rstrip("smhd")) * _UNITS[unit]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- articles -----------------------------------------------------------------------------------

_PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            NEXT_CURSOR_HEADER: {
                "description": "pass as `cursor` for the next page; absent on the last page",
                "schema": {"type": "string"},
            }
        }
    }
}


@router.get("/", response_model=Status, tags=["status"])
async def status(request: Request, store: StoreDep) -> Status:
    return Status(stored=await store.count(), websocket_clients=len(request.app.state.hub))


async def _page(
    store: ArticleStore,
    order: Order,
    limit: int,
    filters: ArticleFilters,
    since: datetime | None,
    cursor: str | None,
) -> Response:
    try:
        page = await store.query(order, limit, filters=filters, since=since, cursor=cursor)
    except InvalidCursor as exc:
        raise _query_error("cursor", str(exc)) from exc
    headers = {} if page.next_cursor is None else {NEXT_CURSOR_HEADER: page.next_cursor}
    # The records were validated when stored: send their JSON as it is instead of building models
    # and serialising them again (that round trip was most of a read's CPU; see docs/BENCHMARKS.md).
    return _json("[" + ",".join(page.raw) + "]", headers)


def _json(body: str, headers: dict[str, str] | None = None) -> Response:
    return Response(body.encode("utf-8"), media_type="application/json", headers=headers)


@router.get("/news/recent", response_model=list[AnalyzedArticle], responses=_PAGED, tags=["articles"])
async def recent(
    store: StoreDep,
    filters: FiltersDep,
    limit: Limit = 20,
    since: Since = None,
    cursor: Cursor = None,
) -> Response:
    """Newest first (by publication time), filtered; page on with `cursor`."""
    return await _page(store, "recent", limit, filters, since, cursor)


@router.get("/news/top", response_model=list[AnalyzedArticle], responses=_PAGED, tags=["articles"])
async def top(
    store: StoreDep,
    filters: FiltersDep,
    limit: Limit = 10,
    since: Since = None,
    cursor: Cursor = None,
) -> Response:
    """Most important first (importance_score), filtered; page on with `cursor`."""
    return await _page(store, "top", limit, filters, since, cursor)


@router.get(
    "/news/{article_id}",
    response_model=AnalyzedArticle,
    responses={404: {"model": ErrorBody, "description": "no article with this id (unknown or expired)"}},
    tags=["articles"],
)
async def get_article(article_id: ArticleId, store: StoreDep) -> Response:
    article = await store.get_json(article_id)
    if article is None:
        raise HTTPException(404, f"no article with id {article_id} (it may have expired)")
    return _json(article)


# --- statistics (written by the stream worker's windowed tables) ---------------------------------


@router.get("/stats/sentiment", response_model=SentimentStats, tags=["statistics"])
async def sentiment_stats(
    stats: StatsDep,
    bucket: Annotated[str, Query(pattern=_DURATION, description="bucket width, a multiple of 5m (5m, 1h, 1d)")] = "5m",
    window: Annotated[str, Query(pattern=_DURATION, description="how far back when `since` is absent")] = "24h",
    since: Annotated[datetime | None, Query(description="start (ISO 8601); default: `until` - `window`")] = None,
    until: Annotated[datetime | None, Query(description="end, exclusive (ISO 8601); default: now")] = None,
    source: Annotated[str | None, _FilterText, Query(description="one source; absent: every source summed")] = None,
    by_source: Annotated[bool, Query(description="one bucket per source and time instead of the sum")] = False,
) -> SentimentStats:
    """Counts per sentiment and mean score per time bucket (by analysis time), for one source if asked."""
    size = _seconds("bucket", bucket)
    if not size or size % SENTIMENT_WINDOW_S or size > 7 * 86400:
        raise _query_error("bucket", f"a positive multiple of {SENTIMENT_WINDOW_S // 60}m, at most 7d")
    span = _seconds("window", window)
    if not 0 < span <= 31 * 86400:
        raise _query_error("window", "between 1s and 31d")
    try:
        end = _aware(until) if until is not None else datetime.now(UTC)
        start = _aware(since) if since is not None else end - timedelta(seconds=span)
    except OverflowError as exc:
        raise _query_error("window", "reaches outside the calendar") from exc
    buckets = await stats.sentiment(start, end, source=source, bucket=size, by_source=by_source) if start < end else []
    return SentimentStats(since=start, until=end, bucket_seconds=size, source=source, buckets=buckets)


@router.get("/trends", response_model=TrendsSnapshot, tags=["statistics"])
async def trends(
    stats: StatsDep,
    window: Annotated[Literal["15m"], Query(description="window length (the worker publishes 15m windows)")] = "15m",
    limit: Annotated[int, Query(ge=1, le=100, description="how many keywords and entities (1-100)")] = 20,
) -> TrendsSnapshot:
    """Most frequent keywords and entities of articles analysed in the window that ends now."""
    return await stats.trends(window_minutes=int(window[:-1]), limit=limit)


# --- live ---------------------------------------------------------------------------------------


def _message(kind: str, events: list[StoredEvent] | list[str], **extra: object) -> str:
    """`events` are stream entries or stored JSON: either way the article is sent as it was stored."""
    data = ",".join(e.json if isinstance(e, StoredEvent) else e for e in events)
    tail = "".join(f",{json.dumps(k)}:{json.dumps(v)}" for k, v in extra.items())
    return f'{{"type":"{kind}","data":[{data}]{tail}}}'


@ws_router.websocket("/ws")
async def live(ws: WebSocket, settings: SettingsDep) -> None:
    """See README "WebSocket": `initial_data`, then `new_analysis` per stored article; `?since=` resumes."""
    if not await websocket_authorized(ws, settings.api_token):
        return
    await ws.accept()
    state = ws.app.state
    store: ArticleStore = state.store
    hub: Hub = state.hub
    errors: list[str] = []
    try:
        filters = ArticleFilters.model_validate(
            {k: v for k, v in ws.query_params.items() if k in ArticleFilters.model_fields}
        )
    except ValidationError as exc:
        errors.append(f"filters ignored: {filters_error(exc)}")
        filters = ArticleFilters()
    since = ws.query_params.get("since")
    if since is not None:
        try:
            stream_id(since)
        except ValueError:
            errors.append(f"since: {since[:40]!r} is not a cursor from this server; sending current data")
            since = None
    client = hub.register(ws, filters)
    try:
        for error in errors:
            await client.send(json.dumps({"type": "error", "message": error}))
        head = await store.last_cursor()
        client.after = stream_id(head)
        if since is None:
            snapshot = await _snapshot(store, filters, settings.consumer.initial_data_limit)
            if "since" in ws.query_params:  # asked to resume with a bad cursor: say it did not
                initial = _message("initial_data", snapshot, cursor=head, resumed=False)
            else:  # the seed's shape exactly
                initial = _message("initial_data", snapshot)
        else:
            missed = await _missed(store, since, head, filters, settings.consumer.resume_max)
            if missed is None:
                snapshot = await _snapshot(store, filters, settings.consumer.initial_data_limit)
                initial = _message("initial_data", snapshot, cursor=head, resumed=False)
            else:
                initial = _message("initial_data", missed, cursor=head, resumed=True)
    except BaseException:
        hub.unregister(client)
        raise
    await hub.serve(client, initial)


async def _snapshot(store: ArticleStore, filters: ArticleFilters, limit: int) -> list[str]:
    return (await store.query("recent", limit, filters=filters)).raw if limit else []


async def _missed(
    store: ArticleStore, since: str, head: str, filters: ArticleFilters, most: int
) -> list[StoredEvent] | None:
    """Every matching article stored after `since` up to `head`, newest first; None if that cannot be exact."""
    if not await store.can_resume(since):
        return None
    end = stream_id(head)
    found: dict[str, StoredEvent] = {}
    position = since
    while stream_id(position) < end:
        reached, events = await store.events_after(position, count=500)
        if reached == position:
            break
        position = reached
        for event in events:
            if stream_id(event.cursor) <= end and filters.matches(event.article):
                found.pop(event.article.id, None)
                found[event.article.id] = event
        if len(found) > most:
            return None
    return list(reversed(found.values()))
