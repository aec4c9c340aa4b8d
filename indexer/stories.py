"""Story links: `news.stories` -> `story_id` on the indexed article, so `GET /search?story=` finds a story's articles.

The story stage (stream_worker/story_stage.py) produces one `StoryUpdate` per assigned article to `news.stories`,
keyed by story id. This loop, a second consumer in the indexer with its own group (`INDEXER__GROUP_ID` +
`-stories`), turns each batch into one bulk of partial updates (`{"doc": {"story_id": ...}}` by article id) and
commits only after OpenSearch acknowledged them, like the article loop.

- The article may not be indexed yet (the indexer reads `news.analyzed` on its own, and may lag or be held by an
  outage): a link whose article is missing is retried with backoff, holding the batch (backpressure), for up to
  `INDEXER__STORY_WAIT_SECONDS`; after that it is dead-lettered with the reason (an article OpenSearch refused is
  dead-lettered too, so its link can never land). Nothing is skipped silently.
- Idempotent: setting the same story id twice changes nothing. The update bumps the document's version by one
  (OpenSearch's rule for updates of externally versioned documents), so a re-delivered copy of the same analysis
  is still refused as stale and keeps the link; a *newer* analysis replaces the whole document without it until
  the story stage links the re-analysed article again (`make reindex` replays the links after the articles).
- The monthly index of an article is not in the update (no `published_at`): one `ids` search over the alias
  finds each article's index, then the bulk names it (an update cannot go through a multi-index alias).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import NotFoundError

from common.errors import InvalidMessage
from common.kafka import send_dead_letter
from common.retry import until_up
from common.schemas import DeadLetter
from common.search_index import alias_name
from common.settings import OpenSearchSettings
from common.topics import Topics
from indexer.bulk import STAGE, OpenSearchUnavailable, call_opensearch
from indexer.metrics import IndexerMetrics

__all__ = ["ArticlesNotIndexed", "StoryLinker"]

log = logging.getLogger(__name__)


class ArticlesNotIndexed(Exception):
    """Some links' articles are not in the index yet: wait for the article loop, then try again."""


class StoryLinker:
    """Reads a batch of story updates, sets `story_id` on each article, dead-letters what cannot land, commits."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        dlq: AIOKafkaProducer,
        client: AsyncOpenSearch,
        topics: Topics,
        opensearch: OpenSearchSettings,
        metrics: IndexerMetrics,
        *,
        batch_size: int = 500,
        poll_timeout_ms: int = 500,
        retry_max_seconds: float = 5.0,
        wait_seconds: float = 600.0,
    ) -> None:
        self._consumer = consumer
        self._dlq = dlq
        self._client = client
        self._topics = topics
        self._alias = alias_name(opensearch.index_prefix)
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_max = retry_max_seconds
        self._wait = wait_seconds
        self.running = False

    async def _locate(self, article_ids: Sequence[str]) -> dict[str, str]:
        """The monthly index of each article id that is indexed (and searchable: after a refresh)."""
        body = {"query": {"ids": {"values": list(article_ids)}}, "_source": False, "size": len(article_ids)}
        try:
            answer = await call_opensearch(
                self._metrics, "finding articles", self._client.search(index=self._alias, body=body)
            )
        except NotFoundError:  # no index yet: nothing is indexed
            return {}
        return {hit["_id"]: hit["_index"] for hit in answer["hits"]["hits"]}

    async def _update(self, links: dict[str, str], where: dict[str, str]) -> dict[str, str]:
        """One bulk of partial updates; the links refused for good, with OpenSearch's reason."""
        lines: list[bytes] = []
        ids = [article_id for article_id in links if article_id in where]
        for article_id in ids:
            action = {"update": {"_index": where[article_id], "_id": article_id, "retry_on_conflict": 5}}
            lines += (orjson.dumps(action), orjson.dumps({"doc": {"story_id": links[article_id]}}))
        if not lines:
            return {}
        answer = await call_opensearch(self._metrics, "story links", self._client.bulk(body=b"\n".join(lines) + b"\n"))
        refused: dict[str, str] = {}
        transient = 0
        for article_id, result in zip(ids, answer["items"], strict=True):
            outcome = result.get("update", {})
            status = int(outcome.get("status", 500))
            if status < 300:
                self._metrics.documents.labels(result="story_linked").inc()
            elif status in (429, 500, 502, 503, 504):
                transient += 1
            else:  # 404: deleted since it was found; 400: a mapping refusal
                error: Any = outcome.get("error")
                refused[article_id] = f"OpenSearch refused the story link ({status}): {error}"[:2_000]
        if transient:
            raise OpenSearchUnavailable(f"{transient} story links were not taken (429/5xx)")
        return refused

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str, kind: str) -> None:
        self._metrics.dead_lettered.labels(reason=kind).inc()
        letter = DeadLetter.wrap(
            record.value, stage=f"{STAGE}-stories", error=reason, key=record.key, topic=record.topic
        )
        await send_dead_letter(self._dlq, self._topics.dead_letters, letter)

    async def link(self, links: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """Set each article's story: (refused links with the reason, article ids still missing at the deadline)."""
        pending = dict(links)
        refused: dict[str, str] = {}
        deadline = time.monotonic() + self._wait
        async for attempt in until_up(
            "linking articles to stories",
            on=(OpenSearchUnavailable, ArticlesNotIndexed),
            most=self._retry_max,
            logger=log,
        ):
            with attempt:
                if pending:
                    where = await self._locate(list(pending))
                    refused |= await self._update(pending, where)
                    pending = {a: s for a, s in pending.items() if a not in where}
                if pending and time.monotonic() < deadline:
                    raise ArticlesNotIndexed(f"{len(pending)} linked articles are not in the index yet")
        return refused, list(pending)

    async def run_once(self) -> int:
        """Poll one batch of story updates, link them, commit; the number of records handled."""
        batches = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._batch_size)
        records = [record for messages in batches.values() for record in messages]
        if not records:
            return 0
        try:
            links: dict[str, str] = {}
            source: dict[str, ConsumerRecord[bytes, bytes]] = {}
            for record in records:
                try:
                    update = self._topics.stories.decode(record.value)
                except InvalidMessage as exc:
                    await self._dead_letter(record, f"not a story update ({exc.kind}): {exc}", "invalid")
                    continue
                links[update.article_id] = update.story.id  # the later update of one article wins
                source[update.article_id] = record
            refused, missing = await self.link(links)
            for article_id, reason in refused.items():
                await self._dead_letter(source[article_id], reason, "refused")
            for article_id in missing:
                reason = f"article {article_id} was not in the search index after {self._wait:.0f} s"
                await self._dead_letter(source[article_id], reason, "story_article_missing")
            try:
                await self._consumer.commit()
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning("story-link offsets not committed (%s); the batch will be read again", exc)
        except BaseException:
            for tp, messages in batches.items():
                if messages:
                    self._consumer.seek(tp, messages[0].offset)
            raise
        return len(records)

    async def run(self) -> None:
        """Link for ever; a Kafka error is waited out (the batch is read again)."""
        self.running = True
        try:
            while True:
                async for attempt in until_up("reading news.stories", on=(KafkaError,), initial=0.5, logger=log):
                    with attempt:
                        await self.run_once()
        finally:
            self.running = False
