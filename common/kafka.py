"""Kafka plumbing shared by the services: producer factory, topic creation, dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from common.schemas import DeadLetter
from common.settings import KafkaSettings

__all__ = ["ensure_topics", "make_producer", "send_dead_letter", "wait_for_kafka"]

log = logging.getLogger(__name__)


def make_producer(settings: KafkaSettings, *, client_id: str) -> AIOKafkaProducer:
    """Idempotent producer with `acks=all`: a retry never duplicates or reorders within a partition."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        compression_type=None if settings.compression_type == "none" else settings.compression_type,
        linger_ms=settings.linger_ms,
        max_request_size=settings.max_request_size,
        request_timeout_ms=30_000,
    )


async def wait_for_kafka(settings: KafkaSettings, *, timeout: float = 60.0) -> None:
    """Return once the broker answers metadata requests; raise after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=5_000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (TimeoutError, KafkaConnectionError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"Kafka at {settings.bootstrap_servers} did not answer: {exc}") from exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


async def ensure_topics(settings: KafkaSettings, names: Iterable[str]) -> None:
    """Create missing topics with the configured partitions; existing topics are left alone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return
        topics = [
            NewTopic(name=n, num_partitions=settings.partitions, replication_factor=settings.replication_factor)
            for n in missing
        ]
        try:
            await admin.create_topics(topics)
        except TopicAlreadyExistsError:
            pass  # another service created it between our look and our create
        log.info("created topics %s with %d partitions", missing, settings.partitions)
    finally:
        await admin.close()


async def send_dead_letter(producer: AIOKafkaProducer, topic: str, letter: DeadLetter) -> None:
    """Produce a dead letter and wait for the broker's ack, so it is never lost silently."""
    key = letter.original_key.encode("utf-8") if letter.original_key else None
    await producer.send_and_wait(topic, letter.model_dump_json().encode("utf-8"), key=key)
