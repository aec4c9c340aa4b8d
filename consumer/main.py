"""Consumer service (port 8002): the app, its lifespan, and the background ingest and fan-out tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import REGISTRY, CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.http import configure_logging, install_error_handlers
from common.kafka import ensure_topics, make_producer, wait_for_kafka
from common.metrics import ConsumerMetrics
from common.store import ArticleStore
from consumer.api import router
from consumer.service import Ingestor
from consumer.settings import ConsumerSettings, get_settings
from consumer.ws import Hub

__all__ = ["app", "create_app"]

log = logging.getLogger(__name__)


async def _fan_out(redis: Redis, store: ArticleStore, hub: Hub) -> None:
    """Relay the store's pub/sub channel to this replica's WebSocket clients (every replica sees every article)."""
    delay = 0.5
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(store.channel)
                delay = 0.5
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        data = message["data"]
                        hub.broadcast(data.decode("utf-8") if isinstance(data, bytes) else data)
        except (RedisError, OSError) as exc:
            log.warning("Redis pub/sub lost (%s); resubscribing in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def create_app(settings: ConsumerSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = registry or REGISTRY
    configure_logging(settings.log_level)
    metrics = ConsumerMetrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topics = settings.kafka.topics
        redis = Redis.from_url(settings.redis.url, health_check_interval=30)
        store = ArticleStore(redis, prefix=settings.redis.key_prefix, ttl_seconds=settings.redis.ttl_seconds)
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
        hub = Hub(metrics, queue_size=settings.consumer.ws_queue_size)
        ingestor = Ingestor(
            consumer, dlq, topics.dlq_topic, store, metrics, max_records=settings.consumer.max_poll_records
        )
        app.state.store, app.state.hub, app.state.ingestor = store, hub, ingestor
        tasks = [
            asyncio.create_task(ingestor.run(), name="ingest"),
            asyncio.create_task(_fan_out(redis, store, hub), name="fan-out"),
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
    )
    install_error_handlers(app)
    app.include_router(router)
    return app


app = create_app()
