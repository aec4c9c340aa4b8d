"""The `openai` provider: the official SDK against any OpenAI-compatible server, JSON output validated by Pydantic."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

import openai
from pydantic import BaseModel, Field, ValidationError

from common.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from common.schemas import CATEGORIES, RawArticle, Sentiment
from inference.providers.base import RemoteAnswer
from inference.settings import OpenAISettings

__all__ = ["LLMAnalysis", "OpenAIProvider", "translate_openai_error"]

Category = Literal[
    "world", "politics", "business", "technology", "science", "health", "sports", "entertainment", "other"
]

_SYSTEM = (
    "You analyse news articles. Answer with one JSON object only, with keys: "
    '"sentiment" ("positive", "neutral" or "negative": the tone of the reporting; factual reporting is neutral), '
    '"sentiment_score" (number from -1 to 1), "category" (one of ' + ", ".join(CATEGORIES) + "), "
    '"summary" (one or two sentences, at most 300 characters, in the language of the article).'
)


class LLMAnalysis(BaseModel):
    """The JSON object the LLM must return; anything else is a malformed answer."""

    sentiment: Sentiment
    sentiment_score: Annotated[float, Field(ge=-1.0, le=1.0)]
    category: Category
    summary: Annotated[str, Field(max_length=1_000)] | None = None


def translate_openai_error(exc: Exception, name: str) -> ProviderError:
    """Map the SDK's exceptions onto the suite's provider errors (429 keeps its Retry-After)."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(f"{name}: timed out")
    if isinstance(exc, openai.RateLimitError):
        header = exc.response.headers.get("retry-after")
        try:
            retry_after = float(header) if header is not None else None
        except ValueError:
            retry_after = None
        return ProviderRateLimited(f"{name}: rate limited", retry_after=retry_after)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderUnavailable(f"{name}: HTTP {exc.status_code}")
        return ProviderError(f"{name}: HTTP {exc.status_code}: {exc.message[:200]}")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"{name}: connection failed")
    return ProviderError(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")


class OpenAIProvider:
    name = "openai"

    def __init__(self, settings: OpenAISettings) -> None:
        self.model = settings.model
        self.timeout_s = settings.timeout_s
        self._settings = settings
        # Retries belong to our policy (tenacity, breaker), not to the SDK's own loop.
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key_value(),
            max_retries=0,
            timeout=settings.timeout_s,
        )

    async def analyze(self, article: RawArticle, tasks: Collection[str]) -> RemoteAnswer:
        body = (article.content or "")[:2_000]
        user = f"Title: {article.title}\nDescription: {article.description or ''}\nText: {body}"
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}],
                response_format={"type": "json_object"},
                temperature=self._settings.temperature,
                max_tokens=self._settings.max_tokens,
            )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, self.name) from exc
        if not response.choices:
            raise ProviderError(f"{self.name}: no choices in the answer")
        content = response.choices[0].message.content or ""
        try:
            parsed = LLMAnalysis.model_validate_json(content)
        except ValidationError as exc:
            raise ProviderError(f"{self.name}: malformed answer: {str(exc)[:200]}") from None
        usage = response.usage
        tokens = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens} if usage else {}
        return RemoteAnswer(
            sentiment=parsed.sentiment if "sentiment" in tasks else None,
            sentiment_score=parsed.sentiment_score if "sentiment" in tasks else None,
            category=parsed.category if "category" in tasks else None,
            summary=parsed.summary if "summary" in tasks else None,
            tokens=tokens,
        )

    async def aclose(self) -> None:
        await self._client.close()
