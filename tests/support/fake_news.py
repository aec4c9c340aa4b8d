"""Local stand-ins for remote news sources, speaking their real wire format over HTTP on 127.0.0.1:

- a NewsAPI.org-compatible server (`/v2/top-headlines`, `/v2/everything`): the real response shape,
  `page`/`pageSize` paging, the developer plan's 100-result cap (426 `maximumResultsReached`), and
  every error response DESIGN.md lists, either from the request itself (a missing or refused key,
  bad parameters) or forced for the next N requests with `fail_next(code)`;
- RSS 2.0 / Atom feeds under `/feeds/<name>` with ETag and Last-Modified (conditional GET answers 304),
  replaceable between polls, slowable and breakable.

Each server runs uvicorn in a daemon thread on a free port.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from harness.infra import free_port

__all__ = [
    "ERRORS",
    "FeedItem",
    "NewsServer",
    "atom_feed",
    "korean_items",
    "news_server",
    "newsapi_article",
    "rss_feed",
]

# code -> (HTTP status, message), as NewsAPI answers them.
ERRORS: dict[str, tuple[int, str]] = {
    "parameterInvalid": (400, "You've included a parameter in your request which is currently not supported."),
    "parametersMissing": (400, "Required parameters are missing. Please set any of the following parameters."),
    "sourcesTooMany": (400, "You have requested too many sources in a single request. The limit is 20."),
    "sourceDoesNotExist": (400, "You have requested a source which does not exist."),
    "apiKeyDisabled": (401, "Your API key has been disabled."),
    "apiKeyExhausted": (401, "Your API key has no more requests available."),
    "apiKeyInvalid": (401, "Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org."),
    "apiKeyMissing": (401, "Your API key is missing. Append this to the URL with the apiKey param."),
    "maximumResultsReached": (426, "You have requested too many results. Developer accounts are limited to 100."),
    "rateLimited": (429, "You have made too many requests recently. Developer accounts are limited to 100."),
    "unexpectedError": (500, "This shouldn't happen, and if it does then it's our fault, not yours."),
}
VALID_KEY = "test-key-0123456789"
_SPECIAL_KEYS = {"disabled-key": "apiKeyDisabled", "exhausted-key": "apiKeyExhausted"}


def newsapi_article(n: int, *, host: str = "example.com", **overrides: Any) -> dict[str, Any]:
    """One article as NewsAPI returns it (nullable fields included)."""
    article: dict[str, Any] = {
        "source": {"id": None if n % 3 else "bbc-news", "name": "BBC News" if n % 3 == 0 else "Example Times"},
        "author": None if n % 2 else f"Reporter {n}",
        "title": f"Headline number {n}",
        "description": None if n % 5 == 0 else f"<p>Lead of story {n} &amp; more</p>",
        "url": f"https://{host}/news/{n}?utm_source=newsapi",
        "urlToImage": None,
        "publishedAt": (datetime(2024, 11, 26, 5, tzinfo=UTC) - timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "content": f"Body of story {n}, cut by NewsAPI… [+{2000 + n} chars]" if n % 4 else None,
    }
    article.update(overrides)
    return article


@dataclass
class FeedItem:
    title: str
    link: str
    description: str = ""
    published: datetime | None = None
    author: str | None = None


def korean_items() -> list[FeedItem]:
    """Hand-written Korean headlines (no Korean corpus ships anywhere reachable)."""
    base = datetime(2024, 11, 26, 9, tzinfo=UTC)
    return [
        FeedItem(
            "한국은행, 기준금리 0.25%p 인하",
            "https://news.example.kr/economy/1001",
            "한국은행 금융통화위원회가 기준금리를 연 3.00%로 내렸다.",
            base,
        ),
        FeedItem(
            "삼성전자, 차세대 반도체 공개",
            "https://news.example.kr/tech/1002",
            "<b>삼성전자</b>가 새로운 메모리 반도체를 발표했다.",
            base - timedelta(hours=1),
        ),
        FeedItem(
            "서울 첫눈… 출근길 교통 혼잡",
            "https://news.example.kr/society/1003",
            "서울에 올겨울 첫눈이 내려 출근길 교통이 혼잡했다.",
            base - timedelta(hours=2),
        ),
    ]


def rss_feed(title: str, items: list[FeedItem], *, language: str = "en") -> bytes:
    entries = []
    for item in items:
        parts = [
            f"<title>{escape(item.title)}</title>",
            f"<link>{escape(item.link)}</link>",
            f'<guid isPermaLink="true">{escape(item.link)}</guid>',
        ]
        if item.description:
            parts.append(f"<description>{escape(item.description)}</description>")
        if item.published:
            parts.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.author:
            parts.append(f"<author>{escape(item.author)}</author>")
        entries.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.org/</link><description>test feed</description>"
        f"<language>{language}</language>{''.join(entries)}</channel></rss>"
    ).encode()


def atom_feed(title: str, items: list[FeedItem]) -> bytes:
    entries = []
    for item in items:
        when = (item.published or datetime(2024, 11, 26, tzinfo=UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries.append(
            f'<entry><title>{escape(item.title)}</title><link rel="alternate" href="{escape(item.link)}"/>'
            f"<id>{escape(item.link)}</id><updated>{when}</updated><published>{when}</published>"
            f"<summary>{escape(item.description)}</summary>"
            f'<content type="html">{escape("<p>" + item.description + "</p>")}</content>'
            f"<author><name>{escape(item.author or 'Desk')}</name></author></entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:test:{escape(title)}</id>"
        f"<updated>2024-11-26T00:00:00Z</updated>{''.join(entries)}</feed>"
    ).encode()


@dataclass
class _Feed:
    body: bytes
    content_type: str
    etag: str
    modified: str
    status: int = 200
    delay: float = 0.0


@dataclass
class NewsServer:
    """Both fakes on one port: `url` + `/v2/...` for NewsAPI, `feed_url(name)` for feeds."""

    port: int = field(default_factory=free_port)
    articles: list[dict[str, Any]] = field(default_factory=lambda: [newsapi_article(n) for n in range(1, 151)])
    cap: int = 100  # the developer plan's result cap
    requests: list[dict[str, Any]] = field(default_factory=list)
    feeds: dict[str, _Feed] = field(default_factory=dict)
    _forced: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def feed_url(self, name: str) -> str:
        return f"{self.url}/feeds/{name}"

    def fail_next(self, code: str, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """The next `times` NewsAPI requests answer error `code` (see ERRORS)."""
        with self._lock:
            self._forced.extend([(code, headers or {})] * times)

    def set_feed(self, name: str, body: bytes, *, atom: bool = False, status: int = 200, delay: float = 0.0) -> None:
        """Serve (or replace) a feed; a new body gets a new ETag and Last-Modified."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        old = self.feeds.get(name)
        modified = format_datetime(datetime.now(UTC), usegmt=True)
        if old is not None and old.etag == etag:
            modified = old.modified
        ctype = "application/atom+xml; charset=utf-8" if atom else "application/rss+xml; charset=utf-8"
        self.feeds[name] = _Feed(body, ctype, etag, modified, status, delay)

    def feed_requests(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == f"/feeds/{name}"]

    # -- the app ----------------------------------------------------------------------------------
    def _error(self, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
        status, message = ERRORS[code]
        return JSONResponse({"status": "error", "code": code, "message": message}, status, headers=headers)

    def _newsapi(self, request: Request, endpoint: str) -> Response:
        params = dict(request.query_params)
        key = request.headers.get("x-api-key") or params.get("apiKey")
        with self._lock:
            forced = self._forced.pop(0) if self._forced else None
        if forced is not None:
            return self._error(*forced)
        if not key:
            return self._error("apiKeyMissing")
        if key in _SPECIAL_KEYS:
            return self._error(_SPECIAL_KEYS[key])
        if key != VALID_KEY:
            return self._error("apiKeyInvalid")
        sources = [s for s in params.get("sources", "").split(",") if s]
        if len(sources) > 20:
            return self._error("sourcesTooMany")
        if any(s == "no-such-source" for s in sources):
            return self._error("sourceDoesNotExist")
        if endpoint == "everything" and not (params.get("q") or sources or params.get("domains")):
            return self._error("parametersMissing")
        if endpoint == "top-headlines" and sources and (params.get("country") or params.get("category")):
            return self._error("parameterInvalid")
        try:
            page, size = int(params.get("page", "1")), int(params.get("pageSize", "20"))
        except ValueError:
            return self._error("parameterInvalid")
        if not (1 <= size <= 100) or page < 1:
            return self._error("parameterInvalid")
        if page * size > self.cap and (page - 1) * size >= self.cap:
            return self._error("maximumResultsReached")
        start = (page - 1) * size
        chunk = self.articles[start : min(start + size, self.cap)]
        return JSONResponse({"status": "ok", "totalResults": len(self.articles), "articles": chunk})

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Response:
            self.requests.append(
                {"path": request.url.path, "params": dict(request.query_params), "headers": dict(request.headers)}
            )
            response: Response = await call_next(request)
            return response

        @app.get("/v2/top-headlines")
        async def top(request: Request) -> Response:
            return self._newsapi(request, "top-headlines")

        @app.get("/v2/everything")
        async def everything(request: Request) -> Response:
            return self._newsapi(request, "everything")

        @app.get("/feeds/{name}")
        async def feed(name: str, request: Request) -> Response:
            import asyncio

            current = self.feeds.get(name)
            if current is None:
                return Response("not found", 404)
            if current.delay:
                await asyncio.sleep(current.delay)
            if current.status != 200:
                return Response("feed server error", current.status)
            headers = {"ETag": current.etag, "Last-Modified": current.modified}
            if request.headers.get("if-none-match") == current.etag:
                return Response(status_code=304, headers=headers)
            return Response(current.body, media_type=current.content_type, headers=headers)

        return app

    def serve(self) -> Iterator[NewsServer]:
        server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("fake news server did not start")
            time.sleep(0.02)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@contextmanager
def news_server() -> Iterator[NewsServer]:
    yield from NewsServer().serve()
