"""The indexing loop: a batch of `news.analyzed` -> one bulk request -> commit, never the other way round.

- Idempotent: `_id` is the article id and the version is external (`analyzed_at` in microseconds), so a
  re-delivered record, a replay (`make reindex`) or an older analysis arriving late never duplicates an
  article nor replaces a newer analysis; OpenSearch answers 409 for those and that counts as done.
- Nothing lost: offsets are committed only after OpenSearch acknowledged every item of the batch (or the
  item went to the DLQ). While OpenSearch is down or overloaded (connection refused, timeout, 429, 5xx)
  the loop keeps its batch and retries it with backoff (`common.retry.until_up`) and polls nothing more:
  that is the backpressure; Kafka keeps the rest. If the process dies meanwhile, the uncommitted batch is
  read again by the next one.
- A document OpenSearch refuses for good (a 4xx other than 409/429: a mapping error, a too-long term)
  goes to the DLQ with OpenSearch's reason, and so does a record that is not an analysed article.
- Two bulks in flight (`pump(depth=2)`): while OpenSearch indexes one batch (one write thread per shard
  and request), the next is polled, decoded and sent, so both of a small node's cores index. Offsets are
  still committed per batch, in poll order, each only after its own bulk and every earlier one were
  acknowledged; what two bulks in flight may reorder (two analyses of one article) the external
  version decides, as it does for any re-delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from common.errors import InvalidMessage
from common.kafka import send_dead_letter
from common.retry import until_up
from common.schemas import STORED, AnalyzedArticle, DeadLetter
from common.search_index import document, ensure_index, index_name, version_of
from common.settings import OpenSearchSettings
from common.topics import Topics
from indexer.metrics import IndexerMetrics

__all__ = ["STAGE", "Indexer", "OpenSearchUnavailable", "call_opensearch"]

log = logging.getLogger(__name__)

STAGE = "indexer"  # DeadLetter.stage

# Statuses that say "not now" rather than "never": overloaded (429) or failing (5xx).
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class OpenSearchUnavailable(Exception):
    """OpenSearch did not take the request (unreachable, timed out, overloaded); retried, never skipped."""


@dataclass(frozen=True, slots=True)
class _Item:
    record: ConsumerRecord[bytes, bytes]
    article: AnalyzedArticle


@dataclass(slots=True)
class _Batch:
    """One poll's records: the articles to index, and where each partition starts (to read it again) and
    ends (the offset to commit once the batch is acknowledged)."""

    records: int = 0
    items: list[_Item] = field(default_factory=list)
    invalid: list[tuple[ConsumerRecord[bytes, bytes], str]] = field(default_factory=list)
    first: dict[TopicPartition, int] = field(default_factory=dict)
    commit: dict[TopicPartition, int] = field(default_factory=dict)


def _reason(status: int, error: Any) -> str:
    if isinstance(error, Mapping):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, Mapping):
            text += f" (caused by {cause.get('type', 'error')}: {cause.get('reason', '')})"
    else:
        text = str(error)
    return f"OpenSearch refused the document ({status}) {text}"[:2_000]


async def call_opensearch(metrics: IndexerMetrics, what: str, request: Awaitable[Any]) -> Any:
    """Await `request`, mapping "OpenSearch is not taking requests" to `OpenSearchUnavailable`."""
    try:
        answer = await request
    except OpenSearchConnectionError as exc:  # refused, reset, timed out
        metrics.opensearch_up.set(0)
        metrics.bulk_errors.labels(kind="unreachable").inc()
        raise OpenSearchUnavailable(f"{what}: {exc}") from exc
    except TransportError as exc:
        if isinstance(exc.status_code, int) and exc.status_code in _TRANSIENT:
            metrics.opensearch_up.set(1)
            metrics.bulk_errors.labels(kind=str(exc.status_code)).inc()
            raise OpenSearchUnavailable(f"{what}: {exc.status_code} {exc.error}") from exc
        raise
    metrics.opensearch_up.set(1)
    return answer


class Indexer:
    """Reads a batch, bulk-indexes it, dead-letters what OpenSearch refuses, then commits."""

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
    ) -> None:
        self._consumer = consumer
        self._dlq = dlq
        self._client = client
        self._topics = topics
        # `news.analyzed` is written by the suite's own worker, which validated and normalised the text: decode
        # it as stored data (types, limits and the derived id are still checked; the text pass, which was the
        # indexer's largest Python cost, is skipped).
        self._analyzed = dataclasses.replace(topics.analyzed, context=STORED)
        self._opensearch = opensearch
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_max = retry_max_seconds
        self.running = False
        self.index_ready = False

    # -- OpenSearch ---------------------------------------------------------------------------------

    async def _call(self, what: str, request: Any) -> Any:
        return await call_opensearch(self._metrics, what, request)

    async def prepare_index(self) -> None:
        """Write the index template and this month's index, waiting out an OpenSearch that is not up yet."""
        async for attempt in until_up(
            "preparing the search index", on=(OpenSearchUnavailable,), most=self._retry_max, logger=log
        ):
            with attempt:
                await self._call("index template", ensure_index(self._client, self._opensearch))
        self.index_ready = True

    async def _bulk(self, items: Sequence[_Item]) -> tuple[list[_Item], list[tuple[_Item, str]]]:
        """One bulk request: (items to retry, items refused for good with the reason)."""
        lines: list[bytes] = []
        for item in items:
            article = item.article
            action = {
                "index": {
                    "_index": index_name(self._opensearch.index_prefix, article.published_at),
                    "_id": article.id,
                    "version": version_of(article),
                    "version_type": "external",
                }
            }
            lines += (orjson.dumps(action), orjson.dumps(document(article)))
        body = b"\n".join(lines) + b"\n"  # NDJSON, serialised once here (orjson) rather than by the client
        started = time.perf_counter()
        try:
            answer = await self._call("bulk", self._client.bulk(body=body))
        except TransportError as exc:
            # The whole request refused (413 too large, 400): find the documents at fault by halving.
            if len(items) == 1:
                return [], [(items[0], _reason(int(exc.status_code), exc.info or exc.error))]
            half = len(items) // 2
            retry_a, refused_a = await self._bulk(items[:half])
            retry_b, refused_b = await self._bulk(items[half:])
            return retry_a + retry_b, refused_a + refused_b
        self._metrics.bulk_duration.observe(time.perf_counter() - started)
        retry: list[_Item] = []
        refused: list[tuple[_Item, str]] = []
        for item, result in zip(items, answer["items"], strict=True):
            outcome = result.get("index", {})
            status = int(outcome.get("status", 500))
            if status < 300:
                self._metrics.documents.labels(result="indexed").inc()
            elif status == 409:  # an equal or newer analysis is indexed already: done
                self._metrics.documents.labels(result="stale").inc()
            elif status in _TRANSIENT:
                retry.append(item)
            else:
                refused.append((item, _reason(status, outcome.get("error"))))
        if retry:
            self._metrics.bulk_errors.labels(kind="item").inc(len(retry))
        return retry, refused

    async def index(self, items: Sequence[_Item]) -> list[tuple[_Item, str]]:
        """Index `items` until each is acknowledged or refused for good; the refused ones with their reason."""
        pending = list(items)
        refused: list[tuple[_Item, str]] = []
        async for attempt in until_up(
            "bulk indexing into OpenSearch", on=(OpenSearchUnavailable,), most=self._retry_max, logger=log
        ):
            with attempt:
                if pending:
                    retry, lost = await self._bulk(pending)
                    refused += lost
                    pending = retry
                if pending:
                    raise OpenSearchUnavailable(f"{len(pending)} of the bulk's items were not taken (429/5xx)")
        return refused

    # -- Kafka --------------------------------------------------------------------------------------

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str, kind: str) -> None:
        self._metrics.dead_lettered.labels(reason=kind).inc()
        letter = DeadLetter.wrap(record.value, stage=STAGE, error=reason, key=record.key, topic=record.topic)
        await send_dead_letter(self._dlq, self._topics.dead_letters, letter)

    async def _commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced while the batch waited (a long outage): whoever owns the partitions now
            # reads the batch again from the last commit; indexing it twice is harmless (external versions).
            log.warning("offsets not committed (%s); the batch will be read again", exc)
            return
        self._metrics.last_commit.set(time.time())

    async def run_once(self) -> int:
        """Poll one batch, index it, commit; the number of records handled."""
        batches = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._batch_size)
        records = [record for messages in batches.values() for record in messages]
        if not records:
            return 0
        try:
            items: list[_Item] = []
            for record in records:
                try:
                    items.append(_Item(record, self._analyzed.decode(record.value)))
                except InvalidMessage as exc:
                    self._metrics.documents.labels(result="failed").inc()
                    await self._dead_letter(record, f"not an analysed article ({exc.kind}): {exc}", "invalid")
            for item, reason in await self.index(items):
                self._metrics.documents.labels(result="failed").inc()
                log.warning("article %s refused by OpenSearch: %s", item.article.id, reason)
                await self._dead_letter(item.record, reason, "refused")
            await self._commit()
        except BaseException:
            # Nothing of this batch is committed: read it again from its first record (after a Kafka error,
            # or on the way out), so that no record is skipped by the next poll.
            for tp, messages in batches.items():
                if messages:
                    self._consumer.seek(tp, messages[0].offset)
            raise
        return len(records)

    async def _poll(self) -> _Batch | None:
        """One poll, decoded; None when nothing came."""
        polled = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._batch_size)
        batch = _Batch()
        for tp, messages in polled.items():
            if not messages:
                continue
            batch.first[tp], batch.commit[tp] = messages[0].offset, messages[-1].offset + 1
            for record in messages:
                batch.records += 1
                try:
                    batch.items.append(_Item(record, self._analyzed.decode(record.value)))
                except InvalidMessage as exc:
                    batch.invalid.append((record, f"not an analysed article ({exc.kind}): {exc}"))
        return batch if batch.records else None

    async def _settle(self, batch: _Batch) -> None:
        """Index one batch until acknowledged, dead-lettering what cannot be indexed (not yet committed)."""
        for record, reason in batch.invalid:
            self._metrics.documents.labels(result="failed").inc()
            await self._dead_letter(record, reason, "invalid")
        for item, reason in await self.index(batch.items):
            self._metrics.documents.labels(result="failed").inc()
            log.warning("article %s refused by OpenSearch: %s", item.article.id, reason)
            await self._dead_letter(item.record, reason, "refused")

    async def pump(self, *, depth: int = 2, done: Callable[[], Awaitable[bool]] | None = None) -> int:
        """Poll, index and commit with up to `depth` batches in flight, until `done()` (None: for ever);
        the number of records handled. Batches are committed in poll order, each after its acknowledgement
        and its predecessors'; on any error (or cancellation) the unfinished bulks are cancelled and every
        partition is rewound to its first uncommitted record, so nothing is skipped."""
        in_flight: deque[tuple[_Batch, asyncio.Task[None]]] = deque()
        handled = 0
        try:
            while True:
                finished = done is not None and await done()
                while not finished and len(in_flight) < depth:
                    batch = await self._poll()
                    if batch is None:
                        break
                    in_flight.append((batch, asyncio.create_task(self._settle(batch))))
                if not in_flight:
                    if finished:
                        return handled
                    continue
                batch, task = in_flight[0]
                await task
                in_flight.popleft()
                await self._commit(batch.commit)
                handled += batch.records
        except BaseException:
            rewind: dict[TopicPartition, int] = {}
            for batch, task in in_flight:
                task.cancel()
                for tp, offset in batch.first.items():
                    rewind[tp] = min(offset, rewind.get(tp, offset))
            for _, task in in_flight:
                with contextlib.suppress(BaseException):
                    await task
            for tp, offset in rewind.items():
                with contextlib.suppress(IllegalStateError):  # no longer assigned: its new owner reads it
                    self._consumer.seek(tp, offset)
            raise

    async def run(self, *, depth: int = 2) -> None:
        """Prepare the index, then index for ever; a Kafka error is waited out (the batches are read again)."""
        self.running = True
        try:
            await self.prepare_index()
            while True:
                async for attempt in until_up("reading news.analyzed", on=(KafkaError,), initial=0.5, logger=log):
                    with attempt:
                        await self.pump(depth=depth)
        finally:
            self.running = False

    async def measure_lag(self) -> dict[int, int]:
        """Per assigned partition: records after the group's committed offset (what is not yet indexed)."""
        partitions: set[TopicPartition] = set(self._consumer.assignment())
        if not partitions:
            return {}
        ends = await self._consumer.end_offsets(list(partitions))
        starts = await self._consumer.beginning_offsets(list(partitions))
        lag: dict[int, int] = {}
        for tp in partitions:
            committed = await self._consumer.committed(tp)
            done = committed if committed is not None else starts.get(tp, 0)
            lag[tp.partition] = max(0, ends.get(tp, 0) - done)
            self._metrics.lag.labels(partition=str(tp.partition)).set(lag[tp.partition])
        return lag

    async def watch_lag(self, interval: float) -> None:
        """Measure the lag every `interval` seconds, also while the loop waits for OpenSearch."""
        while True:
            try:
                await self.measure_lag()
            except (KafkaError, OSError) as exc:
                log.warning("could not measure the indexer's lag: %s", exc)
            await asyncio.sleep(interval)

    async def opensearch_answers(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.ping(), timeout=2.0))
        except (TransportError, OSError, TimeoutError):
            return False
