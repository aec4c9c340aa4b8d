"""Producer service (port 8001): the app, its lifespan and the clients it owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import REGISTRY, CollectorRegistry

from common.kafka import open_producer
from common.metrics import ProducerMetrics
from common.redis_client import open_redis
from common.webapp import (
    AccessTokens,
    BodySizeLimit,
    RateLimiter,
    configure_logging,
    install_error_handlers,
    log_access_mode,
    mount_guarded,
)
from producer.api import PushStats, ops, router
from producer.dedup import RedisDedup
from producer.kafka_sink import KafkaSink
from producer.poller import Poller
from producer.service import Publisher
from producer.settings import ProducerSettings, get_settings
from producer.sources import build_sources

__all__ = ["app", "create_app"]


def create_app(settings: ProducerSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = registry or REGISTRY
    configure_logging(settings.log_level)
    cfg = settings.producer

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topics = settings.kafka.topics
        # Everything opened is closed in reverse order, also when a later step of the start-up fails.
        async with AsyncExitStack() as stack:
            producer = await open_producer(
                stack,
                settings.kafka,
                client_id="news-producer",
                topics=[topics.raw_topic, topics.analyzed_topic, topics.dlq_topic],
            )
            # No wait for PING: the service starts and reports not-ready (/readyz) while Redis is down.
            redis = await open_redis(stack, settings.redis, timeout=None)
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    timeout=httpx.Timeout(cfg.http_timeout_seconds),
                    headers={"User-Agent": cfg.user_agent},
                    follow_redirects=True,
                    limits=httpx.Limits(max_connections=cfg.concurrency * 2),
                )
            )
            sink = KafkaSink(producer, settings.kafka)
            dedup = (
                RedisDedup(
                    redis,
                    prefix=f"{settings.redis.key_prefix}producer:",
                    instance=cfg.instance_id,
                    ttl_seconds=cfg.dedup_ttl_seconds,
                    lease_seconds=cfg.dedup_lease_seconds,
                )
                if cfg.dedup
                else None
            )

            def publisher_for(source: str, busy_wait: float = 0.0) -> Publisher:
                return Publisher(
                    sink, app.state.metrics, source=source, dedup=dedup, chunk=cfg.publish_chunk, busy_wait=busy_wait
                )

            poller = Poller(
                build_sources(settings),
                publisher_for,
                client,
                app.state.metrics,
                concurrency=cfg.concurrency,
                jitter=cfg.jitter,
                max_backoff=cfg.max_backoff_seconds,
            )
            stack.push_async_callback(poller.stop)
            app.state.kafka = producer
            app.state.redis = redis
            app.state.dedup = dedup
            app.state.poller = poller
            app.state.publisher = publisher_for("push", busy_wait=2.0)
            if cfg.polling:
                poller.start()
            yield

    app = FastAPI(title="News producer", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.registry = registry
    app.state.metrics = ProducerMetrics.create(registry)
    app.state.push_stats = PushStats()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    # Outermost, so an oversized body is refused before anything reads it.
    app.add_middleware(BodySizeLimit, max_bytes=settings.producer.max_body_bytes)
    install_error_handlers(app)
    app.include_router(ops)
    access = AccessTokens.of(settings)
    log_access_mode(access, "producer")
    # GET (status, sources) needs a read token; POST (push, fetch-now) a write token and passes the
    # per-client write rate limit (docs/security.md).
    mount_guarded(app, router, access, RateLimiter.of(settings))
    return app


app = create_app()
