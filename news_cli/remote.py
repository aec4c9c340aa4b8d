"""The `news` commands that talk to a running consumer: `search`, `export` and `tail`.

The consumer's address is `--api-url` (or `NEWS_API_URL`, default `http://127.0.0.1:8002`) and its bearer token
`--token` (or `NEWS_TOKEN`); a server that runs open needs none. Every failure is one line that says what to do
(`RemoteError`), never a traceback.

The live WebSocket takes a one-time ticket where the server offers one (`POST /ws/ticket` with the bearer token
answers `{"ticket": ...}`, then `/ws?ticket=...`); a server without that route is given the token in the
`Authorization` header, and an open server nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

__all__ = [
    "DEFAULT_API_URL",
    "WS_UNAUTHORIZED",
    "Api",
    "RemoteError",
    "tail",
]

DEFAULT_API_URL = "http://127.0.0.1:8002"
WS_UNAUTHORIZED = 4401  # common.webapp closes an unauthorised WebSocket with this code


class RemoteError(Exception):
    """A request the consumer refused or could not be sent: the message says why and what to do."""


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's 422: one entry per parameter at fault
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}" for d in detail)
    return str(detail or body)[:300]


class Api:
    """The consumer's HTTP API, as the CLI uses it."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code == 401:
            hint = "the token was refused" if self.token else "the server wants a token: pass --token or set NEWS_TOKEN"
            raise RemoteError(f"401 from {self.base_url}: {hint}")
        if response.status_code >= 400:
            response.read()
            raise RemoteError(f"{response.status_code} from {response.request.url.path}: {_detail(response)}")
        return response

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise RemoteError(
                f"no consumer answers at {self.base_url} ({exc}): start it (`make up`) or pass --api-url / NEWS_API_URL"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise RemoteError(f"the consumer at {self.base_url} broke off the answer: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise RemoteError(f"the consumer at {self.base_url} did not answer in time ({exc})") from exc

    def get_json(self, path: str, params: Mapping[str, Any]) -> Any:
        with self._errors():
            return self._check(self._client.get(path, params=_clean(params))).json()

    def download(self, path: str, params: Mapping[str, Any], target: Path, progress: Callable[[int], None]) -> int:
        """Stream `path` into `target`: written to `<target>.part` and renamed once the whole body arrived, so a
        failed download leaves no file that looks complete. Returns the bytes written."""
        part = target.with_name(target.name + ".part")
        written = 0
        try:
            with self._errors(), self._client.stream("GET", path, params=_clean(params), timeout=None) as response:
                self._check(response)
                with part.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        written += len(chunk)
                        progress(len(chunk))
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
        return written

    def ticket(self) -> str | None:
        """A one-time WebSocket ticket, or None when the server has no ticket route (an older or open server)."""
        with self._errors():
            response = self._client.post("/ws/ticket")
        if response.status_code in (404, 405):
            return None
        with self._errors():
            ticket = self._check(response).json().get("ticket")
        if not isinstance(ticket, str) or not ticket:
            raise RemoteError(f"POST /ws/ticket answered no ticket: {response.text[:200]}")
        return ticket


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None and v != ""}


def ws_url(base_url: str, params: Mapping[str, Any]) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/ws"
    return urlunsplit((scheme, parts.netloc, path, urlencode(_clean(params)), ""))


async def tail(
    api: Api,
    filters: Mapping[str, Any],
    show: Callable[[dict[str, Any]], None],
    notice: Callable[[str], None],
    *,
    count: int | None = None,
    stories: bool = False,
    reconnect: bool = True,
) -> int:
    """Follow `/ws`, calling `show` with each new article (the `data` of `new_analysis`), until `count` articles
    (None: until interrupted). A dropped connection is resumed from the last cursor, so nothing is missed
    while the server keeps it. Returns how many articles were shown."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    shown = 0
    cursor: str | None = None
    delay = 0.5
    while True:
        ticket = await asyncio.to_thread(api.ticket) if api.token else None
        params: dict[str, Any] = {**filters, "stories": "true" if stories else "false"}
        headers: dict[str, str] = {}
        if ticket is not None:
            params["ticket"] = ticket
        elif api.token:
            headers["Authorization"] = f"Bearer {api.token}"
        if cursor is not None:
            params["since"] = cursor
        url = ws_url(api.base_url, params)
        try:
            async with connect(url, additional_headers=headers, open_timeout=10, max_size=16 * 1024 * 1024) as ws:
                delay = 0.5
                async for text in ws:
                    message = json.loads(text)
                    kind = message.get("type")
                    if kind in ("ping", "new_analysis") and message.get("cursor"):
                        cursor = message["cursor"]
                    articles: list[dict[str, Any]] = []
                    if kind == "new_analysis":
                        articles = [message["data"]]
                    elif kind == "initial_data" and cursor is not None:
                        # A resumed connection: what was missed (newest first), shown oldest first. The first
                        # connection's snapshot is the past, not the tail, and is not shown.
                        if message.get("resumed") is False:
                            notice("the server could not resume (too far behind): articles may have been missed")
                        else:
                            articles = list(reversed(message.get("data", [])))
                        cursor = message.get("cursor", cursor)
                    elif kind == "story_update" and stories:
                        show({"story": message["data"]})
                    elif kind == "error":
                        notice(f"server: {message.get('message')}")
                    elif kind == "lagged":
                        notice(f"server: {message.get('dropped')} articles dropped (this terminal read too slowly)")
                    for article in articles:
                        show(article)
                        shown += 1
                        if count is not None and shown >= count:
                            return shown
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == WS_UNAUTHORIZED:
                hint = "the token was refused" if api.token else "pass --token or set NEWS_TOKEN"
                raise RemoteError(f"the WebSocket at {api.base_url} wants a token: {hint}") from exc
            if not reconnect:
                return shown
            notice(f"connection closed ({exc}); reconnecting")
        except InvalidStatus as exc:
            raise RemoteError(
                f"the WebSocket at {url.split('?')[0]} was refused: HTTP {exc.response.status_code}"
            ) from exc
        except OSError as exc:
            if not reconnect or cursor is None:
                raise RemoteError(
                    f"no consumer answers at {api.base_url} ({exc}): start it or pass --api-url / NEWS_API_URL"
                ) from exc
            notice(f"cannot reach {api.base_url} ({exc}); retrying in {delay:.0f}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def env_token(token: str | None) -> str | None:
    return token or os.environ.get("NEWS_TOKEN") or None
