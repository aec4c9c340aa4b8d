"""Retrying, one way (tenacity): waiting for a dependency at start-up, and outliving an outage in a loop.

await wait_until_up("Kafka at host:9092", probe, timeout=60)   # start-up: a clear TimeoutError at the end

async for attempt in until_up("Redis write", on=(StoreError,)):  # a loop that must not lose work
    with attempt:
        await store.put(article)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

__all__ = ["until_up", "wait_until_up"]

T = TypeVar("T")

log = logging.getLogger(__name__)


def _warn(what: str, logger: logging.Logger) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning("%s failed (%s); retrying in %.1fs", what, error, delay)

    return before_sleep


def until_up(
    what: str,
    *,
    on: tuple[type[BaseException], ...],
    initial: float = 0.2,
    most: float = 10.0,
    logger: logging.Logger = log,
) -> AsyncRetrying:
    """Retry on `on` for as long as it takes (an outage must not skip work), backing off to `most` seconds.

    Anything else propagates at once; cancellation stops the wait."""
    return AsyncRetrying(
        retry=retry_if_exception_type(on),
        wait=wait_exponential_jitter(multiplier=initial, max=most, jitter=initial),
        stop=stop_never,
        before_sleep=_warn(what, logger),
        reraise=True,
    )


async def wait_until_up(
    what: str,
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 60.0,
    on: tuple[type[BaseException], ...] = (OSError, TimeoutError),
    logger: logging.Logger = log,
) -> T:
    """`probe()`'s answer once it gives one; `TimeoutError` naming `what` and the last error after `timeout`."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(on),
        wait=wait_exponential_jitter(multiplier=0.25, max=2.0, jitter=0.25),
        stop=stop_after_delay(timeout),
        before_sleep=_warn(what, logger),
    )
    try:
        return await retrying(probe)
    except RetryError as exc:
        error = exc.last_attempt.exception()
        raise TimeoutError(f"{what} did not answer within {timeout:.0f}s: {error}") from error
