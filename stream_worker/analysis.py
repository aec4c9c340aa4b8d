"""How a batch is analysed: in-process or over HTTP, with retries, dead letters and backpressure.

The policy, in one place and free of faust so that it is tested without a broker:
- an outage (`ProviderError`: engine or inference service unavailable, timing out, rate limited) is
  nobody's article's fault: the batch waits with capped exponential backoff and is retried whole, so
  the agent stops taking events (backpressure) instead of dead-lettering a healthy stream;
- any other failure is narrowed to the articles that cause it: each is tried alone up to
  `max_attempts` times with backoff and then handed back as a `Failure` with its attempts (the agent
  dead-letters it);
- a stop or rebalance requested while waiting out an outage (`stopping()` turns true) raises
  `Abandoned`, so the caller can give the batch back to Kafka instead of committing it (faust waits
  for in-flight events before it stops or gives partitions away, so waiting on would hang both).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import httpx
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
    wait_exponential_jitter,
)

from common.errors import NewsSuiteError, ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from common.inference_contract import BatchResponse
from common.schemas import Analysis, Entity, RawArticle

__all__ = [
    "Abandoned",
    "AnalysisRejected",
    "Analyzer",
    "Failure",
    "HttpAnalyzer",
    "InProcessAnalyzer",
    "NoopAnalyzer",
    "RetryPolicy",
    "analyze_resilient",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class AnalysisRejected(NewsSuiteError):
    """The inference service refused an article (4xx other than 429): retrying it will not help soon."""


class Abandoned(NewsSuiteError):
    """A stop was requested while the batch waited out an outage; nothing of it was produced."""


class Analyzer(Protocol):
    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]: ...

    async def aclose(self) -> None: ...


class InProcessAnalyzer:
    """The engine in this worker (`inference.engine.Engine`: its process pool uses every core the worker is
    given), imported and started lazily because it loads models. Its metrics (`inference_*`) go to `registry`,
    the worker's own, so `/metrics` serves them beside the worker's."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._registry = registry
        self._engine: Any = None

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        if self._engine is None:
            from inference.engine import Engine

            self._engine = Engine(registry=self._registry)
        analyses: list[Analysis] = await self._engine.analyze_batch(articles)
        return analyses

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.aclose()  # stops the engine's processes


class NoopAnalyzer:
    """A fixed analysis of the shape the standard tier gives (five keywords, two entities, no embedding), for
    measuring the stream layer alone (`worker.noop_analysis`, bench/stream_layer.py): nothing is computed."""

    _ANALYSIS = Analysis(
        sentiment="neutral",
        sentiment_score=0.0,
        keywords=["markets", "election", "climate", "football", "research"],
        entities=[Entity(text="Reuters", type="ORG"), Entity(text="London", type="LOC")],
        category="world",
        language="en",
        importance_score=5.0,
        providers={"sentiment": "noop"},
        models={"sentiment": "noop"},
    )

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        return [self._ANALYSIS] * len(articles)

    async def aclose(self) -> None:
        return None


class HttpAnalyzer:
    """The inference service's `POST /v1/analyze/batch`; transport errors become `ProviderError`s."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, attempts: int = 3, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)
        self._attempts = attempts

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        # A few quick retries absorb a blip; a longer outage is the caller's backpressure loop.
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ProviderError),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.1, max=1.0),
            reraise=True,
        ):
            with attempt:
                return await self._post(articles)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        body = b'{"articles":[' + b",".join(a.model_dump_json().encode("utf-8") for a in articles) + b"]}"
        try:
            response = await self._client.post(
                "/v1/analyze/batch", content=body, headers={"content-type": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"inference service timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"inference service unreachable: {exc!r}") from exc
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after")
            hint = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
            raise ProviderRateLimited("inference service rate-limited the worker", retry_after=hint)
        if response.status_code >= 500:
            raise ProviderUnavailable(f"inference service answered {response.status_code}: {response.text[:300]}")
        if response.status_code != 200:
            raise AnalysisRejected(f"inference service answered {response.status_code}: {response.text[:500]}")
        try:
            analyses = [r.analysis for r in BatchResponse.model_validate_json(response.content).results]
        except ValidationError as exc:
            raise AnalysisRejected(f"inference service answered something that is not a batch result: {exc}") from exc
        if len(analyses) != len(articles):
            raise AnalysisRejected(f"asked for {len(articles)} analyses, got {len(analyses)}")
        return analyses

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff: float = 0.5  # first wait after a failed attempt; doubles each time
    outage_backoff_max: float = 30.0


@dataclass
class Failure:
    """An article whose analysis kept failing: dead-letter it with these facts."""

    error: str
    attempts: int
    first_failure: datetime = field(default_factory=lambda: datetime.now(UTC))


async def _wait(delay: float, stopping: Callable[[], bool] | None) -> bool:
    """Sleep `delay` seconds; True as soon as `stopping()` says a stop (or rebalance) was requested."""
    deadline = asyncio.get_running_loop().time() + delay
    while True:
        if stopping is not None and stopping():
            return True
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, 0.2))


async def _outage_safe(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    stopping: Callable[[], bool] | None,
    on_outage: Callable[[bool], None],
) -> T:
    """Run `call` until it does not fail with a `ProviderError`, backing off; raise `Abandoned` on stop.

    tenacity directly, not `common.retry.until_up`: this loop needs three things that helper leaves out (a
    rate limit's retry-after as the floor of the wait, a wait that a stop request cuts short, and the
    pause/resume callback that drives the backpressure gauge)."""
    backoff = wait_exponential(multiplier=min(0.5, policy.outage_backoff_max), max=policy.outage_backoff_max)
    last: list[BaseException] = []  # the outage being waited out, for Abandoned's message
    in_outage = False

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = exc.retry_after if isinstance(exc, ProviderRateLimited) and exc.retry_after else 0.0
        return min(max(backoff(state), hint), policy.outage_backoff_max)

    def before_sleep(state: RetryCallState) -> None:
        nonlocal in_outage
        exc = state.outcome.exception() if state.outcome is not None else None
        last[:] = [exc] if exc is not None else []
        if not in_outage:
            log.warning("inference unavailable, pausing consumption: %s", exc)
            in_outage = True
            on_outage(True)

    async def sleep(delay: float) -> None:
        if await _wait(delay, stopping):
            raise Abandoned(str(last[0]) if last else "stop requested") from (last[0] if last else None)

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ProviderError),
            wait=wait,
            sleep=sleep,
            stop=stop_never,
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        if in_outage:
            log.info("inference available again, resuming")
            on_outage(False)


async def analyze_resilient(
    analyzer: Analyzer,
    articles: Sequence[RawArticle],
    policy: RetryPolicy,
    *,
    stopping: Callable[[], bool] | None = None,
    on_outage: Callable[[bool], None] = lambda _paused: None,
    on_failure: Callable[[str], None] = lambda _reason: None,
) -> list[Analysis | Failure]:
    """One result per article, in order: its `Analysis`, or a `Failure` after `policy.max_attempts`."""
    if not articles:
        return []
    try:
        return list(await _outage_safe(lambda: analyzer.analyze_batch(articles), policy, stopping, on_outage))
    except (Abandoned, asyncio.CancelledError):
        raise
    except Exception as exc:  # some article breaks the batch: find which, one by one
        log.warning("batch of %d failed (%r); analysing its articles one by one", len(articles), exc)
        on_failure(type(exc).__name__)
        first = datetime.now(UTC)
    results: list[Analysis | Failure] = []
    for article in articles:
        # Tries of this article alone (the failed batch does not count), `policy.backoff` doubling between them.
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, Exception) and not isinstance(e, Abandoned)),
            stop=stop_after_attempt(policy.max_attempts),
            wait=wait_exponential(multiplier=policy.backoff),
            reraise=True,
        )
        tries = 0
        try:
            async for attempt in retrying:
                tries = attempt.retry_state.attempt_number
                with attempt:
                    try:
                        (analysis,) = await _outage_safe(
                            lambda a=article: analyzer.analyze_batch([a]),  # type: ignore[misc]
                            policy,
                            stopping,
                            on_outage,
                        )
                    except Exception as exc:
                        if not isinstance(exc, Abandoned):
                            on_failure(type(exc).__name__)
                        raise
                    results.append(analysis)
        except (Abandoned, asyncio.CancelledError):
            raise
        except Exception as exc:  # policy.max_attempts reached
            error = f"{type(exc).__name__}: {exc}"[:2_000]
            results.append(Failure(error=error, attempts=tries, first_failure=first))
    return results
