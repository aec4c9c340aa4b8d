"""Consumer service (port 8002): the composition root. Opens Redis and Kafka, builds the stores (articles,
stories), hub and ingest, starts the background tasks (ingest, fan-out of articles and of stories, sweep)
and closes all of it, in reverse order, when the app stops or when start-up fails half-way.

    python -m uvicorn consumer.main:app --port 8002
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import REGISTRY, CollectorRegistry

from common.kafka import open_consumer, open_producer
from common.metrics import ConsumerMetrics
from common.redis_client import open_redis
from common.search_index import make_client
from common.stats import StatsStore
from common.store import ArticleStore
from common.story_store import StoryStore
from common.timelines import TimelineStore
from common.topics import Topics
from common.webapp import (
    AccessTokens,
    RateLimiter,
    configure_logging,
    install_error_handlers,
    log_access_mode,
    mount_guarded,
)
from consumer.alerts import AlertService, AlertStore, WebhookSender, alerts_router, fan_out_alerts
from consumer.api import NEXT_CURSOR_HEADER, ops, router
from consumer.export import export_router
from consumer.graphql import graphql_router
from consumer.ingest import Ingestor
from consumer.live import fan_out, fan_out_stories, sweep
from consumer.search import Archive, search_router
from consumer.settings import ConsumerSettings, get_settings
from consumer.tickets import TicketStore, ticket_router
from consumer.timelines import timeline_router
from consumer.ws import Hub, ws_router

__all__ = ["DATA_ROUTERS", "READ_ROUTERS", "app", "create_app"]

log = logging.getLogger(__name__)


def _start(stack: AsyncExitStack, coroutine: Coroutine[Any, Any, None], name: str) -> None:
    """Run `coroutine` as a task that `stack` cancels (and waits for) on the way out."""
    task = asyncio.create_task(coroutine, name=name)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


DATA_ROUTERS: tuple[APIRouter, ...] = (
    router,
    search_router,
    timeline_router,
    alerts_router,
    export_router,
)
"""Every router that serves data, behind the scoped tokens: GET needs a read token; POST, PUT, PATCH and
DELETE a write token, and pass the per-client write rate limit. One router a line, so adding one is one line."""

READ_ROUTERS: tuple[APIRouter, ...] = (graphql_router,)
"""Routers whose every route only reads, whatever its method (a query sent as a POST): a read token will do.
A route among them that may also write checks `request.state.caller.scope == "write"` itself."""


def create_app(settings: ConsumerSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = registry or REGISTRY
    configure_logging(settings.log_level)
    metrics = ConsumerMetrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings.consumer
        topics = Topics.of(settings.kafka.topics)
        async with AsyncExitStack() as stack:
            # Redis is not waited for: the service comes up and reports not-ready (/readyz) until it answers,
            # and the ingest holds its batch meanwhile. Kafka is: without it there is nothing to serve.
            redis = await open_redis(stack, settings.redis, timeout=None)
            store = ArticleStore(
                redis,
                prefix=settings.redis.key_prefix,
                ttl_seconds=settings.redis.ttl_seconds,
                stream_maxlen=config.stream_maxlen,
            )
            if not await store.ping():
                log.warning("Redis does not answer yet; starting anyway (/readyz reports it until it does)")
            stories = StoryStore(
                redis,
                prefix=settings.redis.key_prefix,
                ttl_seconds=settings.redis.ttl_seconds,
                stream_maxlen=config.stream_maxlen,
                max_members=config.story_max_members,
            )
            stats = StatsStore(redis, prefix=settings.redis.key_prefix, ttl_seconds=settings.redis.ttl_seconds)
            consumer = await open_consumer(
                stack,
                settings.kafka,
                topics.analyzed.name,
                topics.stories.name,
                timeout=config.startup_timeout,
                group_id=config.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=config.max_poll_records,
            )
            dlq = await open_producer(
                stack,
                settings.kafka,
                client_id="news-consumer-dlq",
                topics=[topics.dead_letters.name],
                timeout=config.startup_timeout,
            )
            timelines = TimelineStore(redis, prefix=settings.redis.key_prefix, ttl_seconds=settings.redis.ttl_seconds)
            alerts = AlertStore(
                redis,
                prefix=settings.redis.key_prefix,
                ttl_seconds=settings.redis.ttl_seconds,
                max_alerts=config.alerts.max_alerts,
            )
            webhooks = WebhookSender(config.alerts, metrics, dlq, topics, alerts)
            stack.push_async_callback(webhooks.aclose)
            alerting = AlertService(timelines, alerts, config.alerts, metrics, webhooks)
            hub = Hub(metrics, queue_size=config.ws_queue_size, ping_interval=config.ws_ping_interval)
            ingestor = Ingestor(
                consumer,
                dlq,
                topics,
                store,
                metrics,
                stories=stories,
                max_records=config.max_poll_records,
                after_batch=alerting.after_batch,
            )
            app.state.store, app.state.stats, app.state.hub, app.state.ingestor = store, stats, hub, ingestor
            app.state.stories, app.state.timelines, app.state.alerts = stories, timelines, alerts
            app.state.tickets = TicketStore(redis, prefix=settings.redis.key_prefix)
            # Search and the archive behind /news/{id} (OpenSearch) are not waited for either: the live feed does
            # not need them, and their routes answer 503 while it does not answer.
            search_client = make_client(settings.opensearch)
            stack.push_async_callback(search_client.close)
            app.state.archive = Archive(search_client, settings.opensearch.index_prefix, settings.opensearch.url)
            # Tasks last on the stack, so they stop before the clients they use are closed.
            _start(stack, ingestor.run(), "ingest")
            _start(stack, fan_out(store, hub), "fan-out")
            _start(stack, fan_out_stories(stories, hub), "fan-out-stories")
            _start(stack, fan_out_alerts(alerts, hub), "fan-out-alerts")
            _start(stack, webhooks.run(), "webhooks")
            _start(stack, sweep(store, config.sweep_interval, stories), "sweep")
            yield

    app = FastAPI(title="News consumer", version="0.1.0", lifespan=lifespan)
    app.state.settings, app.state.registry, app.state.metrics = settings, registry, metrics
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=[NEXT_CURSOR_HEADER],
    )
    install_error_handlers(app)
    app.include_router(ops)  # health, readiness and metrics stay open for probes and Prometheus
    access = AccessTokens.of(settings)
    log_access_mode(access, "consumer")
    app.state.access = access
    # Reads need a read token, writes (watchlists) a write token and pass the per-client rate limit: the
    # scope follows each route's method (docs/security.md). Add a data router to DATA_ROUTERS to put it
    # behind the same rules.
    limiter = RateLimiter.of(settings)
    for data in DATA_ROUTERS:
        mount_guarded(app, data, access, limiter)
    # The WebSocket ticket is a POST that only reads: any valid token may ask for one.
    for data in (ticket_router, *READ_ROUTERS):
        mount_guarded(app, data, access, scope="read")
    app.include_router(ws_router)
    return app


app = create_app()
