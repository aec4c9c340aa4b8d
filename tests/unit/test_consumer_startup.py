"""The consumer's start-up when Kafka does not answer: a clear error, and nothing left running."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from common.settings import KafkaSettings, RedisSettings
from consumer.main import create_app
from consumer.settings import ConsumerConfig, ConsumerSettings
from harness.infra import free_port

pytestmark = pytest.mark.unit


async def test_kafka_down_fails_start_up_clearly_and_leaves_nothing_running() -> None:
    kafka, redis = free_port(), free_port()  # nothing listens on either
    settings = ConsumerSettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{kafka}"),
        redis=RedisSettings(url=f"redis://127.0.0.1:{redis}/0"),
        consumer=ConsumerConfig(startup_timeout=1.0),
    )
    app = create_app(settings, CollectorRegistry())
    before = asyncio.all_tasks()
    with pytest.raises(TimeoutError, match=rf"Kafka at 127\.0\.0\.1:{kafka} did not answer within 1s"):
        async with app.router.lifespan_context(app):
            raise AssertionError("started without Kafka")
    await asyncio.sleep(0.1)
    assert asyncio.all_tasks() == before, "start-up left tasks running"
    assert not hasattr(app.state, "store")  # nothing half-built is published
