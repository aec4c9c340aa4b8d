"""NewsAPI.org `/v2/top-headlines` and `/v2/everything`, paged, with its error codes handled as a user would want.

- `rateLimited` (429): no retry inside the poll (the quota is daily); the poller backs the source off.
- `apiKey*` (401) and the parameter errors (400): the source is disabled and `GET /` says why;
  neither fixes itself until the configuration changes.
- `maximumResultsReached` (426, developer plans stop at 100 results): paging stops, what came is kept.
- 5xx (`unexpectedError`), timeouts, connection errors: retried with jittered exponential waits.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from common.errors import SourceDisabled, SourceError, SourceRateLimited
from producer.settings import NewsAPIQuery, NewsAPISettings
from producer.sources.base import FetchResult, HttpPolicy, Source, http_get, retry_after

__all__ = ["NewsAPISource", "map_newsapi_article"]

# NewsAPI cuts `content` at 200 characters and appends how much it left out.
_TRUNCATION = re.compile(r"\s*…?\s*\[\+\d+ chars\]\s*$")
_REMOVED_URL = "https://removed.com"
_DISABLING = {
    "apiKeyDisabled",
    "apiKeyExhausted",
    "apiKeyInvalid",
    "apiKeyMissing",
    "parameterInvalid",
    "parametersMissing",
    "sourcesTooMany",
    "sourceDoesNotExist",
}


def map_newsapi_article(article: dict[str, Any]) -> dict[str, Any] | None:
    """A NewsAPI article as `RawArticle` input; None for the placeholders NewsAPI leaves for removed stories."""
    url = article.get("url")
    if article.get("title") == "[Removed]" or url == _REMOVED_URL:
        return None
    source = article.get("source") if isinstance(article.get("source"), dict) else {}
    content = article.get("content")
    if isinstance(content, str):
        content = _TRUNCATION.sub("", content)
    item: dict[str, Any] = {
        "url": url if isinstance(url, str) else "",
        "title": article.get("title") or "",
        "description": article.get("description"),
        "content": content or None,
        "author": article.get("author"),
        "source": (source or {}).get("name") or (source or {}).get("id") or "NewsAPI",
        "published_at": article.get("publishedAt") or "",
        "origin": "newsapi",
    }
    return {k: v for k, v in item.items() if v is not None}


def _check(response: httpx.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = str(body.get("code") or f"http_{status}")
    message = f"NewsAPI {status} {code}: {body.get('message') or response.reason_phrase}"
    if status == 429 or code == "rateLimited":
        raise SourceRateLimited(message, code=code, retry_after=retry_after(response))
    if code in _DISABLING or status in (400, 401):
        raise SourceDisabled(message, code=code)
    raise SourceError(message, code=code, retryable=status >= 500)


class NewsAPISource(Source):
    kind = "newsapi"

    def __init__(self, query: NewsAPIQuery, settings: NewsAPISettings, policy: HttpPolicy) -> None:
        super().__init__(query.name, query.interval_seconds or settings.interval_seconds)
        self.query = query
        self._settings = settings
        self._policy = policy
        self._url = f"{settings.base_url.rstrip('/')}/v2/{query.endpoint}"

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.query.endpoint,
            "url": self._url,
            "params": self.query.params(),
            "page_size": self._settings.page_size,
            "max_pages": self._settings.max_pages,
        }

    async def fetch(self, client: httpx.AsyncClient) -> FetchResult:
        key = self._settings.api_key.get_secret_value() if self._settings.api_key else ""
        size = self._settings.page_size
        result = FetchResult()
        for page in range(1, self._settings.max_pages + 1):
            try:
                response = await http_get(
                    client,
                    self._url,
                    policy=self._policy,
                    check=_check,
                    params={**self.query.params(), "pageSize": size, "page": page},
                    headers={"X-Api-Key": key},
                )
            except SourceError as exc:
                if exc.code == "maximumResultsReached":
                    result.note = f"maximumResultsReached: the plan's result cap stopped paging at page {page}"
                    break
                if page == 1:
                    raise
                result.error = exc  # keep the earlier pages, report the failure after publishing them
                break
            articles, total = _parse(response)
            result.items.extend(item for a in articles if (item := map_newsapi_article(a)) is not None)
            if not articles or page * size >= total:
                break
        return result


def _parse(response: httpx.Response) -> tuple[list[dict[str, Any]], int]:
    try:
        body = response.json()
    except ValueError as exc:
        raise SourceError(f"NewsAPI answered something that is not JSON: {exc}", code="malformed") from exc
    if not isinstance(body, dict) or body.get("status") != "ok" or not isinstance(body.get("articles"), list):
        raise SourceError("NewsAPI answered JSON without status ok and an articles list", code="malformed")
    articles = [a for a in body["articles"] if isinstance(a, dict)]
    total = body.get("totalResults")
    return articles, total if isinstance(total, int) else len(articles)
