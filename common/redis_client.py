"""One way to open Redis for every service: a bounded, blocking pool that rides out restarts.

A plain `Redis.from_url` gives a pool that refuses connection 101 outright (a burst of WebSocket
handshakes turned into 503s) and surfaces the first broken socket after a Redis restart as an
error. Here callers wait for a free connection instead, and a dropped connection is retried
with backoff before anyone sees it.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.settings import RedisSettings

__all__ = ["make_redis"]


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
    return Redis(connection_pool=pool)
