"""Routes of the inference service: `/v1/analyze`, `/v1/analyze/batch`, `/v1/models`.

Request bodies are declared models (`ArticleIn`, `AnalyzeBatchRequest`), so the OpenAPI document shows what is
accepted and FastAPI's validation is that document. Bodies are parsed by orjson (`JsonBodyRoute`), which also
refuses text that is not Unicode and nesting too deep, with a 422 naming the field.

A batch is all or nothing: one article that cannot be analysed refuses the whole request with 422 naming it
(`body.articles.3.url`), as the producer's `POST /articles` does; nothing is analysed for a refused request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from common.inference_contract import AnalyzeResponse, BatchResponse
from common.schemas import ArticleIn
from common.webapp import JsonBodyRoute, error_responses
from inference.deps import EngineDep, SettingsDep

__all__ = ["AnalyzeBatchRequest", "router"]

router = APIRouter(prefix="/v1", tags=["inference"], route_class=JsonBodyRoute)


class AnalyzeBatchRequest(BaseModel):
    """Articles to analyse together; at most `MAX_BATCH_REQUEST` (64 by default) per request, else 413."""

    model_config = ConfigDict(extra="forbid")

    articles: list[ArticleIn] = Field(min_length=1)


@router.post("/analyze", response_model=AnalyzeResponse, responses=error_responses(401, 413, 503))
async def analyze(article: ArticleIn, engine: EngineDep) -> AnalyzeResponse:
    """Analyse one article: the suite's fields or NewsAPI's article object as it comes (`source` as
    `{"id", "name"}`, `publishedAt`, `urlToImage`); `published_at` is optional (default: now)."""
    raw = article.to_raw()
    return AnalyzeResponse(id=raw.id, analysis=await engine.analyze(raw))


@router.post("/analyze/batch", response_model=BatchResponse, responses=error_responses(401, 413, 503))
async def analyze_batch(body: AnalyzeBatchRequest, engine: EngineDep, settings: SettingsDep) -> BatchResponse:
    """Analyse `{"articles": [...]}`; one result per article, in input order; 413 above `MAX_BATCH_REQUEST`."""
    if len(body.articles) > settings.max_batch_request:
        raise HTTPException(413, f"at most {settings.max_batch_request} articles per batch, got {len(body.articles)}")
    articles = [a.to_raw() for a in body.articles]
    analyses = await engine.analyze_batch(articles)
    return BatchResponse(
        results=[AnalyzeResponse(id=a.id, analysis=r) for a, r in zip(articles, analyses, strict=True)]
    )


@router.get("/models", responses=error_responses(401))
async def models(engine: EngineDep) -> dict[str, Any]:
    """Providers, models, versions and status."""
    return engine.describe()
