"""The consumer's Kafka ingest: `news.analyzed` and `news.stories` -> Redis, committing offsets only after
the write.

At least once from Kafka, exactly once in the store (article writes are idempotent by article id, story
writes by story version: `common.story_store`); a record that is not what its topic carries goes to the
dead-letter topic with the reason and is never retried. Both topics are read by one consumer (one group),
so one commit covers a batch of both, made only once all of it is stored.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from common.errors import InvalidMessage, StoreError
from common.kafka import send_dead_letter
from common.metrics import ConsumerMetrics
from common.retry import until_up
from common.schemas import AnalyzedArticle, DeadLetter
from common.store import ArticleStore
from common.stories import StoryUpdate
from common.story_store import StoryStore
from common.topics import Topics

__all__ = ["AfterBatch", "Ingestor"]

AfterBatch = Callable[[list[AnalyzedArticle], list[StoryUpdate]], Awaitable[None]]
"""Called with a batch's valid articles and story updates once they are stored, before the commit (timelines
and alerts, `consumer.alerts`); it must be idempotent (a batch can be delivered again) and raise only
`StoreError` for what is worth retrying."""

log = logging.getLogger(__name__)


class Ingestor:
    """Reads a batch, stores each article (idempotent), dead-letters what is not an article, then commits."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        dlq: AIOKafkaProducer,
        topics: Topics,
        store: ArticleStore,
        metrics: ConsumerMetrics,
        *,
        stories: StoryStore | None = None,
        max_records: int = 500,
        after_batch: AfterBatch | None = None,
    ) -> None:
        self._consumer = consumer
        self._dlq = dlq
        self._topics = topics
        self._store = store
        self._metrics = metrics
        self._stories = stories
        self._max_records = max_records
        self._after_batch = after_batch
        self.running = False

    async def _store_with_retry(self, articles: list[AnalyzedArticle]) -> None:
        # One pipelined round trip for the batch. Redis is down: hold the batch (no commit) and try again (each
        # write is idempotent, so what was written before the failure is a duplicate the second time).
        async for attempt in until_up("storing articles in Redis", on=(StoreError,), most=5.0, logger=log):
            with attempt:
                results = await self._store.put_many(articles)
        counts = Counter(result.name.lower() for result in results)
        for name, n in counts.items():
            self._metrics.stored.labels(result=name).inc(n)

    async def _store_story_with_retry(self, stories: StoryStore, update: StoryUpdate) -> None:
        async for attempt in until_up("storing a story in Redis", on=(StoreError,), most=5.0, logger=log):
            with attempt:
                await stories.put(update)

    async def _dead_letter(self, value: bytes | None, key: bytes | None, topic: str, error: str) -> None:
        self._metrics.dead_lettered.inc()
        await send_dead_letter(
            self._dlq,
            self._topics.dead_letters,
            DeadLetter.wrap(value, stage="consumer", error=error, key=key, topic=topic),
        )

    async def run_once(self, timeout_ms: int = 500) -> int:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self._max_records)
        count = consumed = 0
        articles: list[AnalyzedArticle] = []
        updates: list[StoryUpdate] = []
        for tp, messages in batches.items():
            stories = self._stories if tp.topic == self._topics.stories.name else None
            for msg in messages:
                count += 1
                if stories is not None:
                    try:
                        update = self._topics.stories.decode(msg.value)
                    except InvalidMessage as exc:
                        await self._dead_letter(msg.value, msg.key, tp.topic, str(exc))
                        continue
                    await self._store_story_with_retry(stories, update)
                    updates.append(update)
                    continue
                consumed += 1
                try:
                    article = self._topics.analyzed.decode(msg.value)
                except InvalidMessage as exc:
                    await self._dead_letter(msg.value, msg.key, tp.topic, str(exc))
                    continue
                self._metrics.analysis_duration.observe(article.analysis.latency_ms / 1000)
                articles.append(article)
        self._metrics.consumed.inc(consumed)
        if articles:
            await self._store_with_retry(articles)
            self._metrics.analyzed.inc(len(articles))
        if self._after_batch is not None and (articles or updates):
            async for attempt in until_up("counting and alerting", on=(StoreError,), most=5.0, logger=log):
                with attempt:
                    await self._after_batch(articles, updates)
        if count:
            await self._consumer.commit()
        return count

    async def run(self) -> None:
        """Ingest for ever; a Kafka error is waited out (the uncommitted batch is read again)."""
        self.running = True
        try:
            while True:
                async for attempt in until_up("reading Kafka", on=(KafkaError,), initial=0.5, logger=log):
                    with attempt:
                        await self.run_once()
        finally:
            self.running = False
