"""The worker's composition root: everything a batch or a view needs, opened once and closed once.

`WorkerContext.open(stack, settings, registry=...)` builds the context and registers each resource's
close on `stack`, so a start-up that fails half-way closes what it had opened. Nothing here is a
module global: the unit tests open a context with their own registry and analyser.

`ContextService` is how the faust app owns it. It is added to the app as its FIRST dependency
(`app.add_dependency` before the app starts, in `stream_worker.app`), and mode starts a service's
children in the order they were added and stops them in reverse (`mode.Service._actually_start`,
`_default_stop_children`). So:

- start: the context opens before faust's own dependencies (producer, consumer, agents, tables)
  start, so no agent ever sees an event without it;
- stop: `App.on_stop` first waits for the streams to drain and flushes the producer, then the
  children stop in reverse order: the web server, the agents (`Agent.on_stop` awaits every actor
  task, and `analyze_raw` only returns after its shielded in-flight batch), the consumer and the
  producer; this service stops last, so the analyser is never closed under a batch that still uses
  it. (A hook on `app.on_before_shutdown` ran before the agents stopped and broke an in-flight
  batch. `tests/unit/test_worker_context.py` checks the order with mode's own services and that the
  context is the real app's first child; `test_two_workers_then_one_leaves` checks it end to end.)

The app's timers (`report_lag`) are app futures, stopped after the children: they check
`ContextService.is_open` and tolerate a closed client (lag is advisory).
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from mode import Service
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from common.kafka import make_producer
from common.metrics import StoryMetrics, WorkerMetrics
from common.redis_client import open_redis
from common.stats import StatsStore
from common.topics import Topics
from stream_worker.analysis import Analyzer, HttpAnalyzer, InProcessAnalyzer, NoopAnalyzer, RetryPolicy
from stream_worker.settings import WorkerSettings
from stream_worker.story_stage import StageConfig, StoryStage

__all__ = ["ContextService", "WorkerContext", "make_analyzer", "process_registry"]

log = logging.getLogger(__name__)


def process_registry() -> CollectorRegistry:
    """A registry for one worker process: the process/platform/GC collectors the global one carries, and
    whatever the context registers on it (worker and, in-process, engine metrics)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def make_analyzer(settings: WorkerSettings, registry: CollectorRegistry) -> Analyzer:
    """The inference service over HTTP when `worker.inference_url` is set, else the engine in this process
    (`worker.noop_analysis`, for benchmarks: a fixed analysis, no engine)."""
    if settings.worker.noop_analysis:
        return NoopAnalyzer()
    url = settings.worker.inference_url
    if not url:
        return InProcessAnalyzer(registry)
    token = settings.client_token()  # the first read token (least privilege), else a write token, else none
    return HttpAnalyzer(
        url, timeout=settings.worker.inference_timeout, token=token.get_secret_value() if token else None
    )


@dataclass(frozen=True, slots=True)
class WorkerContext:
    settings: WorkerSettings
    topics: Topics
    registry: CollectorRegistry
    metrics: WorkerMetrics
    policy: RetryPolicy
    analyzer: Analyzer
    admin: AIOKafkaAdminClient | None  # for consumer lag; None where no broker is wanted (unit tests)
    # The batch's results go out through this plain aiokafka producer under at_least_once (None under exactly_once,
    # where they must go through faust's transactional producer, and where no broker is wanted). Measured: a batch
    # of 10 acknowledged in ~3 ms through aiokafka, ~140 ms through faust's `Topic.send` (bench/stream_layer.py).
    producer: AIOKafkaProducer | None
    stats: StatsStore | None  # None when `worker.stats_enabled` is off
    stories: StoryStage | None  # None when `worker.stories_enabled` is off

    @classmethod
    async def open(
        cls,
        stack: AsyncExitStack,
        settings: WorkerSettings,
        *,
        registry: CollectorRegistry,
        analyzer: Analyzer | None = None,
        admin: bool = True,
    ) -> WorkerContext:
        """Open every resource, each closed by `stack`. `analyzer`: this one instead of `make_analyzer`'s (the
        context owns and closes it all the same); `admin=False`: no Kafka admin client (no lag reporting)."""
        worker = settings.worker
        metrics = WorkerMetrics.create(registry)
        if analyzer is None:
            analyzer = make_analyzer(settings, registry)
        stack.push_async_callback(analyzer.aclose)
        client: AIOKafkaAdminClient | None = None
        if admin:
            client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
            await client.start()  # `python -m stream_worker` waited for the broker before faust started
            stack.push_async_callback(client.close)
        producer: AIOKafkaProducer | None = None
        if admin and worker.processing_guarantee == "at_least_once":
            producer = make_producer(settings.kafka, client_id=f"{worker.app_id}-results")
            await producer.start()
            stack.push_async_callback(producer.stop)  # after the agents stopped: see the module docstring
        stats: StatsStore | None = None
        stories: StoryStage | None = None
        topics = Topics.of(settings.kafka.topics)
        if worker.stats_enabled or worker.stories_enabled:
            # No PING wait: the published statistics are a copy, and the story stage's checkpoints are retried
            # (Kafka is its changelog between them); the worker analyses while Redis is down.
            redis = await open_redis(stack, settings.redis, timeout=None)
            if worker.stats_enabled:
                stats = StatsStore(redis, prefix=settings.redis.key_prefix, ttl_seconds=settings.redis.ttl_seconds)
            if worker.stories_enabled:
                stories = StoryStage(
                    topics=topics,
                    redis=redis,
                    key_prefix=settings.redis.key_prefix,
                    metrics=StoryMetrics.create(registry),
                    config=StageConfig(
                        max_signatures=worker.story_max_signatures,
                        checkpoint_records=worker.story_checkpoint_records,
                        checkpoint_seconds=worker.story_checkpoint_seconds,
                    ),
                )
        return cls(
            settings=settings,
            topics=topics,
            registry=registry,
            metrics=metrics,
            policy=RetryPolicy(
                max_attempts=worker.max_attempts,
                backoff=worker.retry_backoff,
                outage_backoff_max=worker.outage_backoff_max,
            ),
            analyzer=analyzer,
            admin=client,
            producer=producer,
            stats=stats,
            stories=stories,
        )


class ContextService(Service):
    """Opens a `WorkerContext` when started and closes it when stopped (see the module docstring for when)."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        registry: CollectorRegistry,
        analyzer: Analyzer | None = None,
        admin: bool = True,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._registry = registry
        self._analyzer = analyzer
        self._admin = admin
        self._stack: AsyncExitStack | None = None
        self._ctx: WorkerContext | None = None

    @property
    def ctx(self) -> WorkerContext:
        if self._ctx is None:
            raise RuntimeError("the worker context is not open (the app has not started, or has stopped)")
        return self._ctx

    @property
    def is_open(self) -> bool:
        return self._ctx is not None

    async def on_start(self) -> None:
        stack = AsyncExitStack()
        try:
            self._ctx = await WorkerContext.open(
                stack, self._settings, registry=self._registry, analyzer=self._analyzer, admin=self._admin
            )
        except BaseException:
            await stack.aclose()  # what opened before the failure
            raise
        self._stack = stack
        log.info("worker context open")

    async def on_stop(self) -> None:
        stack, self._stack, self._ctx = self._stack, None, None
        if stack is not None:
            await stack.aclose()
            log.info("worker context closed")
