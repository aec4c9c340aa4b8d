"""The inference service's wire shapes (`/v1/analyze`, `/v1/analyze/batch`), declared once: the service
answers with them and the stream worker's HTTP client reads them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from common.schemas import Analysis

__all__ = ["AnalyzeResponse", "BatchResponse"]


class AnalyzeResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    analysis: Analysis


class BatchResponse(BaseModel):
    """One result per article asked for, in the order asked."""

    model_config = ConfigDict(frozen=True)

    results: list[AnalyzeResponse]
