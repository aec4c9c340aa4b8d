"""Producer service (port 8001): the app, its lifespan and the clients it owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import REGISTRY, CollectorRegistry

from common.http import configure_logging, install_error_handlers
from common.kafka import ensure_topics, make_producer, wait_for_kafka
from common.metrics import ProducerMetrics
from producer.api import router
from producer.kafka_sink import KafkaSink
from producer.service import Publisher
from producer.settings import ProducerSettings, get_settings

__all__ = ["app", "create_app"]


def create_app(settings: ProducerSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = registry or REGISTRY
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topics = settings.kafka.topics
        await wait_for_kafka(settings.kafka)
        await ensure_topics(settings.kafka, [topics.raw_topic, topics.analyzed_topic, topics.dlq_topic])
        producer = make_producer(settings.kafka, client_id="news-producer")
        await producer.start()
        app.state.kafka = producer
        app.state.publisher = Publisher(KafkaSink(producer, topics), app.state.metrics, source="push")
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(title="News producer", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.registry = registry
    app.state.metrics = ProducerMetrics.create(registry)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    install_error_handlers(app)
    app.include_router(router)
    return app


app = create_app()
