"""One way to open Redis for every service: a bounded, blocking pool that rides out restarts.

A plain `Redis.from_url` gives a pool that refuses connection 101 outright (a burst of WebSocket
handshakes turned into 503s) and surfaces the first broken socket after a Redis restart as an
error. Here callers wait for a free connection instead, and a dropped connection is retried
with backoff before anyone sees it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.retry import wait_until_up
from common.settings import RedisSettings

__all__ = ["make_redis", "open_redis"]


def make_redis(settings: RedisSettings) -> Redis:
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.pool_timeout_seconds,
        health_check_interval=30,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections too


async def open_redis(stack: AsyncExitStack, settings: RedisSettings, *, timeout: float | None = 60.0) -> Redis:
    """A client from `make_redis`, closed by `stack`; with a `timeout`, wait until Redis answers PING first
    (`TimeoutError` after it). `timeout=None` starts without waiting: for services that must come up and
    report not-ready while Redis is down."""
    redis = make_redis(settings)
    stack.push_async_callback(redis.aclose)
    if timeout is not None:
        await wait_until_up(
            f"Redis at {settings.url.split('@')[-1]}",
            redis.ping,
            timeout=timeout,
            on=(RedisConnectionError, RedisTimeoutError, OSError),
        )
    return redis
