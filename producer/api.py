"""Producer routes: status, push of article batches, health and metrics."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from common.http import ops_router
from producer.deps import PublisherDep, SettingsDep

__all__ = ["router"]


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
    articles: list[dict[str, Any]] = Field(min_length=1)


async def _readiness(request: Request) -> dict[str, bool]:
    kafka = getattr(request.app.state, "kafka", None)
    return {"kafka": kafka is not None and not kafka._closed}


router = APIRouter()
router.include_router(ops_router(lambda r: r.app.state.registry, _readiness))


@router.get("/")
async def status(settings: SettingsDep) -> dict[str, Any]:
    return {"service": "producer", "status": "running", "topic": settings.kafka.topics.raw_topic}


@router.post("/articles", response_model=PushResponse)
async def push_articles(body: PushRequest, publisher: PublisherDep, settings: SettingsDep) -> PushResponse:
    """Validate each article and produce the valid ones; the answer says what became of each item."""
    if len(body.articles) > settings.producer.max_push_items:
        raise HTTPException(
            413, f"at most {settings.producer.max_push_items} articles per request, got {len(body.articles)}"
        )
    results = await publisher.publish(body.articles)
    items = [PushResult(index=r.index, status=r.status, id=r.id, reason=r.reason) for r in results]
    return PushResponse(
        accepted=sum(r.status == "accepted" for r in items),
        duplicate=sum(r.status == "duplicate" for r in items),
        rejected=sum(r.status == "rejected" for r in items),
        items=items,
    )
