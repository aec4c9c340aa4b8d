"""The `huggingface` provider: Hugging Face Inference Providers through the router (https://router.huggingface.co)
over httpx, with its wire format and its error answers.

- sentiment: text classification, `POST {base}/{task_provider}/models/{sentiment_model}` with `{"inputs": text}`,
  answered `[[{"label", "score"}, ...]]`;
- category: zero-shot classification, the same route with `{"inputs", "parameters": {"candidate_labels"}}`, answered
  `[{"label", "score"}, ...]` best first (the older `{"sequence", "labels", "scores"}` is read too);
- summary: the router's OpenAI-compatible `POST {base}/v1/chat/completions` with `summary_model`.

Errors: 429 (rate limited, `Retry-After` honoured), 503 while a model loads (`{"error", "estimated_time"}`) and
other 5xx are retried as outages; 401 (bad token), 402 (credits used up), 404 (no provider serves the model),
410 (a retired route) and other 4xx are not, and say why (the router's `error` text). Each task is credited to the
model that answered it (`RemoteAnswer.models`).
"""

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
_SUMMARY_PROMPT = "Summarise this news article in one or two plain sentences. Answer with the summary only."


def _error_text(response: httpx.Response) -> str:
    """The router's reason: `{"error": "..."}` (task routes) or `{"error": {"message": ...}}` (chat completions)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:200] if error else response.text[:200]


class HuggingFaceProvider:
    name = "huggingface"

    def __init__(self, settings: HuggingFaceSettings) -> None:
        self.model = settings.sentiment_model  # what /v1/models shows; each task's own model is in its answer
        self.timeout_s = settings.timeout_s
        self._settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {settings.token_value()}"},
            timeout=settings.timeout_s,
        )

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        try:
            response = await self._client.post(path, json=payload)
        except httpx.TimeoutException:
            raise ProviderTimeout(f"{self.name}: timed out") from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{self.name}: {type(exc).__name__}") from None
        status = response.status_code
        if status == 429:
            header = response.headers.get("retry-after")
            try:
                retry_after = float(header) if header is not None else None
            except ValueError:
                retry_after = None
            raise ProviderRateLimited(f"{self.name}: rate limited: {_error_text(response)}", retry_after=retry_after)
        if status >= 500:  # 503 while the model loads: an outage to retry, not a bad request
            raise ProviderUnavailable(f"{self.name}: HTTP {status}: {_error_text(response)}")
        if status >= 400:
            hint = {
                401: " (INFERENCE__HUGGINGFACE__TOKEN refused)",
                402: " (the account's Inference Providers credits are used up)",
                404: f" (no provider serves this model for {path})",
                410: " (a retired endpoint: INFERENCE__HUGGINGFACE__BASE_URL must be the router)",
            }.get(status, "")
            raise ProviderError(f"{self.name}: HTTP {status}{hint}: {_error_text(response)}")
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"{self.name}: malformed JSON answer") from None

    def _task_route(self, model: str) -> str:
        return f"/{self._settings.task_provider}/models/{model}"

    async def _sentiment(self, text: str) -> tuple[Sentiment, float]:
        answer = await self._post(self._task_route(self._settings.sentiment_model), {"inputs": text})
        try:
            rows = answer[0] if answer and isinstance(answer[0], list) else answer
            scores = {_LABELS[str(r["label"]).lower()]: float(r["score"]) for r in rows}
            best = max(scores, key=lambda k: scores[k])
        except (KeyError, TypeError, ValueError, IndexError):
            raise ProviderError(f"{self.name}: unexpected text-classification answer") from None
        score = scores.get("positive", 0.0) - scores.get("negative", 0.0)
        return best, max(-1.0, min(1.0, score))

    async def _category(self, text: str) -> str:
        answer = await self._post(
            self._task_route(self._settings.category_model),
            {"inputs": text, "parameters": {"candidate_labels": _CANDIDATES}},
        )
        try:
            if isinstance(answer, dict):  # the older shape: labels and scores side by side, best first
                label = str(answer["labels"][0])
            else:
                label = str(max(answer, key=lambda r: float(r["score"]))["label"])
        except (KeyError, TypeError, ValueError, IndexError):
            raise ProviderError(f"{self.name}: unexpected zero-shot answer") from None
        return label if label in CATEGORIES else "other"

    async def _summary(self, text: str) -> tuple[str, dict[str, int]]:
        answer = await self._post(
            "/v1/chat/completions",
            {
                "model": self._settings.summary_model,
                "messages": [{"role": "system", "content": _SUMMARY_PROMPT}, {"role": "user", "content": text}],
                "max_tokens": self._settings.summary_max_tokens,
                "temperature": 0,
            },
        )
        try:
            summary = str(answer["choices"][0]["message"]["content"]).strip()
        except (KeyError, TypeError, IndexError):
            raise ProviderError(f"{self.name}: unexpected chat-completion answer") from None
        if not summary:
            raise ProviderError(f"{self.name}: empty summary")
        usage = answer.get("usage") or {}
        tokens = {
            kind: int(usage[f"{kind}_tokens"])
            for kind in ("prompt", "completion")
            if isinstance(usage.get(f"{kind}_tokens"), int)
        }
        return summary, tokens

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
        text, tokens = summary.result() if summary else (None, {})
        models = {
            task: model
            for task, model, asked in (
                ("sentiment", self._settings.sentiment_model, sentiment),
                ("category", self._settings.category_model, category),
                ("summary", self._settings.summary_model, summary),
            )
            if asked is not None
        }
        return RemoteAnswer(
            sentiment=label,
            sentiment_score=score,
            category=category.result() if category else None,
            summary=text,
            tokens=tokens,
            models=models,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
