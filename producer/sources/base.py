"""What every source is, and the one HTTP GET they share: timeouts and retries translated into `SourceError`."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from common.errors import SourceError, SourceRateLimited

if TYPE_CHECKING:
    from producer.fulltext import FullText

__all__ = ["FetchResult", "HttpPolicy", "Source", "http_get"]


@dataclass
class FetchResult:
    """Items of one fetch (dicts for `RawArticle.model_validate`) and what else the poll should know.

    `commit` runs only after every item was published: a feed's ETag is kept only then, so a failed
    publish is fetched again in full instead of answered 304. `error` is a failure after some items
    (a later NewsAPI page): those items are still published, then the error is reported.
    """

    items: list[dict[str, Any]] = field(default_factory=list)
    not_modified: bool = False
    note: str | None = None
    error: SourceError | None = None
    commit: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class HttpPolicy:
    attempts: int = 3
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_bytes: int = 10 * 1024 * 1024  # a response body past this is refused, not read on


_HOP_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def _bounded_get(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    params: Mapping[str, str | int] | None,
    headers: Mapping[str, str] | None,
) -> httpx.Response:
    """GET that stops reading at `max_bytes`: a 50 MB "feed" costs 10 MB of memory, not 50."""
    async with client.stream("GET", url, params=params, headers=headers) as streamed:
        body = bytearray()
        async for chunk in streamed.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise SourceError(f"response larger than {max_bytes} bytes, not read further", code="too_large")
        # The body is decoded already: drop the headers that describe the wire encoding.
        kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _HOP_HEADERS]
        return httpx.Response(streamed.status_code, headers=kept, content=bytes(body), request=streamed.request)


class Source(abc.ABC):
    """A named, pollable source. `fetch` raises `SourceError` (with a code) or returns a `FetchResult`."""

    kind: str = "source"

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        # Set by `build_sources` when full article text is on for this kind of source (the poller uses it).
        self.fulltext: FullText | None = None

    @abc.abstractmethod
    async def fetch(self, client: httpx.AsyncClient) -> FetchResult: ...

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What `GET /sources` shows: never a secret."""


def _wait(policy: HttpPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(multiplier=policy.initial_wait, max=policy.max_wait, jitter=policy.initial_wait)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        # A server that says when to come back is believed, within the policy's longest wait.
        return max(backoff(state), min(float(hint), policy.max_wait)) if hint else backoff(state)

    return wait


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, SourceError) and exc.retryable


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def http_get(
    client: httpx.AsyncClient,
    url: str,
    *,
    policy: HttpPolicy,
    check: Callable[[httpx.Response], None],
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """GET with retries of what may pass (timeouts, connection errors, and what `check` marks retryable)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            try:
                response = await _bounded_get(client, url, max_bytes=policy.max_bytes, params=params, headers=headers)
            except httpx.TimeoutException as exc:
                raise SourceError(f"timed out: {type(exc).__name__}", code="timeout", retryable=True) from exc
            except httpx.TransportError as exc:
                raise SourceError(f"cannot connect: {exc}", code="network", retryable=True) from exc
            check(response)
            return response
    raise AssertionError("unreachable")  # pragma: no cover - reraise=True always raises or returns


def check_http(response: httpx.Response) -> None:
    """Generic status handling: 304 and 2xx pass, 429/5xx retry, other 4xx fail."""
    status = response.status_code
    if status == 304 or 200 <= status < 300:
        return
    if status == 429:
        raise SourceRateLimited("HTTP 429 Too Many Requests", code="http_429", retry_after=retry_after(response))
    raise SourceError(f"HTTP {status} {response.reason_phrase}", code=f"http_{status}", retryable=status >= 500)
