"""Consumer service (port 8002): the app, its lifespan, and the background ingest and fan-out tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import REGISTRY, CollectorRegistry

from common.errors import StoreError
from common.kafka import ensure_topics, make_producer, wait_for_kafka
from common.metrics import ConsumerMetrics
from common.redis_client import make_redis
from common.stats import StatsStore
from common.store import ArticleStore
from common.topics import Topics
from common.webapp import bearer_auth, configure_logging, install_error_handlers
from consumer.api import NEXT_CURSOR_HEADER, ops, router, ws_router
from consumer.service import Ingestor
from consumer.settings import ConsumerSettings, get_settings
from consumer.ws import Hub

__all__ = ["app", "create_app"]

log = logging.getLogger(__name__)


async def _fan_out(store: ArticleStore, hub: Hub) -> None:
    """Relay the store's event stream to this replica's WebSocket clients (every replica sees every article).

    A stream rather than pub/sub: a replica that loses Redis for a moment picks up where it was, and
    the same stream lets a reconnecting client resume from its cursor (see api.live)."""
    delay = 0.5
    position: str | None = None
    while True:
        try:
            if position is None:
                position = await store.last_cursor()
                hub.advance(position)
            position, events = await store.read_events(position, block_ms=5_000)
            for event in events:
                hub.broadcast(event)
            hub.advance(position)
            delay = 0.5
        except StoreError as exc:
            log.warning("event stream unreadable (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _sweep(store: ArticleStore, interval: float) -> None:
    """Take expired articles out of every index (reads skip them anyway; this keeps the indexes small)."""
    while True:
        try:
            while await store.sweep() >= 1_000:
                pass
        except StoreError as exc:
            log.warning("sweep failed (%s)", exc)
        await asyncio.sleep(interval)


def create_app(settings: ConsumerSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = registry or REGISTRY
    configure_logging(settings.log_level)
    metrics = ConsumerMetrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topics = settings.kafka.topics
        redis = make_redis(settings.redis)
        store = ArticleStore(
            redis,
            prefix=settings.redis.key_prefix,
            ttl_seconds=settings.redis.ttl_seconds,
            stream_maxlen=settings.consumer.stream_maxlen,
        )
        stats = StatsStore(redis, prefix=settings.redis.key_prefix, ttl_seconds=settings.redis.ttl_seconds)
        await wait_for_kafka(settings.kafka)
        await ensure_topics(settings.kafka, [topics.analyzed_topic, topics.dlq_topic])
        consumer = AIOKafkaConsumer(
            topics.analyzed_topic,
            bootstrap_servers=settings.kafka.bootstrap_servers,
            group_id=settings.consumer.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.consumer.max_poll_records,
        )
        dlq = make_producer(settings.kafka, client_id="news-consumer-dlq")
        await consumer.start()
        await dlq.start()
        hub = Hub(metrics, queue_size=settings.consumer.ws_queue_size, ping_interval=settings.consumer.ws_ping_interval)
        ingestor = Ingestor(
            consumer, dlq, Topics.of(topics), store, metrics, max_records=settings.consumer.max_poll_records
        )
        app.state.store, app.state.stats, app.state.hub, app.state.ingestor = store, stats, hub, ingestor
        tasks = [
            asyncio.create_task(ingestor.run(), name="ingest"),
            asyncio.create_task(_fan_out(store, hub), name="fan-out"),
            asyncio.create_task(_sweep(store, settings.consumer.sweep_interval), name="sweep"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await consumer.stop()
            await dlq.stop()
            await redis.aclose()

    app = FastAPI(title="News consumer", version="0.1.0", lifespan=lifespan)
    app.state.settings, app.state.registry, app.state.metrics = settings, registry, metrics
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=[NEXT_CURSOR_HEADER],
    )
    install_error_handlers(app)
    app.include_router(ops)
    app.include_router(router, dependencies=[Depends(bearer_auth(settings.api_token))])
    app.include_router(ws_router)
    return app


app = create_app()
