"""The story stage's agent: `news.stories.in` in batches, `stream_worker.story_stage.process_story_batch` per batch.

Concurrency 1 (faust-streaming/faust#606, see `stream_worker.agents`), and one partition per language, so one
writer per language. The batch is shielded from cancellation like the analysis agent's: `take_events()` acks a
batch in a `finally`, so a batch cut short would be committed without its updates. A revoked partition's
state is dropped from memory (`StoryStage.forget`): whoever reads it next restores it from its Redis
checkpoint and the committed records after it (`replay`, a plain aiokafka consumer on that one partition).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_worker.app import app, context, faust_topic, settings, story_input_topic
from stream_worker.story_stage import StoryRecord, process_story_batch

__all__ = ["assign_stories", "replay_partition"]

log = logging.getLogger(__name__)
_REPLAY_IDLE_S = 30.0  # a replay that reads nothing for this long fails the batch (faust restarts the agent)


async def _send(topic: str, key: bytes | None, value: bytes) -> Awaitable[object]:
    ack: Awaitable[object] = await faust_topic(topic).send(key=key, value=value)
    return ack


async def replay_partition(partition: int, start: int, end: int) -> Sequence[StoryRecord]:
    """The records of one `news.stories.in` partition at offsets start <= offset < end (committed ones only)."""
    topic = context.ctx.topics.story_input.name
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a start below the log's start (retention) reads from its start
        isolation_level="read_committed",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    out: list[StoryRecord] = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        idle_since = time.monotonic()
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500)
            for message in batch.get(tp, []):
                if start <= message.offset < end:
                    out.append(
                        StoryRecord(
                            message.partition, message.offset, message.timestamp / 1000, message.key, message.value
                        )
                    )
            if batch:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > _REPLAY_IDLE_S:
                raise TimeoutError(
                    f"replay of {topic}[{partition}] {start}..{end} stalled at {await consumer.position(tp)}"
                )
    finally:
        await consumer.stop()
    return out


def _record(event: Any) -> StoryRecord:
    message = event.message
    return StoryRecord(message.partition, message.offset, float(message.timestamp), message.key, message.value)


@app.agent(story_input_topic, concurrency=1)
async def assign_stories(stream: Any) -> None:
    try:
        async for events in stream.take_events(settings.worker.story_batch_size, within=settings.worker.batch_timeout):
            stage = context.ctx.stories
            if stage is None:
                continue  # stories disabled: the feed sends nothing here either
            records = [_record(event) for event in events]
            task = asyncio.ensure_future(process_story_batch(stage, records, send=_send, replay=replay_partition))
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                await task  # a batch is never cut short (see the module docstring)
                raise
    except asyncio.CancelledError:
        raise
    except Exception:
        context.ctx.metrics.agent_restarts.labels(agent="assign_stories").inc()
        log.exception("assign_stories crashed; faust restarts it")
        if context.is_open and context.ctx.stories is not None:
            context.ctx.stories.forget()  # the failed batch's partial state must not be kept
        raise


@app.on_partitions_revoked.connect
async def _forget_revoked(_sender: Any, /, *args: Any, **_: Any) -> None:
    revoked = args[0] if args else ()
    if not context.is_open or context.ctx.stories is None:
        return
    topic = context.ctx.topics.story_input.name
    partitions = [tp.partition for tp in revoked if tp.topic == topic]
    if partitions:
        context.ctx.stories.forget(partitions)
