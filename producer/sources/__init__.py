"""News sources the producer polls: NewsAPI.org queries and RSS/Atom feeds, built from settings."""

from __future__ import annotations

from producer.fulltext import FullText
from producer.settings import ProducerSettings
from producer.sources.base import FetchResult, HttpPolicy, Source
from producer.sources.newsapi import NewsAPISource, map_newsapi_article
from producer.sources.rss import FeedSource, map_feed_entry

__all__ = [
    "FeedSource",
    "FetchResult",
    "HttpPolicy",
    "NewsAPISource",
    "Source",
    "build_sources",
    "map_feed_entry",
    "map_newsapi_article",
]


def build_sources(settings: ProducerSettings) -> list[Source]:
    """Every configured network source; NewsAPI only with a key, RSS only with URLs."""
    cfg = settings.producer
    policy = HttpPolicy(
        attempts=cfg.retry_attempts, max_wait=cfg.retry_max_wait_seconds, max_bytes=cfg.max_response_bytes
    )
    sources: list[Source] = []
    if settings.newsapi.enabled:
        sources.extend(NewsAPISource(q, settings.newsapi, policy) for q in settings.newsapi.queries)
    sources.extend(FeedSource(feed, cfg.rss_interval_seconds, policy) for feed in cfg.rss_feeds)
    if cfg.fulltext.enabled:
        fulltext = FullText(cfg.fulltext)  # one for all sources: the per-host limit and robots cache are shared
        for source in sources:
            if fulltext.applies_to(source.kind):
                source.fulltext = fulltext
    return sources
