"""Polling: each source on its own jittered interval, `fetch-now` on demand, fetches bounded by a semaphore.

A source's failure is recorded on its status and counted, never raised: one bad source never stops
the others. Failures back the source off exponentially (a rate limit's Retry-After is honoured);
a refused key or a parameter the API rejects disables the source until the configuration changes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from common.errors import NewsSuiteError, SourceDisabled, SourceError, SourceRateLimited
from common.metrics import ProducerMetrics
from producer.service import ItemResult, Publisher
from producer.sources import Source

__all__ = ["PollReport", "Poller", "SourceStatus"]

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SourceStatus:
    """What `GET /` shows for one source."""

    name: str
    kind: str
    interval_seconds: float
    enabled: bool = True
    disabled_reason: str | None = None
    polls: int = 0
    last_attempt: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    last_error_code: str | None = None
    last_error_at: str | None = None
    last_note: str | None = None
    consecutive_failures: int = 0
    next_poll_at: str | None = None
    fetched: int = 0
    sent: int = 0
    duplicates: int = 0
    invalid: int = 0
    not_modified: int = 0
    retry_after: float | None = field(default=None, repr=False)

    def tally(self, results: Iterable[ItemResult]) -> dict[str, int]:
        counts = {"fetched": 0, "sent": 0, "duplicates": 0, "invalid": 0}
        for r in results:
            counts["fetched"] += 1
            key = {"accepted": "sent", "duplicate": "duplicates", "rejected": "invalid"}[r.status]
            counts[key] += 1
        self.fetched += counts["fetched"]
        self.sent += counts["sent"]
        self.duplicates += counts["duplicates"]
        self.invalid += counts["invalid"]
        return counts

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("retry_after")
        return data


@dataclass
class PollReport:
    """The answer of one poll of one source (the items of `POST /fetch-now`)."""

    source: str
    fetched: int = 0
    sent: int = 0
    duplicates: int = 0
    invalid: int = 0
    not_modified: bool = False
    skipped: str | None = None
    error: str | None = None
    error_code: str | None = None
    note: str | None = None


class Poller:
    def __init__(
        self,
        sources: list[Source],
        publisher_for: Callable[[str], Publisher],
        client: httpx.AsyncClient,
        metrics: ProducerMetrics,
        *,
        concurrency: int = 4,
        jitter: float = 0.1,
        max_backoff: float = 3600.0,
    ) -> None:
        self.sources = {s.name: s for s in sources}
        self.status = {s.name: SourceStatus(s.name, s.kind, s.interval) for s in sources}
        self._publishers = {s.name: publisher_for(s.name) for s in sources}
        self._client = client
        self._metrics = metrics
        self._semaphore = asyncio.Semaphore(concurrency)
        self._locks = {s.name: asyncio.Lock() for s in sources}
        self._jitter = jitter
        self._max_backoff = max_backoff
        self._tasks: list[asyncio.Task[None]] = []

    # -- one poll ---------------------------------------------------------------------------------
    async def poll(self, name: str) -> PollReport:
        """Fetch one source and publish what it gave; never raises for the source's own failures."""
        source, status = self.sources[name], self.status[name]
        async with self._locks[name]:
            report = PollReport(name)
            if not status.enabled:
                report.skipped = f"disabled: {status.disabled_reason}"
                return report
            status.polls += 1
            status.last_attempt = _now()
            started = time.perf_counter()
            try:
                async with self._semaphore:
                    result = await source.fetch(self._client)
            except SourceError as exc:
                self._failed(status, report, exc)
                return report
            except Exception as exc:  # a bug or an unexpected answer: reported on the source, not raised
                log.exception("source %s failed unexpectedly", name)
                self._failed(status, report, SourceError(f"{type(exc).__name__}: {exc}", code="internal"))
                return report
            finally:
                self._metrics.fetch_duration.labels(source=name).observe(time.perf_counter() - started)
            report.not_modified = result.not_modified
            status.not_modified += int(result.not_modified)
            items = result.items
            if source.fulltext is not None and items:
                # Never fails the poll: a page that gives no text leaves its article as the source gave it.
                items = await source.fulltext.enrich(name, items, self._client, self._metrics)
            try:
                results = await self._publishers[name].publish(items)
            except NewsSuiteError as exc:  # Kafka or Redis: nothing unacknowledged was marked, the next poll retries
                self._failed(status, report, SourceError(str(exc), code="publish"))
                return report
            result.commit()
            for key, value in status.tally(results).items():
                setattr(report, key, value)
            report.note = status.last_note = result.note
            if result.error is not None:
                self._failed(status, report, result.error)
            else:
                status.last_success = _now()
                status.consecutive_failures = 0
                status.retry_after = None
            return report

    def _failed(self, status: SourceStatus, report: PollReport, exc: SourceError) -> None:
        status.consecutive_failures += 1
        status.last_error = str(exc)
        status.last_error_code = exc.code
        status.last_error_at = _now()
        status.retry_after = exc.retry_after if isinstance(exc, SourceRateLimited) else None
        report.error, report.error_code = str(exc), exc.code
        self._metrics.fetch_errors.labels(source=status.name, code=exc.code).inc()
        if isinstance(exc, SourceDisabled):
            status.enabled = False
            status.disabled_reason = str(exc)
            log.error("source %s disabled: %s", status.name, exc)
        else:
            log.warning("source %s failed (%s): %s", status.name, exc.code, exc)

    async def poll_many(self, names: Iterable[str] | None = None) -> list[PollReport]:
        """Poll the named sources (default all) concurrently; fetches share the semaphore."""
        chosen = list(self.sources) if names is None else list(names)
        return list(await asyncio.gather(*(self.poll(n) for n in chosen)))

    # -- schedule ---------------------------------------------------------------------------------
    def next_delay(self, name: str) -> float:
        """The source's interval, doubled per consecutive failure (capped), times a jitter factor."""
        status, interval = self.status[name], self.sources[name].interval
        delay: float = interval * 2.0 ** min(status.consecutive_failures, 16)
        delay = min(delay, max(self._max_backoff, interval))
        if status.retry_after:
            delay = max(delay, status.retry_after)
        # Jitter keeps sources (and replicas) from polling in lock-step; not a security use of random.
        return delay * random.uniform(1 - self._jitter, 1 + self._jitter)  # noqa: S311

    async def _loop(self, name: str) -> None:
        first = min(self.sources[name].interval, 5.0) * random.uniform(0, self._jitter)  # noqa: S311
        await asyncio.sleep(first)
        while self.status[name].enabled:
            await self.poll(name)
            if not self.status[name].enabled:
                break
            delay = self.next_delay(name)
            self.status[name].next_poll_at = datetime.fromtimestamp(time.time() + delay, UTC).isoformat(
                timespec="seconds"
            )
            await asyncio.sleep(delay)
        self.status[name].next_poll_at = None

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(n), name=f"poll:{n}") for n in self.sources]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
