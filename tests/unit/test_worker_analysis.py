"""The worker's analysis policy: outages wait (backpressure), bad articles are retried then given up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from common.errors import ProviderUnavailable
from common.schemas import Analysis, RawArticle
from stream_worker.analysis import Abandoned, Failure, RetryPolicy, analyze_resilient

pytestmark = pytest.mark.unit

FAST = RetryPolicy(max_attempts=3, backoff=0.001, outage_backoff_max=0.01)


def article(title: str) -> RawArticle:
    return RawArticle(url=f"https://example.com/{title}", title=title, published_at=datetime(2024, 1, 1, tzinfo=UTC))


class Scripted:
    """An analyzer whose behaviour the test sets: `down` raises an outage, titles in `bad` break a batch."""

    def __init__(self, *, down: int = 0, bad: frozenset[str] = frozenset()) -> None:
        self.down = down
        self.bad = bad
        self.calls: list[list[str]] = []

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        self.calls.append([a.title for a in articles])
        if self.down:
            self.down -= 1
            raise ProviderUnavailable("engine down")
        if any(a.title in self.bad for a in articles):
            raise ValueError("model crashed on this text")
        return [Analysis(sentiment="neutral", sentiment_score=0.0, keywords=[a.title]) for a in articles]

    async def aclose(self) -> None:
        return None


async def test_healthy_batch_is_one_call() -> None:
    engine = Scripted()
    results = await analyze_resilient(engine, [article("a"), article("b")], FAST)
    assert [r.keywords for r in results if isinstance(r, Analysis)] == [["a"], ["b"]]
    assert engine.calls == [["a", "b"]]


async def test_outage_waits_and_never_fails_an_article() -> None:
    engine = Scripted(down=4)
    paused: list[bool] = []
    results = await analyze_resilient(engine, [article("a"), article("b")], FAST, on_outage=paused.append)
    # every article answered, in order (an `all()` over the results would pass on an empty list)
    assert [r.keywords if isinstance(r, Analysis) else r for r in results] == [["a"], ["b"]]
    assert len(engine.calls) == 5 and paused == [True, False]


async def test_bad_article_is_retried_alone_then_given_up_with_attempts() -> None:
    engine = Scripted(bad=frozenset({"b"}))
    failures: list[str] = []
    results = await analyze_resilient(
        engine, [article("a"), article("b"), article("c")], FAST, on_failure=failures.append
    )
    assert isinstance(results[0], Analysis) and isinstance(results[2], Analysis)
    failed = results[1]
    assert isinstance(failed, Failure)
    assert failed.attempts == 3 and "model crashed" in failed.error
    assert engine.calls.count(["b"]) == 3
    assert failures == ["ValueError"] * 4  # the batch, then three tries alone


async def test_stop_during_outage_abandons_the_batch() -> None:
    engine = Scripted(down=10**6)
    stopping = asyncio.Event()
    slow = RetryPolicy(outage_backoff_max=5.0)
    task = asyncio.create_task(analyze_resilient(engine, [article("a")], slow, stopping=stopping.is_set))
    await asyncio.sleep(0.05)
    stopping.set()
    with pytest.raises(Abandoned):
        await asyncio.wait_for(task, 1.0)


async def test_empty_batch_calls_nothing() -> None:
    engine = Scripted()
    assert await analyze_resilient(engine, [], FAST) == []
    assert engine.calls == []
