"""Timeline routes (issue 15 item 4): `GET /entities/{id}/timeline`, `GET /entities/top`,
`GET /keywords/{keyword}/timeline`, `GET /keywords/top`, over `common.timelines` (docs/api.md).

Mounted behind the same optional bearer token as the other data routes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from common.timelines import BucketName, SubjectKind, Timeline, TimelineStore, TopSubject, WindowName
from consumer.api import _UNAVAILABLE, _UTF8, IsoDateTime

__all__ = ["DEFAULT_SPAN", "timeline_router"]

timeline_router = APIRouter(tags=["timelines"])

# How far back a timeline reaches when `since` is absent.
DEFAULT_SPAN: dict[BucketName, timedelta] = {
    "15m": timedelta(days=1),
    "1h": timedelta(days=7),
    "1d": timedelta(days=31),
}
_EARLIEST = datetime.min.replace(tzinfo=UTC)

# A subject: no control characters and no slash (it is one path segment); anything else is looked up as it
# is (an unknown one has zero counts).
Subject = Annotated[
    str,
    Path(
        min_length=1,
        max_length=240,
        pattern=r"^[^/\x00-\x1f\x7f-\x9f]+$",
        description="an entity's canonical id (`Entity.key`, e.g. `person:donald_trump`)",
    ),
]
Keyword = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        pattern=r"^[^/\x00-\x1f\x7f-\x9f]+$",
        description="a keyword (compared case-folded, whitespace collapsed)",
    ),
]
Bucket = Annotated[BucketName, Query(description="bucket width: 15m, 1h or 1d")]
Since = Annotated[
    IsoDateTime | None,
    Query(
        description="start (ISO 8601; no zone means UTC); default: `until` less 1 day (15m), 7 days (1h), 31 days (1d)"
    ),
]
Until = Annotated[IsoDateTime | None, Query(description="end, exclusive (ISO 8601); default: now")]
Window = Annotated[
    WindowName,
    Query(description="15m: the current 15-minute bucket; 1h: the newest four; 24h: the newest 24 hours; 7d: days"),
]
TopLimit = Annotated[int, Query(ge=1, le=100, description="how many (1-100)")]


def _timelines(request: Request) -> TimelineStore:
    return request.app.state.timelines  # type: ignore[no-any-return]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def _timeline(
    request: Request,
    kind: SubjectKind,
    subject: str,
    bucket: BucketName,
    since: datetime | None,
    until: datetime | None,
) -> Timeline:
    end = _aware(until) if until is not None else datetime.now(UTC)
    if since is not None:
        start = _aware(since)
    else:
        try:
            start = end - DEFAULT_SPAN[bucket]
        except OverflowError:  # reaches back before year 1: it starts there
            start = _EARLIEST
    points = await _timelines(request).timeline(kind, subject, bucket, start, end) if start < end else []
    return Timeline(
        id=subject, kind=kind, bucket=bucket, since=points[0].start if points else start, until=end, points=points
    )


@timeline_router.get("/entities/top", response_model=list[TopSubject], responses=_UNAVAILABLE, dependencies=_UTF8)
async def top_entities(request: Request, window: Window = "24h", limit: TopLimit = 20) -> list[TopSubject]:
    """The entities most named in the window, most first (ties by id), with display names and types."""
    return await _timelines(request).top("entity", window, limit)


@timeline_router.get(
    "/entities/{entity_id}/timeline", response_model=Timeline, responses=_UNAVAILABLE, dependencies=_UTF8
)
async def entity_timeline(
    request: Request,
    entity_id: Subject,
    bucket: Bucket = "1h",
    since: Since = None,
    until: Until = None,
) -> Timeline:
    """Articles naming the entity per bucket (by publication time), oldest first, empty buckets as 0 (an
    unknown entity is all zeros); at most 2000 buckets, the newest."""
    return await _timeline(request, "entity", entity_id, bucket, since, until)


@timeline_router.get("/keywords/top", response_model=list[TopSubject], responses=_UNAVAILABLE, dependencies=_UTF8)
async def top_keywords(request: Request, window: Window = "24h", limit: TopLimit = 20) -> list[TopSubject]:
    """The keywords most used in the window, most first (ties by keyword)."""
    return await _timelines(request).top("keyword", window, limit)


@timeline_router.get(
    "/keywords/{keyword}/timeline", response_model=Timeline, responses=_UNAVAILABLE, dependencies=_UTF8
)
async def keyword_timeline(
    request: Request,
    keyword: Keyword,
    bucket: Bucket = "1h",
    since: Since = None,
    until: Until = None,
) -> Timeline:
    """Articles with the keyword per bucket, oldest first, empty buckets as 0; at most 2000 buckets."""
    return await _timeline(request, "keyword", keyword, bucket, since, until)
