"""Agents: the batching analysis agent over `news.raw`, plus health and metrics views.

Guarantee: `stream.take_events()` acks a batch's events only after the agent body returns
for it, and the body returns only after Kafka acknowledged every result it produced. Offsets
are committed for acked events only, so a worker killed mid-batch re-reads the batch on restart
(at-least-once; the consumer's store makes the duplicate invisible).

Concurrency is 1 on purpose: with `concurrency > 1` faust can commit past an event that another
actor still holds (faust-streaming/faust#606). Throughput comes from batching and from the
engine's own concurrency, and from more workers (partitions) when that is not enough.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust.web import Request, Response, View
from prometheus_client import REGISTRY
from pydantic import ValidationError

from common.metrics import CONTENT_TYPE_LATEST, WorkerMetrics, render
from common.schemas import AnalyzedArticle, DeadLetter, RawArticle
from inference.engine import get_engine
from stream_worker.app import analyzed_topic, app, dlq_topic, raw_topic, settings

__all__ = ["analyze_raw"]

log = logging.getLogger(__name__)
metrics = WorkerMetrics.create(REGISTRY)


async def _dead_letter(value: bytes | None, key: bytes | None, error: str, reason: str) -> Any:
    metrics.dead_lettered.labels(reason=reason).inc()
    letter = DeadLetter.wrap(value, stage="stream_worker", error=error, key=key, topic=raw_topic.get_topic_name())
    return await dlq_topic.send(key=key, value=letter.model_dump_json().encode("utf-8"))


async def _process(events: list[Any]) -> None:
    started = time.perf_counter()
    metrics.batch_size.observe(len(events))
    pending: list[Any] = []
    articles: list[RawArticle] = []
    for event in events:
        value, key = event.value, event.key
        try:
            articles.append(RawArticle.model_validate_json(value or b""))
        except ValidationError as exc:
            pending.append(await _dead_letter(value, key, str(exc)[:2_000], "invalid"))
    if articles:
        analyses = await get_engine().analyze_batch(articles)
        for article, analysis in zip(articles, analyses, strict=True):
            result = AnalyzedArticle.from_raw(article, analysis)
            pending.append(
                await analyzed_topic.send(
                    key=article.id.encode("ascii"), value=result.model_dump_json().encode("utf-8")
                )
            )
    # Wait for the broker's acks before take_events() acks (and so commits) this batch.
    await asyncio.gather(*pending)
    metrics.processed.inc(len(articles))
    metrics.batch_latency.observe(time.perf_counter() - started)


@app.agent(raw_topic, concurrency=1)
async def analyze_raw(stream: Any) -> None:
    async for events in stream.take_events(settings.worker.batch_size, within=settings.worker.batch_timeout):
        # take_events() acks the batch when the body leaves, even by an exception or a
        # cancellation; so on shutdown the in-flight batch is finished, not abandoned half-done.
        task = asyncio.ensure_future(_process(list(events)))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await task
            raise


@app.page("/metrics")
class MetricsView(View):
    async def get(self, _request: Request) -> Response:
        return self.bytes(render(REGISTRY), content_type=CONTENT_TYPE_LATEST)


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
