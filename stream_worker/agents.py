"""Agents: the batching analysis agent over `news.raw` and consumer-lag reporting.

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
partition) before the ack, so nothing is committed that was not analysed. The resources the batch
uses (`context.ctx`) are closed only after this agent stopped (see `stream_worker.context`).

What a batch does is `stream_worker.processing.process_batch`; this module only connects it to faust.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from faust.types import TP

from stream_worker.app import app, context, faust_topic, raw_topic, settings
from stream_worker.processing import process_batch

__all__ = ["analyze_raw", "report_lag"]

log = logging.getLogger(__name__)
_stopping = asyncio.Event()  # set when the agent is being cancelled (shutdown or rebalance)


def _should_let_go() -> bool:
    """True when the batch in an outage wait must be given back: shutdown, cancel or rebalance."""
    return _stopping.is_set() or bool(app.should_stop) or bool(app.rebalancing)


async def _send(topic: str, key: bytes | None, value: bytes) -> Awaitable[object]:
    producer = context.ctx.producer
    if producer is not None:  # at_least_once: straight to aiokafka (see WorkerContext.producer)
        sent: Awaitable[object] = await producer.send(topic, value, key=key)
        return sent
    # exactly_once: through the app's faust topic, so that it is produced inside the batch's transaction.
    ack: Awaitable[object] = await faust_topic(topic).send(key=key, value=value)
    return ack


@app.agent(raw_topic, concurrency=1)
async def analyze_raw(stream: Any) -> None:
    _stopping.clear()
    try:
        async for events in stream.take_events(settings.worker.batch_size, within=settings.worker.batch_timeout):
            task = asyncio.ensure_future(process_batch(context.ctx, list(events), send=_send, stopping=_should_let_go))
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                _stopping.set()  # an outage wait gives up; a working batch finishes
                await task
                raise
    except asyncio.CancelledError:
        raise
    except Exception:
        context.ctx.metrics.agent_restarts.labels(agent="analyze_raw").inc()
        log.exception("analyze_raw crashed; faust restarts it")
        raise


async def report_lag() -> None:
    """Lag per assigned `news.raw` partition: high-water mark minus the group's committed offset."""
    # A timer is an app future, stopped after the app's children (the context among them): skip a
    # tick that falls in the shutdown.
    if app.should_stop or not context.is_open:
        return
    ctx = context.ctx
    consumer = app.consumer
    topic = ctx.topics.raw.name
    tps = sorted(tp for tp in consumer.assignment() if tp.topic == topic)
    ctx.metrics.consumer_lag.clear()
    if not tps or ctx.admin is None:
        return
    try:
        highwaters = await consumer.highwaters(*tps)
        committed = await ctx.admin.list_consumer_group_offsets(settings.worker.app_id, partitions=tps)
    except Exception as exc:  # lag is advisory: never let it crash the worker
        log.debug("could not read consumer lag: %r", exc)
        return
    for tp in tps:
        meta = committed.get(TP(tp.topic, tp.partition))
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag = max(0, int(highwaters.get(tp, 0)) - done)
        ctx.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)


app.timer(interval=settings.worker.lag_interval)(report_lag)
