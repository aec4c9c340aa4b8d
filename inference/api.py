"""Routes of the inference service: `/v1/analyze`, `/v1/analyze/batch`, `/v1/models`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from pydantic import ValidationError

from common.inference_contract import AnalyzeResponse, BatchResponse
from common.schemas import RawArticle
from inference.deps import EngineDep, SettingsDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["inference"])


def _article(item: Any, where: str) -> RawArticle:
    if isinstance(item, dict):
        # NewsAPI's article object works as it is: `publishedAt` is read as `published_at`, and an article
        # without a date is analysed as of now (the analysis does not depend on it).
        item = dict(item)
        if "published_at" not in item:
            item["published_at"] = item.pop("publishedAt", None) or datetime.now(UTC).isoformat()
    try:
        return RawArticle.model_validate_json(orjson.dumps(item))
    except ValidationError as exc:
        detail = [{"loc": [where, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise HTTPException(422, detail) from None


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise HTTPException(422, f"body is not JSON: {exc}") from None


@router.post("/analyze", response_model=AnalyzeResponse)
async def analyze(request: Request, engine: EngineDep) -> AnalyzeResponse:
    """Analyse one article: a `RawArticle` JSON object, or NewsAPI's article object (`source` as `{"id", "name"}`,
    `publishedAt`); `published_at` is optional here (default: now)."""
    article = _article(await _json(request), "body")
    return AnalyzeResponse(id=article.id, analysis=await engine.analyze(article))


@router.post("/analyze/batch", response_model=BatchResponse)
async def analyze_batch(request: Request, engine: EngineDep, settings: SettingsDep) -> BatchResponse:
    """Analyse `{"articles": [...]}`; answers in input order; 413 above `MAX_BATCH_REQUEST` articles."""
    body = await _json(request)
    items = body.get("articles") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise HTTPException(422, 'body must be {"articles": [RawArticle, ...]} with at least one article')
    if len(items) > settings.max_batch_request:
        raise HTTPException(413, f"at most {settings.max_batch_request} articles per batch, got {len(items)}")
    articles = [_article(item, f"articles[{i}]") for i, item in enumerate(items)]
    analyses = await engine.analyze_batch(articles)
    return BatchResponse(
        results=[AnalyzeResponse(id=a.id, analysis=r) for a, r in zip(articles, analyses, strict=True)]
    )


@router.get("/models")
async def models(engine: EngineDep) -> dict[str, Any]:
    """Providers, models, versions and status."""
    return engine.describe()
