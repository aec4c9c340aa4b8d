"""Pure producer logic: validate items, publish the valid ones keyed by id, dead-letter the rest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
from pydantic import ValidationError

from common.metrics import ProducerMetrics
from common.schemas import DeadLetter, RawArticle

__all__ = ["ItemResult", "Publisher", "Sink", "describe_validation_error"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where articles go: Kafka in production (see `producer.main`), anything awaitable in tests."""

    async def send(self, article: RawArticle) -> asyncio.Future[Any]: ...

    async def dead_letter(self, letter: DeadLetter) -> None: ...


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


class Publisher:
    """Validates and publishes; waits for every broker ack before reporting an item accepted."""

    def __init__(self, sink: Sink, metrics: ProducerMetrics, *, source: str) -> None:
        self._sink = sink
        self._metrics = metrics
        self._source = source

    async def publish(self, items: Iterable[Mapping[str, Any]]) -> list[ItemResult]:
        results: list[ItemResult] = []
        pending: list[tuple[int, RawArticle, asyncio.Future[Any]]] = []
        for index, item in enumerate(items):
            self._metrics.fetched.labels(source=self._source).inc()
            try:
                article = RawArticle.model_validate(item)
            except ValidationError as exc:
                reason = describe_validation_error(exc)
                results.append(ItemResult(index, "rejected", reason=reason))
                self._metrics.invalid.inc()
                await self._sink.dead_letter(
                    DeadLetter.wrap(orjson.dumps(item, default=str), stage=f"producer:{self._source}", error=reason)
                )
                continue
            pending.append((index, article, await self._sink.send(article)))
        for index, article, future in pending:
            await future  # raises if the broker refused it: the caller sees the failure, nothing is reported sent
            self._metrics.sent.inc()
            results.append(ItemResult(index, "accepted", id=article.id))
        results.sort(key=lambda r: r.index)
        return results
