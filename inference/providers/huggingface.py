"""The `huggingface` provider: the Hugging Face Inference API over httpx (text classification, zero-shot,
summarization), with its wire format and its error answers (503 while a model loads, 429 with Retry-After)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import httpx

from common.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from common.schemas import CATEGORIES, RawArticle, Sentiment
from inference.providers.base import RemoteAnswer
from inference.settings import HuggingFaceSettings

__all__ = ["HuggingFaceProvider"]

_LABELS: dict[str, Sentiment] = {
    "positive": "positive",
    "pos": "positive",
    "label_2": "positive",
    "neutral": "neutral",
    "neu": "neutral",
    "label_1": "neutral",
    "negative": "negative",
    "neg": "negative",
    "label_0": "negative",
}
_CANDIDATES = [c for c in CATEGORIES if c != "other"]


class HuggingFaceProvider:
    name = "huggingface"

    def __init__(self, settings: HuggingFaceSettings) -> None:
        self.model = settings.sentiment_model
        self.timeout_s = settings.timeout_s
        self._settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {settings.token_value()}"},
            timeout=settings.timeout_s,
        )

    async def _post(self, model: str, payload: dict[str, Any]) -> Any:
        try:
            response = await self._client.post(f"/models/{model}", json=payload)
        except httpx.TimeoutException:
            raise ProviderTimeout(f"{self.name}: timed out") from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{self.name}: {type(exc).__name__}") from None
        if response.status_code == 429:
            header = response.headers.get("retry-after")
            try:
                retry_after = float(header) if header is not None else None
            except ValueError:
                retry_after = None
            raise ProviderRateLimited(f"{self.name}: rate limited", retry_after=retry_after)
        if response.status_code >= 500:
            raise ProviderUnavailable(f"{self.name}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ProviderError(f"{self.name}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"{self.name}: malformed JSON answer") from None

    async def _sentiment(self, text: str) -> tuple[Sentiment, float]:
        answer = await self._post(self._settings.sentiment_model, {"inputs": text})
        try:
            rows = answer[0] if answer and isinstance(answer[0], list) else answer
            scores = {_LABELS[str(r["label"]).lower()]: float(r["score"]) for r in rows}
        except (KeyError, TypeError, ValueError, IndexError):
            raise ProviderError(f"{self.name}: unexpected text-classification answer") from None
        best = max(scores, key=lambda k: scores[k])
        score = scores.get("positive", 0.0) - scores.get("negative", 0.0)
        return best, max(-1.0, min(1.0, score))

    async def _category(self, text: str) -> str:
        answer = await self._post(
            self._settings.category_model, {"inputs": text, "parameters": {"candidate_labels": _CANDIDATES}}
        )
        try:
            label = str(answer["labels"][0])
        except (KeyError, TypeError, IndexError):
            raise ProviderError(f"{self.name}: unexpected zero-shot answer") from None
        return label if label in CATEGORIES else "other"

    async def _summary(self, text: str) -> str:
        answer = await self._post(self._settings.summary_model, {"inputs": text, "parameters": {"max_length": 80}})
        try:
            return str(answer[0]["summary_text"])
        except (KeyError, TypeError, IndexError):
            raise ProviderError(f"{self.name}: unexpected summarization answer") from None

    async def analyze(self, article: RawArticle, tasks: Collection[str]) -> RemoteAnswer:
        head = article.title if not article.description else f"{article.title}. {article.description}"
        long_text = f"{head} {article.content or ''}"[:3_000]
        sentiment = asyncio.create_task(self._sentiment(head)) if "sentiment" in tasks else None
        category = asyncio.create_task(self._category(head)) if "category" in tasks else None
        summary = asyncio.create_task(self._summary(long_text)) if "summary" in tasks else None
        pending = [t for t in (sentiment, category, summary) if t is not None]
        try:
            await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
        label, score = sentiment.result() if sentiment else (None, None)
        return RemoteAnswer(
            sentiment=label,
            sentiment_score=score,
            category=category.result() if category else None,
            summary=summary.result() if summary else None,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
