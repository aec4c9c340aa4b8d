"""Kafka plumbing shared by the services: producer factory, topic creation, dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from common.retry import wait_until_up
from common.schemas import DeadLetter
from common.settings import KafkaSettings
from common.topics import Topic

__all__ = [
    "RETRY_BACKOFF_MS",
    "ensure_topics",
    "make_producer",
    "open_consumer",
    "open_producer",
    "send_dead_letter",
    "wait_for_kafka",
]

log = logging.getLogger(__name__)

# aiokafka's pause before retrying a failed request (default 100 ms). While the broker is away every client's
# loops (fetch, coordinator, sender) retry after it, and each retry triggers a connection attempt and a metadata
# refresh that log a line each: at 100 ms an 11 s outage wrote tens of thousands of lines. Half a second cuts the
# attempts fivefold and adds at most that to a retry after a leader change.
RETRY_BACKOFF_MS = 500


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
        retry_backoff_ms=RETRY_BACKOFF_MS,
    )


async def wait_for_kafka(settings: KafkaSettings, *, timeout: float = 60.0) -> None:
    """Return once the broker answers metadata requests; `TimeoutError` after `timeout` seconds."""

    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=5_000)
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    await wait_until_up(
        f"Kafka at {settings.bootstrap_servers}",
        probe,
        timeout=timeout,
        on=(TimeoutError, KafkaConnectionError, OSError),
    )


async def open_producer(
    stack: AsyncExitStack,
    settings: KafkaSettings,
    *,
    client_id: str,
    topics: Iterable[str] = (),
    timeout: float = 60.0,
) -> AIOKafkaProducer:
    """Wait for the broker, create `topics` if missing, start a producer; `stack` stops it (also when a
    later step of the caller's start-up fails)."""
    await wait_for_kafka(settings, timeout=timeout)
    if topics:
        await ensure_topics(settings, topics)
    producer = make_producer(settings, client_id=client_id)
    await producer.start()
    stack.push_async_callback(producer.stop)
    return producer


async def open_consumer(
    stack: AsyncExitStack, settings: KafkaSettings, *topics: str, timeout: float = 60.0, **config: Any
) -> AIOKafkaConsumer:
    """Wait for the broker, create `topics` if missing, start a consumer of them (`config` goes to
    aiokafka; `retry_backoff_ms` defaults to `RETRY_BACKOFF_MS`); `stack` stops it."""
    await wait_for_kafka(settings, timeout=timeout)
    await ensure_topics(settings, topics)
    config.setdefault("retry_backoff_ms", RETRY_BACKOFF_MS)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.bootstrap_servers, **config)
    await consumer.start()
    stack.push_async_callback(consumer.stop)
    return consumer


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
        await _until_led(admin, missing)
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Wait until the brokers' metadata shows every partition of `names` with a leader. A client that asks for
    metadata before that (faust's consumer, right after this) is told the topics do not exist, ignores them, and
    sits with no partitions until its next metadata refresh, minutes later (seen in a benchmark's worker)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        led = [
            t
            for t in described
            if t.get("error_code") == 0 and t.get("partitions") and all(p["leader"] >= 0 for p in t["partitions"])
        ]
        if len(led) == len(names):
            return
        if asyncio.get_running_loop().time() > deadline:
            log.warning("topics %s have no leader after %.0f s; going on", names, timeout)
            return
        await asyncio.sleep(0.2)


async def send_dead_letter(producer: AIOKafkaProducer, topic: Topic[DeadLetter], letter: DeadLetter) -> None:
    """Produce a dead letter and wait for the broker's ack, so it is never lost silently."""
    record = topic.encode(letter)
    await producer.send_and_wait(topic.name, record.value, key=record.key)
