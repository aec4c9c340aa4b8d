"""Pure producer logic: validate items, skip what was already produced, publish the rest keyed by id.

Nothing here imports FastAPI, aiokafka or redis: the sink (Kafka) and the dedup store (Redis) are
protocols, so the logic is tested without a broker and the edges stay thin.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
from pydantic import ValidationError

from common.errors import BrokerError
from common.metrics import ProducerMetrics
from common.schemas import DeadLetter, RawArticle

__all__ = ["Claim", "Dedup", "ItemResult", "Publisher", "Sink", "describe_validation_error"]

log = logging.getLogger(__name__)

# Records are stamped by the producing client's clock; the search for a dead process's records starts
# this much before its claim, in case its send was stamped a little earlier than the claim (clock steps).
_SCAN_MARGIN_MS = 5_000


class Sink(Protocol):
    """Where articles go: Kafka in production (see `producer.kafka_sink`), anything awaitable in tests."""

    async def send(self, article: RawArticle) -> asyncio.Future[Any]: ...

    async def dead_letter(self, letter: DeadLetter) -> None: ...

    async def find_produced(self, ids: Sequence[str], since_ms: int) -> set[str]:
        """The ids among `ids` that have a record in the topic written at or after `since_ms`."""
        ...


@dataclass(frozen=True)
class Claim:
    state: Literal["new", "dup", "busy", "recover"]
    since_ms: int = 0


class Dedup(Protocol):
    """Claim ids before sending, confirm after the ack, release when a send failed (see `producer.dedup`)."""

    async def claim(self, ids: Sequence[str]) -> list[Claim]: ...

    async def confirm(self, ids: Sequence[str]) -> None: ...

    async def release(self, ids: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class ItemResult:
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = None
    reason: str | None = None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and why, for API answers and dead letters."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "item"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _original(item: Mapping[str, Any]) -> bytes:
    """The item as JSON for its dead letter. orjson refuses text that is not Unicode (unpaired surrogates, which
    a source's JSON can carry); the standard encoder then writes them as `\\udXXX` escapes, so the letter
    still shows what came."""
    try:
        return orjson.dumps(item, default=str)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(item, default=str, ensure_ascii=True).encode("ascii")


class Publisher:
    """Validates, deduplicates and publishes; an item is reported accepted only after the broker's ack.

    `busy_wait` is how long to wait for an id another task is publishing right now before answering
    "duplicate (in flight)"; a source does not need to wait, its next poll sees the item again.
    """

    def __init__(
        self,
        sink: Sink,
        metrics: ProducerMetrics,
        *,
        source: str,
        dedup: Dedup | None = None,
        chunk: int = 200,
        busy_wait: float = 0.0,
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._source = source
        self._dedup = dedup
        self._chunk = max(1, chunk)
        self._busy_wait = busy_wait

    async def publish(self, items: Iterable[Mapping[str, Any] | RawArticle]) -> list[ItemResult]:
        """One result per item, in order; an item is a dict to validate or an already validated `RawArticle`.
        Raises `BrokerError` / `StoreError` when Kafka or Redis fail; then nothing unacknowledged is marked
        produced, so a retry of the same items is safe."""
        results: dict[int, ItemResult] = {}
        valid: list[tuple[int, RawArticle]] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            self._metrics.fetched.labels(source=self._source).inc()
            try:
                article = item if isinstance(item, RawArticle) else RawArticle.model_validate(item)
            except ValidationError as exc:
                reason = describe_validation_error(exc)
                results[index] = ItemResult(index, "rejected", reason=reason)
                self._metrics.invalid.inc()
                await self._sink.dead_letter(
                    DeadLetter.wrap(_original(dict(item)), stage=f"producer:{self._source}", error=reason)
                )
                continue
            if article.id in seen:
                results[index] = self._duplicate(index, article.id, "repeated in this batch")
                continue
            seen.add(article.id)
            valid.append((index, article))
        for start in range(0, len(valid), self._chunk):
            for result in await self._publish_chunk(valid[start : start + self._chunk]):
                results[result.index] = result
        return [results[i] for i in sorted(results)]

    def _duplicate(self, index: int, article_id: str, reason: str) -> ItemResult:
        self._metrics.duplicates.inc()
        return ItemResult(index, "duplicate", id=article_id, reason=reason)

    async def _publish_chunk(self, chunk: list[tuple[int, RawArticle]]) -> list[ItemResult]:
        if self._dedup is None:
            return await self._send(chunk)
        results: list[ItemResult] = []
        to_send, recover = await self._claim(chunk, results)
        if recover:
            since = min(claim.since_ms for _, claim in recover) - _SCAN_MARGIN_MS
            found = await self._sink.find_produced([a.id for (_, a), _ in recover], since)
            if found:
                log.info("%s: %d article(s) of an interrupted publish were already in Kafka", self._source, len(found))
                await self._dedup.confirm(sorted(found))
            for (index, article), _ in recover:
                if article.id in found:
                    results.append(self._duplicate(index, article.id, "already produced (found in Kafka)"))
                else:
                    to_send.append((index, article))
        results.extend(await self._send(to_send))
        return results

    async def _claim(
        self, chunk: list[tuple[int, RawArticle]], results: list[ItemResult]
    ) -> tuple[list[tuple[int, RawArticle]], list[tuple[tuple[int, RawArticle], Claim]]]:
        assert self._dedup is not None  # noqa: S101 - only called with a dedup store
        to_send: list[tuple[int, RawArticle]] = []
        recover: list[tuple[tuple[int, RawArticle], Claim]] = []
        pending = chunk
        deadline = asyncio.get_running_loop().time() + self._busy_wait
        while pending:
            claims = await self._dedup.claim([a.id for _, a in pending])
            busy: list[tuple[int, RawArticle]] = []
            for entry, claim in zip(pending, claims, strict=True):
                if claim.state == "new":
                    to_send.append(entry)
                elif claim.state == "recover":
                    recover.append((entry, claim))
                elif claim.state == "busy":
                    busy.append(entry)
                else:
                    results.append(self._duplicate(entry[0], entry[1].id, "already produced"))
            pending = busy
            if pending and asyncio.get_running_loop().time() >= deadline:
                for index, article in pending:
                    results.append(self._duplicate(index, article.id, "being produced by another request (in flight)"))
                break
            if pending:
                await asyncio.sleep(0.1)
        return to_send, recover

    async def _send(self, chunk: list[tuple[int, RawArticle]]) -> list[ItemResult]:
        results: list[ItemResult] = []
        futures: list[tuple[int, RawArticle, asyncio.Future[Any]]] = []
        failed: list[str] = []
        error: BaseException | None = None
        for index, article in chunk:
            if error is not None:
                failed.append(article.id)
                continue
            try:
                futures.append((index, article, await self._sink.send(article)))
            except Exception as exc:  # the client refused it before buffering (closed, too large...)
                error = exc
                failed.append(article.id)
        acked: list[str] = []
        for index, article, future in futures:
            try:
                await future
            except Exception as exc:
                error = error or exc
                failed.append(article.id)
                continue
            acked.append(article.id)
            results.append(ItemResult(index, "accepted", id=article.id))
        # Cancellation (shutdown, a kill) skips both: the claims stay and are resolved against Kafka later.
        if self._dedup is not None:
            await self._dedup.release(failed)
            await self._dedup.confirm(acked)
        self._metrics.sent.inc(len(acked))
        if error is not None:
            raise BrokerError(
                f"Kafka did not take {len(failed)} of {len(chunk)} article(s) ({type(error).__name__}: {error}); "
                f"{len(acked)} were produced; a retry of the same items is safe"
            ) from error
        return results
