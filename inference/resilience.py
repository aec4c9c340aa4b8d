"""Resilience around one remote provider: semaphore, timeout, tenacity retries honouring Retry-After,
and a circuit breaker. Failures surface as the `common.errors.ProviderError` family."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from common.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from inference.settings import ResilienceSettings

__all__ = ["CircuitBreaker", "CircuitOpen", "Resilient"]

T = TypeVar("T")


class CircuitOpen(ProviderUnavailable):
    """The provider's circuit is open: the call was not made."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderUnavailable | ProviderTimeout | ProviderRateLimited) and not isinstance(
        exc, CircuitOpen
    )


class CircuitBreaker:
    """Closed -> open after `failures` consecutive failures; half-open after `reset_s` lets one call probe."""

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self._reset_s else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold or self.state == "half-open":
            self._opened_at = self._clock()


class Resilient:
    """Calls `fn()` under the provider's semaphore, timeout, retry policy and breaker."""

    def __init__(
        self, name: str, settings: ResilienceSettings, timeout_s: float, on_state: Callable[[bool], None] | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.timeout_s = timeout_s
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._on_state = on_state

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderRateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.settings.retry_after_max_s)
        # Full jitter: uniform in [0, min(max, initial * 2^attempt)].
        cap = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2 ** (state.attempt_number - 1))
        return random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(fn)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _attempt(self, fn: Callable[[], Awaitable[T]]) -> T:
        # Checked before every attempt: other calls may have opened the circuit while this one waited.
        if not self.breaker.allow():
            raise CircuitOpen(f"{self.name}: circuit open")
        try:
            async with self._semaphore:
                try:
                    async with asyncio.timeout(self.timeout_s):
                        result = await fn()
                except TimeoutError:
                    raise ProviderTimeout(f"{self.name}: no answer within {self.timeout_s}s") from None
        except ProviderError:
            self.breaker.failure()
            self._report()
            raise
        self.breaker.success()
        self._report()
        return result

    def _report(self) -> None:
        if self._on_state is not None:
            self._on_state(self.breaker.state == "open")
