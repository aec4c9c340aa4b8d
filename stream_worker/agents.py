"""Agents: the batching analysis agent over `news.raw`, consumer-lag reporting, health and metrics views.

Guarantee: `stream.take_events()` acks a batch's events only after the agent body returns for it,
and the body returns only after Kafka acknowledged every message it produced for them (results and
dead letters). Offsets are committed for acked events only, so a worker killed mid-batch re-reads
the batch on restart (at-least-once; the consumer's store makes the duplicate invisible). With
`WORKER__PROCESSING_GUARANTEE=exactly_once` faust produces and commits in Kafka transactions.

Concurrency is 1 on purpose: with `concurrency > 1` faust can commit past an event that another
actor still holds (faust-streaming/faust#606). Throughput comes from batching and from the
engine's own concurrency, and from more workers (partitions) when that is not enough.

Shutdown: `take_events()` acks in a `finally`, even when the body is cancelled, so the in-flight
batch is never cut short silently: it is finished (shielded from the cancellation) or, if it is
waiting out an inference outage, given back to Kafka (its raw messages re-produced to their
partition) before the ack, so nothing is committed that was not analysed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import REGISTRY
from pydantic import ValidationError

from common.metrics import CONTENT_TYPE_LATEST, WorkerMetrics, render
from common.schemas import TEXT_ONLY, AnalyzedArticle, DeadLetter, RawArticle
from stream_worker.analysis import (
    Abandoned,
    Analyzer,
    Failure,
    HttpAnalyzer,
    InProcessAnalyzer,
    RetryPolicy,
    analyze_resilient,
)
from stream_worker.app import analyzed_topic, app, dlq_topic, raw_topic, settings

__all__ = ["analyze_raw", "metrics"]

log = logging.getLogger(__name__)
metrics = WorkerMetrics.create(REGISTRY)
_policy = RetryPolicy(
    max_attempts=settings.worker.max_attempts,
    backoff=settings.worker.retry_backoff,
    outage_backoff_max=settings.worker.outage_backoff_max,
)
_DLQ_ORIGINAL_MAX = 100_000  # bytes; base64 of it stays under DeadLetter's 200,000-character limit
_stopping = asyncio.Event()  # set when the agent is being cancelled (shutdown or rebalance)
_analyzer: Analyzer | None = None


def _get_analyzer() -> Analyzer:
    global _analyzer
    if _analyzer is None:
        url = settings.worker.inference_url
        token = settings.api_token.get_secret_value() if settings.api_token else None
        _analyzer = (
            HttpAnalyzer(url, timeout=settings.worker.inference_timeout, token=token) if url else InProcessAnalyzer()
        )
    return _analyzer


async def _dead_letter(
    value: bytes | None, key: bytes | None, error: str, reason: str, *, attempts: int = 1, first: Any = None
) -> Any:
    metrics.dead_lettered.labels(reason=reason).inc()
    if value is not None and len(value) > _DLQ_ORIGINAL_MAX:
        # A dead letter holds at most 200,000 characters of original; keep the head, say so.
        error = f"message of {len(value)} bytes (kept the first {_DLQ_ORIGINAL_MAX}); {error}"
        value = value[:_DLQ_ORIGINAL_MAX]
    letter = DeadLetter.wrap(
        value,
        stage="stream_worker",
        error=error,
        key=key,
        topic=raw_topic.get_topic_name(),
        attempts=attempts,
        first_failure=first,
    )
    return await dlq_topic.send(key=key, value=letter.model_dump_json().encode("utf-8"))


def _decode(event: Any) -> RawArticle | str:
    """The article, or why the message is not one."""
    value = event.value
    if not isinstance(value, bytes | bytearray) or not value:
        return "empty message"
    try:
        # news.raw holds text the producer already normalised: never parse it as markup again.
        return RawArticle.model_validate_json(value, context=TEXT_ONLY)
    except ValidationError as exc:
        return str(exc)[:2_000]


def _should_let_go() -> bool:
    """True when the batch in an outage wait must be given back: shutdown, cancel or rebalance."""
    return _stopping.is_set() or bool(app.should_stop) or bool(app.rebalancing)


def _pause(paused: bool) -> None:
    metrics.backpressure.set(1 if paused else 0)


async def _process(events: list[Any]) -> None:
    started = time.perf_counter()
    metrics.batch_size.observe(len(events))
    pending: list[Any] = []
    articles: list[tuple[RawArticle, Any]] = []
    for event in events:
        decoded = _decode(event)
        if isinstance(decoded, str):
            reason = "not_json" if "Invalid JSON" in decoded or decoded == "empty message" else "invalid"
            pending.append(await _dead_letter(event.value, event.key, decoded, reason))
        else:
            articles.append((decoded, event))
    try:
        results = await analyze_resilient(
            _get_analyzer(),
            [a for a, _ in articles],
            _policy,
            stopping=_should_let_go,
            on_outage=_pause,
            on_failure=lambda reason: metrics.failed.labels(reason=reason).inc(),
        )
    except Abandoned:
        # Give the batch back: re-produce its raw messages so another run analyses them.
        log.warning("stopping during an inference outage: re-queuing %d articles", len(articles))
        for _, event in articles:
            pending.append(await raw_topic.send(key=event.key, value=event.value))
        await asyncio.gather(*pending)
        return
    processed = 0
    for (article, event), result in zip(articles, results, strict=True):
        if isinstance(result, Failure):
            pending.append(
                await _dead_letter(
                    event.value,
                    event.key,
                    result.error,
                    "analysis_failed",
                    attempts=result.attempts,
                    first=result.first_failure,
                )
            )
            continue
        out = AnalyzedArticle.from_raw(article, result)
        pending.append(
            await analyzed_topic.send(key=article.id.encode("ascii"), value=out.model_dump_json().encode("utf-8"))
        )
        processed += 1
    # Wait for the broker's acks before take_events() acks (and so commits) this batch.
    await asyncio.gather(*pending)
    metrics.processed.inc(processed)
    metrics.batch_latency.observe(time.perf_counter() - started)


@app.agent(raw_topic, concurrency=1)
async def analyze_raw(stream: Any) -> None:
    _stopping.clear()
    try:
        async for events in stream.take_events(settings.worker.batch_size, within=settings.worker.batch_timeout):
            task = asyncio.ensure_future(_process(list(events)))
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                _stopping.set()  # an outage wait gives up; a working batch finishes
                await task
                raise
    except asyncio.CancelledError:
        raise
    except Exception:
        metrics.agent_restarts.labels(agent="analyze_raw").inc()
        log.exception("analyze_raw crashed; faust restarts it")
        raise


_admin: AIOKafkaAdminClient | None = None


async def report_lag() -> None:
    """Lag per assigned `news.raw` partition: high-water mark minus the group's committed offset."""
    global _admin
    consumer = app.consumer
    topic = raw_topic.get_topic_name()
    tps = sorted(tp for tp in consumer.assignment() if tp.topic == topic)
    metrics.consumer_lag.clear()
    if not tps:
        return
    try:
        if _admin is None:
            _admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
            await _admin.start()
        highwaters = await consumer.highwaters(*tps)
        committed = await _admin.list_consumer_group_offsets(settings.worker.app_id, partitions=tps)
    except Exception as exc:  # lag is advisory: never let it crash the worker
        log.debug("could not read consumer lag: %r", exc)
        return
    for tp in tps:
        meta = committed.get(TP(tp.topic, tp.partition))
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag = max(0, int(highwaters.get(tp, 0)) - done)
        metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)


app.timer(interval=settings.worker.lag_interval)(report_lag)
_METRICS_TYPE = CONTENT_TYPE_LATEST.split("; charset=")[0]


@app.page("/metrics")
class MetricsView(View):
    async def get(self, _request: Request) -> Response:
        # aiohttp refuses a charset inside content_type; the exposition format is ASCII.
        return self.bytes(render(REGISTRY), content_type=_METRICS_TYPE)


@app.page("/healthz")
class HealthView(View):
    async def get(self, _request: Request) -> Response:
        return self.json({"status": "ok"})


@app.page("/readyz")
class ReadyView(View):
    async def get(self, _request: Request) -> Response:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        ready = app.producer is not None and not app.rebalancing
        return self.json({"ready": ready, "assigned_partitions": assigned}, status=200 if ready else 503)
