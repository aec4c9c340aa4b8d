"""Publisher and Poller logic with in-memory sink and dedup (the Redis/Kafka versions are integration tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from common.errors import BrokerError, SourceDisabled, SourceError, SourceRateLimited
from common.metrics import ProducerMetrics
from common.schemas import DeadLetter, RawArticle
from producer.poller import Poller
from producer.service import Claim, Publisher
from producer.sources import FetchResult, Source

pytestmark = pytest.mark.unit


class MemorySink:
    def __init__(self, fail_ids: set[str] | None = None) -> None:
        self.sent: list[RawArticle] = []
        self.dead: list[DeadLetter] = []
        self.fail_ids = fail_ids or set()
        self.produced_before: set[str] = set()

    async def send(self, article: RawArticle) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if article.url in self.fail_ids:
            future.set_exception(RuntimeError("broker said no"))
        else:
            self.sent.append(article)
            future.set_result(None)
        return future

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.dead.append(letter)

    async def find_produced(self, ids: Sequence[str], since_ms: int) -> set[str]:
        return set(ids) & self.produced_before


class MemoryDedup:
    """Claims without leases: enough to test how the publisher uses the protocol."""

    def __init__(self, states: dict[str, str] | None = None) -> None:
        self.states = states or {}
        self.confirmed: list[str] = []
        self.released: list[str] = []

    async def claim(self, ids: Sequence[str]) -> list[Claim]:
        out = []
        for i in ids:
            state = self.states.get(i)
            if state is None:
                self.states[i] = "pending"
                out.append(Claim("new"))
            elif state == "done":
                out.append(Claim("dup"))
            elif state == "stale":
                self.states[i] = "pending"
                out.append(Claim("recover", since_ms=1))
            else:
                out.append(Claim("busy"))
        return out

    async def confirm(self, ids: Sequence[str]) -> None:
        self.confirmed.extend(ids)
        self.states.update(dict.fromkeys(ids, "done"))

    async def release(self, ids: Sequence[str]) -> None:
        self.released.extend(ids)
        for i in ids:
            self.states.pop(i, None)


def _item(n: int, **extra: Any) -> dict[str, Any]:
    return {"url": f"https://p.example.org/{n}", "title": f"T{n}", "published_at": "2024-01-01T00:00:00Z", **extra}


def _id(n: int) -> str:
    return RawArticle.model_validate(_item(n)).id


def _metrics() -> ProducerMetrics:
    return ProducerMetrics.create(CollectorRegistry())


async def test_publish_answers_per_item_and_dedups() -> None:
    sink, dedup = MemorySink(), MemoryDedup({_id(2): "done", _id(3): "stale", _id(4): "busy"})
    sink.produced_before = {_id(3)}
    publisher = Publisher(sink, _metrics(), source="t", dedup=dedup, chunk=2)
    results = await publisher.publish(
        [_item(1), _item(2), _item(3), _item(4), {"url": "nope", "title": ""}, _item(1, title="again"), _item(5)]
    )
    assert [r.status for r in results] == [
        "accepted",
        "duplicate",
        "duplicate",
        "duplicate",
        "rejected",
        "duplicate",
        "accepted",
    ]
    assert "found in Kafka" in (results[2].reason or "") and "in flight" in (results[3].reason or "")
    assert "repeated" in (results[5].reason or "") and "url" in (results[4].reason or "")
    assert [a.url for a in sink.sent] == ["https://p.example.org/1", "https://p.example.org/5"]
    assert set(dedup.confirmed) == {_id(1), _id(3), _id(5)}
    assert sink.dead[0].stage == "producer:t"


async def test_failed_sends_release_their_claims_and_raise() -> None:
    sink, dedup = MemorySink(fail_ids={"https://p.example.org/2"}), MemoryDedup()
    with pytest.raises(BrokerError, match="1 of 3"):
        await Publisher(sink, _metrics(), source="t", dedup=dedup).publish([_item(1), _item(2), _item(3)])
    assert dedup.released == [_id(2)] and set(dedup.confirmed) == {_id(1), _id(3)}
    # a retry of the same items sends only the one that failed
    sink.fail_ids.clear()
    results = await Publisher(sink, _metrics(), source="t", dedup=dedup).publish([_item(1), _item(2), _item(3)])
    assert [r.status for r in results] == ["duplicate", "accepted", "duplicate"]


class StubSource(Source):
    kind = "stub"

    def __init__(self, name: str, outcome: Any, interval: float = 10.0) -> None:
        super().__init__(name, interval)
        self.outcome = outcome
        self.calls = 0

    async def fetch(self, client: httpx.AsyncClient) -> FetchResult:
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return FetchResult(items=list(self.outcome))

    def describe(self) -> dict[str, Any]:
        return {}


async def test_a_failing_source_does_not_stop_the_others() -> None:
    sink, metrics = MemorySink(), _metrics()
    sources: list[Source] = [
        StubSource("good", [_item(1), _item(2)]),
        StubSource("down", SourceError("HTTP 503", code="http_503", retryable=True)),
        StubSource("bug", ZeroDivisionError("oops")),
        StubSource("nokey", SourceDisabled("NewsAPI 401 apiKeyInvalid", code="apiKeyInvalid")),
        StubSource("limited", SourceRateLimited("429", retry_after=5000)),
    ]
    async with httpx.AsyncClient() as client:
        poller = Poller(sources, lambda n: Publisher(sink, metrics, source=n), client, metrics, max_backoff=600)
        reports = {r.source: r for r in await poller.poll_many()}
        assert reports["good"].sent == 2 and reports["good"].error is None
        assert reports["down"].error_code == "http_503" and reports["bug"].error_code == "internal"
        status = poller.status
        assert not status["nokey"].enabled and "apiKeyInvalid" in (status["nokey"].disabled_reason or "")
        assert status["good"].last_success and status["down"].last_error == "HTTP 503"
        assert (await poller.poll("nokey")).skipped is not None and sources[3].calls == 1  # type: ignore[attr-defined]
        # backoff: doubled per failure, capped, and a rate limit's hint wins
        assert 9 <= poller.next_delay("good") <= 11
        assert 18 <= poller.next_delay("down") <= 22
        assert poller.next_delay("limited") >= 4500
    value = metrics.fetch_errors.labels(source="down", code="http_503")._value.get()
    assert value == 1


async def test_text_that_is_not_unicode_from_a_source_is_dead_lettered_with_its_field_named() -> None:
    """A source's JSON can carry unpaired surrogates (`\\udb82`); the item is refused, never sent, and its dead
    letter still shows what came (as `\\udb82` escapes: the letter itself must be valid UTF-8)."""
    sink = MemorySink()
    publisher = Publisher(sink, _metrics(), source="t")
    bad = {**_item(1, title="bad \udb82 text"), "\udf5e": "key too"}
    results = await publisher.publish([bad, _item(2)])
    assert [r.status for r in results] == ["rejected", "accepted"]
    assert "title" in (results[0].reason or "") and "unpaired surrogate U+DB82" in (results[0].reason or "")
    letter = sink.dead[0]
    assert letter.original_encoding == "utf-8" and "\\udb82" in letter.original
    assert [a.url for a in sink.sent] == ["https://p.example.org/2"]


async def test_already_validated_articles_are_published_as_they_are() -> None:
    """The push route hands over `RawArticle`s (validated at the door): their text is not parsed as markup twice."""
    sink = MemorySink()
    article = RawArticle.model_validate(_item(1, title="5 &lt; 6 &amp;lt;b&amp;gt;"))
    results = await Publisher(sink, _metrics(), source="push").publish([article])
    assert [r.status for r in results] == ["accepted"]
    assert sink.sent == [article] and sink.sent[0].title == "5 < 6 &lt;b&gt;"
