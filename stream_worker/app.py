"""The faust application and its topics, configured from `WorkerSettings`, and the worker's context.

`context` (a `stream_worker.context.ContextService`) is the app's first dependency: it opens the
worker's resources before any agent runs and closes them after the agents stopped. Agents, timers
and views reach them as `context.ctx`.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TransportT

from common.kafka import RETRY_BACKOFF_MS
from common.topics import Topics
from common.webapp import install_repeat_filter
from stream_worker.context import ContextService, process_registry
from stream_worker.settings import get_settings

__all__ = [
    "analyzed_topic",
    "app",
    "context",
    "dlq_topic",
    "faust_topic",
    "raw_topic",
    "settings",
    "stories_topic",
    "story_input_topic",
]

settings = get_settings()
_topics = Topics.of(settings.kafka.topics)  # the names; encoding and decoding are the context's


# faust hands aiokafka no `retry_backoff_ms`, so its clients retry every 100 ms: while the broker was away each
# retry's connection attempt and metadata refresh logged a line, tens of thousands in an 11 s outage. These
# subclasses give faust's consumer and producers the suite's backoff (`common.kafka.RETRY_BACKOFF_MS`).
class _BackoffConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_kafka.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads these two at start (fetcher, coordinator) and on every retry (client): set before start
        consumer._retry_backoff_ms = RETRY_BACKOFF_MS
        consumer._client._retry_backoff = RETRY_BACKOFF_MS / 1000
        return consumer


class _BackoffConsumer(faust_kafka.Consumer):
    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return _BackoffConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _BackoffProducer(faust_kafka.Producer):
    def _settings_default(self) -> Any:
        return {**super()._settings_default(), "retry_backoff_ms": RETRY_BACKOFF_MS}


class _BackoffTransport(faust_kafka.Transport):
    Consumer = _BackoffConsumer
    Producer = _BackoffProducer


class _App(faust.App):
    def _new_transport(self) -> TransportT:
        return _BackoffTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> TransportT:
        return _BackoffTransport(self.conf.broker_producer, self)


class _Worker(faust.Worker):
    """faust's worker, with the suite's repeated-message filter on the handlers it sets up."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        install_repeat_filter()


app = _App(
    settings.worker.app_id,
    broker=f"kafka://{settings.kafka.bootstrap_servers}",
    value_serializer="raw",
    key_serializer="raw",
    topic_partitions=settings.kafka.partitions,
    topic_replication_factor=settings.kafka.replication_factor,
    processing_guarantee=settings.worker.processing_guarantee,
    producer_acks=-1,
    producer_compression_type=None if settings.kafka.compression_type == "none" else settings.kafka.compression_type,
    producer_max_request_size=settings.kafka.max_request_size,
    # aiokafka sends one request per broker at a time, each carrying at most one batch per partition: faust's
    # default batch (16 KiB, three articles) made a batch of results wait for a dozen round trips.
    producer_max_batch_size=1024 * 1024,
    consumer_auto_offset_reset="earliest",
    web_host=settings.worker.web_host,
    web_port=settings.worker.web_port,
    datadir=settings.worker.datadir,
    store="memory://",
    broker_commit_interval=1.0,
    broker_session_timeout=settings.worker.session_timeout,
    broker_heartbeat_interval=min(3.0, settings.worker.session_timeout / 3),
    Worker=_Worker,
)

# Bytes in, bytes out: faust only moves records; `common.topics.Topics` encodes and decodes them.
raw_topic, analyzed_topic, dlq_topic, story_input_topic, stories_topic = (
    app.topic(name, key_type=bytes, value_type=bytes, partitions=settings.kafka.partitions) for name in _topics.names()
)

# Added before the app starts, so it is the first of the app's children: started first, stopped last
# (see stream_worker.context for why that is the order the analyser needs).
context = ContextService(settings, registry=process_registry())
app.add_dependency(context)

_BY_NAME = {t.get_topic_name(): t for t in (raw_topic, analyzed_topic, dlq_topic, story_input_topic, stories_topic)}


def faust_topic(name: str) -> faust.TopicT:
    """The app's faust topic of that name (sending through it keeps faust's transactions and acks)."""
    return _BY_NAME[name]
