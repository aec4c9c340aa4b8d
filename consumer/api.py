"""Consumer routes: recent and top articles, one article by id, the live WebSocket, health and metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, WebSocket

from common.http import ops_router
from common.schemas import AnalyzedArticle
from consumer.deps import SettingsDep, StoreDep

__all__ = ["router"]


async def _readiness(request: Request) -> dict[str, bool]:
    state = request.app.state
    return {"redis": await state.store.ping(), "kafka": bool(state.ingestor.running)}


router = APIRouter()
router.include_router(ops_router(lambda r: r.app.state.registry, _readiness))

Limit = Annotated[int, Query(ge=1, le=200, description="how many articles (1-200)")]
ArticleId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the article's id (32 hex characters)")]


@router.get("/")
async def status(request: Request, store: StoreDep) -> dict[str, Any]:
    return {
        "service": "consumer",
        "status": "running",
        "stored": await store.count(),
        "websocket_clients": len(request.app.state.hub),
    }


@router.get("/news/recent", response_model=list[AnalyzedArticle])
async def recent(store: StoreDep, limit: Limit = 20) -> list[AnalyzedArticle]:
    return await store.recent(limit)


@router.get("/news/top", response_model=list[AnalyzedArticle])
async def top(store: StoreDep, limit: Limit = 10) -> list[AnalyzedArticle]:
    return await store.top(limit)


@router.get("/news/{article_id}", response_model=AnalyzedArticle, responses={404: {"description": "unknown id"}})
async def get_article(article_id: ArticleId, store: StoreDep) -> AnalyzedArticle:
    article = await store.get(article_id)
    if article is None:
        raise HTTPException(404, f"no article with id {article_id} (it may have expired)")
    return article


@router.websocket("/ws")
async def live(ws: WebSocket, settings: SettingsDep) -> None:
    """`initial_data` with recent articles on connect, then one `new_analysis` per stored article."""
    await ws.accept()
    state = ws.app.state
    recent = await state.store.recent(settings.consumer.initial_data_limit)
    data = ",".join(a.model_dump_json() for a in recent)
    await state.hub.serve(ws, f'{{"type":"initial_data","data":[{data}]}}')
