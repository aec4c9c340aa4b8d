"""Full article text (issue 20 item 4): when a source gives a headline and a truncated body (NewsAPI cuts
`content` at 200 characters; many feeds carry a lead only), fetch the article's page and extract its main
text with trafilatura.

Bounded and polite: a page is read up to `max_bytes` and for at most `timeout_seconds`; at most
`per_host` pages are fetched at once from one host; robots.txt is honoured for our user agent (cached per
host for `robots_ttl_seconds`; an unreachable robots.txt allows, a 401/403 one forbids, as the robots
exclusion standard says); requests carry a clear user agent. A failure never loses the article: it is
published with what the source gave, and the failure is counted by source and reason
(`news_fulltext_failures_total{source, reason}`). Extraction runs in a thread (lxml parsing is CPU work).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx
import trafilatura

from common.metrics import ProducerMetrics
from common.schemas import CONTENT_MAX
from producer.settings import FullTextSettings

__all__ = ["FullText", "FullTextFailure", "Page", "needs_full_text"]

log = logging.getLogger(__name__)


class FullTextFailure(Exception):
    """Why one page gave no text: `reason` is a metric label (robots, timeout, too_large, http_4xx, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def needs_full_text(item: dict[str, Any], min_chars: int) -> bool:
    """True when the item's body (its content, else its description) is shorter than `min_chars`: a
    truncated NewsAPI body or a feed's lead."""
    body = item.get("content") or item.get("description") or ""
    return isinstance(body, str) and len(body) < min_chars and isinstance(item.get("url"), str)


class FullText:
    """Fetches and extracts article pages for one producer (shared by its sources)."""

    def __init__(self, settings: FullTextSettings) -> None:
        self.settings = settings
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[str, tuple[float, RobotFileParser | None]] = {}  # host -> (fetched at, rules)
        self._robots_locks: dict[str, asyncio.Lock] = {}

    def applies_to(self, kind: str) -> bool:
        return self.settings.enabled and kind in self.settings.sources

    async def enrich(
        self, source: str, items: list[dict[str, Any]], client: httpx.AsyncClient, metrics: ProducerMetrics
    ) -> list[dict[str, Any]]:
        """`items` with `content` replaced by the page's main text where the body was short and the text
        longer; every item is returned, in order, whatever failed (counted in `metrics` by source and reason)."""
        chosen = [i for i, item in enumerate(items) if needs_full_text(item, self.settings.min_chars)]
        chosen = chosen[: self.settings.max_per_poll]
        texts = await asyncio.gather(*(self._text(source, items[i]["url"], client, metrics) for i in chosen))
        out = list(items)
        for i, text in zip(chosen, texts, strict=True):
            current = out[i].get("content") or ""
            if text is not None and len(text) > len(current):
                out[i] = {**out[i], "content": text[:CONTENT_MAX]}
        return out

    async def _text(self, source: str, url: str, client: httpx.AsyncClient, metrics: ProducerMetrics) -> str | None:
        try:
            text = await self.fetch_text(url, client)
        except FullTextFailure as exc:
            metrics.fulltext_failures.labels(source=source, reason=exc.reason).inc()
            log.info("full text of %s not fetched (%s): %s", url, exc.reason, exc)
            return None
        metrics.fulltext_fetched.labels(source=source).inc()
        return text

    async def fetch_text(self, url: str, client: httpx.AsyncClient) -> str:
        """The main text of the page at `url`; raises `FullTextFailure` with a reason."""
        return (await self.fetch_page(url, client)).text

    async def fetch_page(self, url: str, client: httpx.AsyncClient) -> Page:
        """The page at `url`: its main text, and its title and date when the page carries them (`news analyze`
        builds an article from a bare URL with them); raises `FullTextFailure` with a reason."""
        host = urlsplit(url).netloc.lower()
        if not host:
            raise FullTextFailure("bad_url", f"no host in {url!r}")
        semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.per_host))
        async with semaphore:
            if not await self._allowed(url, host, client):
                raise FullTextFailure("robots", f"robots.txt of {host} disallows {url}")
            html = await self._get(url, client)
        page = await asyncio.to_thread(_extract, html, url)
        if page is None:
            raise FullTextFailure("no_text", f"no main text found in {url}")
        return page

    async def _get(self, url: str, client: httpx.AsyncClient) -> str:
        headers = {"User-Agent": self.settings.user_agent, "Accept": "text/html,application/xhtml+xml"}
        limit = self.settings.max_bytes
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
                    if response.status_code != 200:
                        raise FullTextFailure(f"http_{response.status_code // 100}xx", f"HTTP {response.status_code}")
                    kind = response.headers.get("content-type", "text/html").split(";")[0].strip().lower()
                    if kind not in ("text/html", "application/xhtml+xml"):
                        raise FullTextFailure("not_html", f"content type {kind!r}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise FullTextFailure("too_large", f"page larger than {limit} bytes, not read further")
                    return bytes(body).decode(response.encoding or "utf-8", errors="replace")
        except TimeoutError as exc:
            raise FullTextFailure("timeout", f"no page within {self.settings.timeout_seconds} s") from exc
        except httpx.HTTPError as exc:
            raise FullTextFailure("network", f"{type(exc).__name__}: {exc}") from exc

    async def _allowed(self, url: str, host: str, client: httpx.AsyncClient) -> bool:
        if not self.settings.robots:
            return True
        async with self._robots_locks.setdefault(host, asyncio.Lock()):  # one robots.txt fetch per host
            cached = self._robots.get(host)
            if cached is None or time.monotonic() - cached[0] > self.settings.robots_ttl_seconds:
                cached = (time.monotonic(), await self._fetch_robots(url, client))
                self._robots[host] = cached
        rules = cached[1]
        return rules is None or rules.can_fetch(self.settings.user_agent, url)

    async def _fetch_robots(self, url: str, client: httpx.AsyncClient) -> RobotFileParser | None:
        """The host's rules; None (all allowed) when it has none or cannot be reached; deny-all on 401/403."""
        parts = urlsplit(url)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        rules = RobotFileParser(robots_url)
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                response = await client.get(robots_url, headers={"User-Agent": self.settings.user_agent})
        except (TimeoutError, httpx.HTTPError):
            return None
        if response.status_code in (401, 403):
            rules.parse(["User-agent: *", "Disallow: /"])  # the standard: an access-controlled robots.txt denies
            return rules
        if response.status_code != 200:
            return None
        rules.parse(response.text[:500_000].splitlines())
        return rules


@dataclass(frozen=True)
class Page:
    text: str
    title: str | None = None
    date: str | None = None  # as the page gives it (trafilatura normalises to YYYY-MM-DD)


def _extract(html: str, url: str) -> Page | None:
    # Not `deduplicate=True`: its cache is process-wide, so a second page with the same text (a syndicated
    # story, a page fetched again) would come back empty.
    found: Any = trafilatura.bare_extraction(
        html, url=url, include_comments=False, include_tables=False, favor_precision=True, with_metadata=True
    )
    if found is None:
        return None
    data = found if isinstance(found, dict) else found.as_dict()
    text = (data.get("text") or "").strip()
    if not text:
        return None
    title = (data.get("title") or "").strip() or None
    return Page(text=text, title=title, date=data.get("date") or None)
