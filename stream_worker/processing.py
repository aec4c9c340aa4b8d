"""One batch of `news.raw` messages, from bytes to produced records: a plain function, free of faust.

`process_batch(ctx, messages, send=..., stopping=...)`:
- a message that is not an article is dead-lettered at once with why (`empty`, `not_json`, `invalid`);
- the articles are analysed together (`analyze_resilient`: outages wait, failing articles are retried
  alone); an article whose analysis kept failing is dead-lettered with its attempts;
- the others are produced to `news.analyzed`, keyed by article id, in the batch's order, and those with
  an embedding also to `news.stories.in`, keyed by language (the story stage's input: one partition, so one
  writer, per language). Re-keyed here rather than by an agent over `news.analyzed`: the two records are
  produced and acknowledged with the batch (in one transaction under exactly_once), there is no second
  read of every analysed article, and an article without an embedding (fast tier) is not sent at all,
  since it cannot be compared (counted as `news_story_skipped_total{reason="no_embedding"}`);
- if a stop is requested while the batch waits out an outage, its articles are re-produced to
  `news.raw` (given back) and nothing of it goes to `news.analyzed`.

It returns only after every record it sent was acknowledged (each `send` returns the ack to await),
which is what lets the agent ack, and so commit, the batch afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from common.errors import InvalidMessage
from common.schemas import AnalyzedArticle, DeadLetter, RawArticle
from stream_worker.analysis import Abandoned, Failure, analyze_resilient
from stream_worker.context import WorkerContext
from stream_worker.stories.dedup import LEAD_CHARS

__all__ = ["DLQ_ORIGINAL_MAX", "BatchOutcome", "Message", "Send", "process_batch", "story_input_copy"]

log = logging.getLogger(__name__)

DLQ_ORIGINAL_MAX = 100_000  # bytes; base64 of it stays under DeadLetter's 200,000-character limit
STAGE = "stream_worker"


class Message(Protocol):
    """What the batch needs of a consumed record (a faust `Event` is one)."""

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


# send(topic name, key, value) queues one record and returns what to await for the broker's ack.
Send = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[object]]]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    analyzed: int = 0
    dead_lettered: int = 0
    requeued: int = 0  # given back to news.raw (stop during an outage)


def _dead_letter(
    ctx: WorkerContext,
    message: Message,
    error: str,
    *,
    attempts: int = 1,
    first: datetime | None = None,
) -> tuple[bytes | None, bytes]:
    value = message.value
    if value is not None and len(value) > DLQ_ORIGINAL_MAX:
        # A dead letter holds at most 200,000 characters of original; keep the head, say so.
        error = f"message of {len(value)} bytes (kept the first {DLQ_ORIGINAL_MAX}); {error}"
        value = value[:DLQ_ORIGINAL_MAX]
    letter = DeadLetter.wrap(
        value,
        stage=STAGE,
        error=error,
        key=message.key,
        topic=ctx.topics.raw.name,
        attempts=attempts,
        first_failure=first,
    )
    # The Kafka key stays the original key's bytes: the letter's `original_key` is text, which a
    # non-UTF-8 key would not survive.
    return message.key, ctx.topics.dead_letters.encode(letter).value


def story_input_copy(article: AnalyzedArticle) -> AnalyzedArticle:
    """The article as the story stage gets it: the body cut to the lead it compares (dedup.LEAD_CHARS)."""
    content = article.content
    if content is None or len(content) <= LEAD_CHARS:
        return article
    return article.model_copy(update={"content": content[:LEAD_CHARS]})


async def process_batch(
    ctx: WorkerContext,
    messages: Sequence[Message],
    *,
    send: Send,
    stopping: Callable[[], bool] = lambda: False,
) -> BatchOutcome:
    """Analyse one batch and produce its results and dead letters; see the module docstring."""
    metrics, topics = ctx.metrics, ctx.topics
    started = time.perf_counter()
    metrics.batch_size.observe(len(messages))
    acks: list[Awaitable[object]] = []
    articles: list[tuple[RawArticle, Message]] = []
    dead = 0
    for message in messages:
        try:
            articles.append((topics.raw.decode(message.value), message))
        except InvalidMessage as exc:
            metrics.dead_lettered.labels(reason="invalid" if exc.kind == "invalid" else "not_json").inc()
            acks.append(await send(topics.dead_letters.name, *_dead_letter(ctx, message, str(exc))))
            dead += 1

    def paused(on: bool) -> None:
        metrics.backpressure.set(1 if on else 0)

    try:
        results = await analyze_resilient(
            ctx.analyzer,
            [a for a, _ in articles],
            ctx.policy,
            stopping=stopping,
            on_outage=paused,
            on_failure=lambda reason: metrics.failed.labels(reason=reason).inc(),
        )
    except Abandoned:
        # Give the batch back: re-produce its raw messages so another run analyses them.
        log.warning("stopping during an inference outage: re-queuing %d articles", len(articles))
        for _, message in articles:
            acks.append(await send(topics.raw.name, message.key, message.value or b""))
        await asyncio.gather(*acks)
        return BatchOutcome(dead_lettered=dead, requeued=len(articles))
    analyzed = 0
    for (article, message), result in zip(articles, results, strict=True):
        if isinstance(result, Failure):
            metrics.dead_lettered.labels(reason="analysis_failed").inc()
            letter = _dead_letter(ctx, message, result.error, attempts=result.attempts, first=result.first_failure)
            acks.append(await send(topics.dead_letters.name, *letter))
            dead += 1
            continue
        # The article was validated when it was decoded and the analysis when it was made: put together without a
        # second validation (`AnalyzedArticle.from_raw` re-validates every field; it was a tenth of the worker's
        # CPU with a no-op analyser).
        analyzed_article = AnalyzedArticle.model_construct(
            **{name: getattr(article, name) for name in RawArticle.model_fields},
            analysis=result,
            analyzed_at=datetime.now(UTC),
        )
        record = topics.analyzed.encode(analyzed_article)
        acks.append(await send(topics.analyzed.name, record.key, record.value))
        if ctx.stories is not None:
            if result.embedding is None:
                ctx.stories.metrics.skipped.labels(reason="no_embedding").inc()
            else:
                # Keyed by language; the body cut to the lead, all the near-duplicate check reads of it
                # (dedup.LEAD_CHARS): less to carry and, above all, less text to validate in the story stage.
                lead = story_input_copy(analyzed_article)
                fed = topics.story_input.encode(lead)
                acks.append(await send(topics.story_input.name, fed.key, fed.value))
        analyzed += 1
    # Wait for the broker's acks before the caller acks (and so commits) this batch.
    await asyncio.gather(*acks)
    metrics.processed.inc(analyzed)
    metrics.batch_latency.observe(time.perf_counter() - started)
    return BatchOutcome(analyzed=analyzed, dead_lettered=dead)
