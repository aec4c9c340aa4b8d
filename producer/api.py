"""Producer routes: per-source status, fetch-now, push of article batches, health and metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from common.schemas import ArticleIn
from common.webapp import JsonBodyRoute, error_responses, ops_router
from producer.deps import PollerDep, PublisherDep, SettingsDep
from producer.poller import PollReport

__all__ = ["PushRequest", "PushResponse", "PushStats", "ops", "router"]

_NO_SOURCES = (
    "no network sources configured: set NEWSAPI__API_KEY for NewsAPI.org and/or PRODUCER__RSS_FEEDS "
    "(a JSON list of feed URLs) for RSS/Atom; POST /articles and `python -m producer.replay` work without either"
)


@dataclass
class PushStats:
    """Counts of `POST /articles`, shown in `GET /` beside the polled sources."""

    requests: int = 0
    fetched: int = 0
    sent: int = 0
    duplicates: int = 0
    invalid: int = 0


class PushResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = None
    reason: str | None = None


class PushResponse(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    items: list[PushResult]


class PushRequest(BaseModel):
    """Articles to produce; at most `PRODUCER__MAX_PUSH_ITEMS` (500 by default) per request, else 413.

    The request is all or nothing at the door: one article that cannot be made valid refuses the whole request
    with 422 naming it (`body.articles.3.url`), as the inference service does, and nothing is produced. The
    answer then says per item whether it was produced now (`accepted`) or before (`duplicate`)."""

    model_config = ConfigDict(extra="forbid")

    articles: list[ArticleIn] = Field(min_length=1)


class FetchNowResponse(BaseModel):
    fetched: int
    sent: int
    duplicates: int
    invalid: int
    errors: int
    sources: list[dict[str, Any]]


async def _readiness(request: Request) -> dict[str, bool]:
    kafka = getattr(request.app.state, "kafka", None)
    checks = {"kafka": kafka is not None and not kafka._closed}
    dedup = getattr(request.app.state, "dedup", None)
    if dedup is not None:
        checks["redis"] = await dedup.ping()
    return checks


# `ops` (health, readiness, metrics) stays open; `router` is mounted behind the optional API token.
ops = ops_router(lambda r: r.app.state.registry, _readiness)
router = APIRouter(route_class=JsonBodyRoute, responses=error_responses(401))


@router.get("/")
async def status(request: Request, settings: SettingsDep, poller: PollerDep) -> dict[str, Any]:
    """The service and, per source: enabled, last success, last error, articles fetched/sent/duplicates/invalid."""
    body: dict[str, Any] = {
        "service": "producer",
        "status": "running",
        "topic": settings.kafka.topics.raw_topic,
        "polling": settings.producer.polling,
        "dedup": settings.producer.dedup,
        "newsapi": "enabled" if settings.newsapi.enabled else "disabled: NEWSAPI__API_KEY is not set",
        "sources": {name: s.public() for name, s in poller.status.items()},
        "push": asdict(request.app.state.push_stats),
    }
    if not poller.sources:
        body["note"] = _NO_SOURCES
    return body


@router.get("/sources")
async def sources(poller: PollerDep) -> list[dict[str, Any]]:
    """Every configured source with its kind, interval and settings (never a secret)."""
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "interval_seconds": s.interval,
            "enabled": poller.status[s.name].enabled,
            **s.describe(),
        }
        for s in poller.sources.values()
    ]


@router.post("/fetch-now", response_model=FetchNowResponse, responses=error_responses(404, 503))
async def fetch_now(
    poller: PollerDep, source: str | None = Query(default=None, description="one source by name; all if absent")
) -> FetchNowResponse:
    """Poll every source (or the one named) now, concurrently, and answer with what each gave."""
    if source is not None and source not in poller.sources:
        raise HTTPException(404, f"no source named {source!r}; configured: {sorted(poller.sources)}")
    reports: list[PollReport] = await poller.poll_many(None if source is None else [source])
    return FetchNowResponse(
        fetched=sum(r.fetched for r in reports),
        sent=sum(r.sent for r in reports),
        duplicates=sum(r.duplicates for r in reports),
        invalid=sum(r.invalid for r in reports),
        errors=sum(r.error is not None for r in reports),
        sources=[asdict(r) for r in reports],
    )


@router.post("/articles", response_model=PushResponse, responses=error_responses(413, 503))
async def push_articles(
    request: Request, body: PushRequest, publisher: PublisherDep, settings: SettingsDep
) -> PushResponse:
    """Produce the articles not produced before (NewsAPI's article object works as it comes); the answer says
    what became of each. 422 refuses the whole request when one article is not valid; 503 when Kafka or Redis
    do not answer (nothing unacknowledged is marked produced: sending the same request again is safe)."""
    if len(body.articles) > settings.producer.max_push_items:
        raise HTTPException(
            413, f"at most {settings.producer.max_push_items} articles per request, got {len(body.articles)}"
        )
    results = await publisher.publish([a.to_raw() for a in body.articles])
    items = [PushResult(index=r.index, status=r.status, id=r.id, reason=r.reason) for r in results]
    response = PushResponse(
        accepted=sum(r.status == "accepted" for r in items),
        duplicate=sum(r.status == "duplicate" for r in items),
        rejected=sum(r.status == "rejected" for r in items),
        items=items,
    )
    stats: PushStats = request.app.state.push_stats
    stats.requests += 1
    stats.fetched += len(items)
    stats.sent += response.accepted
    stats.duplicates += response.duplicate
    stats.invalid += response.rejected
    return response
