"""Circuit breaker, retry policy and micro-batcher, on their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from common.errors import ProviderError, ProviderRateLimited, ProviderUnavailable
from inference.batcher import MicroBatcher
from inference.importance import importance_score
from inference.resilience import CircuitBreaker, Resilient
from inference.settings import ResilienceSettings

pytestmark = pytest.mark.unit


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_s=10, clock=lambda: now[0])
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 11
    assert breaker.state == "half-open" and breaker.allow()
    breaker.failure()  # the probe failed: open again
    assert breaker.state == "open"
    now[0] = 22
    breaker.success()
    assert breaker.state == "closed"


async def test_retries_honour_retry_after_and_give_up_on_other_errors() -> None:
    resilient = Resilient("p", ResilienceSettings(attempts=3, backoff_initial_s=0.01), timeout_s=1)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ProviderRateLimited("slow down", retry_after=0.3)
        return "ok"

    started = time.perf_counter()
    assert await resilient.call(flaky) == "ok"
    assert time.perf_counter() - started >= 0.3

    async def bad() -> str:
        raise ProviderError("malformed")

    with pytest.raises(ProviderError):
        await resilient.call(bad)


async def test_open_circuit_refuses_without_calling() -> None:
    resilient = Resilient("p", ResilienceSettings(attempts=1, breaker_failures=1), timeout_s=1)
    called = 0

    async def down() -> str:
        nonlocal called
        called += 1
        raise ProviderUnavailable("HTTP 500")

    with pytest.raises(ProviderUnavailable):
        await resilient.call(down)
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await resilient.call(down)
    assert called == 1


async def test_micro_batcher_groups_by_size_and_wait() -> None:
    sizes: list[int] = []

    async def double(xs: Sequence[int]) -> list[int]:
        return [x * 2 for x in xs]

    batcher: MicroBatcher[int, int] = MicroBatcher(double, max_batch=4, max_wait_ms=20, on_batch=sizes.append)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(10))) == [i * 2 for i in range(10)]
    assert sizes == [4, 4, 2]
    assert await batcher.submit(7) == 14  # a lone item goes after max_wait


async def test_micro_batcher_failure_reaches_every_waiter() -> None:
    async def boom(_: object) -> list[int]:
        raise RuntimeError("model crashed")

    batcher: MicroBatcher[int, int] = MicroBatcher(boom, max_batch=8, max_wait_ms=5)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


def test_importance_formula_is_a_function_of_the_article() -> None:
    calm = importance_score(
        entities=0,
        headline="Local fair opens",
        category="entertainment",
        sentiment_score=0.0,
        source="blog",
    )
    big = importance_score(
        entities=8, headline="Quake kills 300", category="world", sentiment_score=-0.9, source="Reuters"
    )
    assert 0 <= calm < big <= 10
    again = importance_score(
        entities=8, headline="Quake kills 300", category="world", sentiment_score=-0.9, source="Reuters"
    )
    assert again == big
