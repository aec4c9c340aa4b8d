"""RSS 2.0 and Atom feeds through feedparser, with conditional GET (ETag / Last-Modified).

The feed is fetched with httpx (timeouts, retries, one client for every source) and handed to
feedparser as bytes, so feedparser never opens a connection of its own. A malformed feed that still
yields entries is used and noted; one that yields none is a `malformed` error for that source only.
"""

from __future__ import annotations

import asyncio
import calendar
import time
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

from common.errors import SourceError
from producer.settings import FeedConfig
from producer.sources.base import FetchResult, HttpPolicy, Source, check_http, http_get

__all__ = ["FeedSource", "map_feed_entry"]


def _date(value: Any) -> datetime | None:
    if isinstance(value, time.struct_time):  # feedparser's *_parsed fields are UTC struct_times
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    return None


def _link(entry: Any) -> str:
    link = entry.get("link")
    if isinstance(link, str) and link:
        return link
    guid = entry.get("id")
    return guid if isinstance(guid, str) and guid.startswith(("http://", "https://")) else ""


def map_feed_entry(entry: Any, feed: Any, *, source: str, fetched_at: datetime) -> dict[str, Any]:
    """One feedparser entry as `RawArticle` input. An entry without any date is dated when it was fetched."""
    published = (
        _date(entry.get("published_parsed"))
        or _date(entry.get("updated_parsed"))
        or _date(feed.get("updated_parsed"))
        or fetched_at
    )
    content = None
    for part in entry.get("content") or ():
        if part.get("value"):
            content = part["value"]
            break
    item: dict[str, Any] = {
        "url": _link(entry),
        "title": entry.get("title") or "",
        "description": entry.get("summary") or None,
        "content": content,
        "author": entry.get("author") or None,
        "source": feed.get("title") or source,
        "published_at": published.isoformat(),
        "origin": "rss",
    }
    language = feed.get("language")
    if isinstance(language, str) and language.strip():
        item["language_hint"] = language.strip().split("-")[0].lower()[:16]
    return {k: v for k, v in item.items() if v is not None}


class FeedSource(Source):
    kind = "rss"

    def __init__(self, feed: FeedConfig, default_interval: float, policy: HttpPolicy) -> None:
        super().__init__(feed.name, feed.interval_seconds or default_interval)
        self.url = feed.url
        self._policy = policy
        self.etag: str | None = None
        self.modified: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "etag": self.etag, "last_modified": self.modified}

    async def fetch(self, client: httpx.AsyncClient) -> FetchResult:
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.modified:
            headers["If-Modified-Since"] = self.modified
        response = await http_get(client, self.url, policy=self._policy, check=check_http, headers=headers)
        if response.status_code == 304:
            return FetchResult(not_modified=True)
        # Parsing is CPU work (seconds for a huge feed): off the event loop, so health checks,
        # pushes and the other sources keep being served meanwhile.
        parsed = await asyncio.to_thread(
            feedparser.parse,
            response.content,
            response_headers={
                "content-type": response.headers.get("content-type", "application/xml"),
                "content-location": str(response.url),
            },
        )
        if not parsed.entries and (parsed.bozo or not parsed.version):
            reason = parsed.get("bozo_exception") or "no RSS or Atom document"
            raise SourceError(f"malformed feed: {reason}", code="malformed")
        fetched_at = datetime.now(UTC)
        items = [map_feed_entry(e, parsed.feed, source=self.name, fetched_at=fetched_at) for e in parsed.entries]
        etag, modified = response.headers.get("etag"), response.headers.get("last-modified")

        def commit() -> None:
            self.etag, self.modified = etag, modified

        note = f"feed is not well-formed, read leniently: {parsed.get('bozo_exception')}" if parsed.bozo else None
        return FetchResult(items=items, note=note, commit=commit)
