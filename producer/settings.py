"""Producer settings (from the environment, nested with `__`; docs/reference/configuration.md).

PRODUCER__RSS_FEEDS='["https://feeds.bbci.co.uk/news/rss.xml", {"url": "https://...", "name": "yonhap"}]'
NEWSAPI__API_KEY=...   NEWSAPI__QUERIES='[{"endpoint": "everything", "q": "semiconductor", "language": "en"}]'
"""

from __future__ import annotations

import re
import socket
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from common.settings import ServiceSettings

__all__ = ["FeedConfig", "NewsAPIQuery", "NewsAPISettings", "ProducerConfig", "ProducerSettings", "get_settings"]

_NAME = re.compile(r"[^a-z0-9._-]+")


def _slug(text: str) -> str:
    return _NAME.sub("-", text.lower()).strip("-")[:60] or "source"


class FeedConfig(BaseModel):
    """One RSS 2.0 or Atom feed; a bare URL string is accepted in the list and named after its host."""

    url: str = Field(pattern=r"^https?://")
    name: str = ""
    interval_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _default_name(self) -> FeedConfig:
        if not self.name:
            parts = urlsplit(self.url)
            self.name = "rss:" + _slug(f"{parts.hostname or ''}{parts.path}".removesuffix(".xml").removesuffix("/"))
        return self


class NewsAPIQuery(BaseModel):
    """One NewsAPI request (paged); parameters are sent as NewsAPI names them (`sortBy`, `searchIn`, `from`)."""

    model_config = {"populate_by_name": True}

    endpoint: Literal["top-headlines", "everything"] = "top-headlines"
    name: str = ""
    interval_seconds: float | None = Field(default=None, gt=0)
    q: str | None = None
    country: str | None = None
    category: str | None = None
    sources: str | None = None
    domains: str | None = None
    language: str | None = None
    search_in: str | None = Field(default=None, alias="searchIn")
    sort_by: Literal["relevancy", "popularity", "publishedAt"] | None = Field(default=None, alias="sortBy")
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None

    @model_validator(mode="after")
    def _check(self) -> NewsAPIQuery:
        if self.endpoint == "top-headlines" and self.sources and (self.country or self.category):
            raise ValueError("top-headlines cannot mix `sources` with `country` or `category` (NewsAPI refuses it)")
        if self.endpoint == "everything" and not (self.q or self.sources or self.domains):
            raise ValueError("everything needs at least one of q, sources, domains")
        if self.endpoint == "everything" and (self.country or self.category):
            raise ValueError("everything has no country or category parameter")
        if not self.name:
            detail = self.q or self.sources or self.domains or self.category or self.country or "all"
            self.name = f"newsapi:{self.endpoint}:{_slug(detail)}"
        return self

    def params(self) -> dict[str, str]:
        """Query parameters in NewsAPI's spelling, without empty ones."""
        values = {
            "q": self.q,
            "country": self.country,
            "category": self.category,
            "sources": self.sources,
            "domains": self.domains,
            "language": self.language,
            "searchIn": self.search_in,
            "sortBy": self.sort_by,
            "from": self.from_,
            "to": self.to,
        }
        return {k: v for k, v in values.items() if v}


class NewsAPISettings(BaseModel):
    """NewsAPI.org: disabled until `NEWSAPI__API_KEY` is set (the free plan is 100 requests a day)."""

    api_key: SecretStr | None = None
    base_url: str = "https://newsapi.org"
    queries: list[NewsAPIQuery] = Field(default_factory=lambda: [NewsAPIQuery(country="us")])
    page_size: int = Field(default=100, ge=1, le=100)
    max_pages: int = Field(default=1, ge=1, le=100)
    interval_seconds: float = Field(default=900.0, gt=0)

    @property
    def enabled(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value().strip())


class FullTextSettings(BaseModel):
    """Full article text (producer/fulltext.py): fetch the page of an article whose body is short and extract
    its main text. Off by default: it fetches third-party pages (docs/sources.md "Full article text")."""

    enabled: bool = False
    sources: list[Literal["newsapi", "rss"]] = ["newsapi", "rss"]  # pydantic copies the default
    # A body (content, else description) shorter than this is a truncated body or a lead: NewsAPI's cut is
    # 200 characters plus its "[+N chars]" marker; a feed's lead is a sentence or two.
    min_chars: int = Field(default=500, ge=1, le=20_000)
    max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    per_host: int = Field(default=1, ge=1, le=2)  # pages fetched at once from one host: polite
    max_per_poll: int = Field(default=100, ge=1, le=1_000)  # pages fetched per poll of one source, at most
    robots: bool = True  # honour robots.txt (cached per host)
    robots_ttl_seconds: float = Field(default=3600.0, ge=0)
    user_agent: str = "news-suite-fulltext/0.1 (+https://github.com/; article text for news analysis)"


class ProducerConfig(BaseModel):
    port: int = 8001
    max_push_items: int = Field(default=500, ge=1, le=10_000)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    rss_feeds: list[FeedConfig] = Field(default_factory=list)
    rss_interval_seconds: float = Field(default=300.0, gt=0)
    # Each wait is the interval times a random factor in [1 - jitter, 1 + jitter], so sources drift apart.
    jitter: float = Field(default=0.1, ge=0.0, le=0.9)
    polling: bool = True  # false: sources run only on POST /fetch-now
    concurrency: int = Field(default=4, ge=1, le=64)
    http_timeout_seconds: float = Field(default=15.0, gt=0)
    retry_attempts: int = Field(default=3, ge=1, le=10)
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    retry_max_wait_seconds: float = Field(default=30.0, ge=0)
    max_backoff_seconds: float = Field(default=3600.0, gt=0)
    user_agent: str = "news-suite-producer/0.1 (+https://github.com/)"
    dedup: bool = True
    dedup_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # A claim older than this whose owner did not confirm is taken over (owner presumed dead); it must be
    # longer than the longest send (Kafka request timeout, 30 s) or a slow owner and the taker both produce.
    dedup_lease_seconds: float = Field(default=120.0, ge=1.0)
    # Names this process's claims; a restart with the same id takes its old claims over at once.
    # Must be unique per replica (the host name is, in Kubernetes and on one machine).
    instance_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)
    publish_chunk: int = Field(default=200, ge=1, le=10_000)
    fulltext: FullTextSettings = Field(default_factory=FullTextSettings)

    @field_validator("rss_feeds")
    @classmethod
    def _unique_names(cls, feeds: list[FeedConfig]) -> list[FeedConfig]:
        names = [f.name for f in feeds]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feed names must be unique, repeated: {dupes} (give each an explicit name)")
        return feeds


class ProducerSettings(ServiceSettings):
    producer: ProducerConfig = Field(default_factory=ProducerConfig)
    newsapi: NewsAPISettings = Field(default_factory=NewsAPISettings)

    @model_validator(mode="after")
    def _unique_query_names(self) -> ProducerSettings:
        # A placeholder NEWSAPI__API_KEY is refused by ServiceSettings, like every other secret.
        names = [q.name for q in self.newsapi.queries]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"NewsAPI query names must be unique, repeated: {dupes}")
        return self


@lru_cache(maxsize=1)
def get_settings() -> ProducerSettings:
    return ProducerSettings()
