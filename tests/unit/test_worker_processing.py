"""`process_batch` without faust: what each message of a batch becomes, in which topic, under which key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry

from common.errors import ProviderUnavailable
from common.schemas import Analysis, DeadLetter, RawArticle
from common.settings import KafkaSettings, TopicNames
from stream_worker.analysis import Analyzer
from stream_worker.context import WorkerContext
from stream_worker.processing import DLQ_ORIGINAL_MAX, BatchOutcome, process_batch
from stream_worker.settings import WorkerConfig, WorkerSettings

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Msg:
    key: bytes | None
    value: bytes | None


def article(title: str) -> RawArticle:
    return RawArticle(url=f"https://example.com/{title}", title=title, published_at=datetime(2024, 1, 1, tzinfo=UTC))


def msg(a: RawArticle) -> Msg:
    return Msg(a.id.encode(), a.model_dump_json().encode())


class Scripted:
    """An analyser the test scripts: titles in `bad` break any batch they are in; `down` means an outage."""

    def __init__(self, *, bad: frozenset[str] = frozenset(), down: bool = False) -> None:
        self.bad = bad
        self.down = down
        self.calls: list[list[str]] = []
        self.closed = False

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        self.calls.append([a.title for a in articles])
        if self.down:
            raise ProviderUnavailable("engine down")
        if any(a.title in self.bad for a in articles):
            raise ValueError(f"model crashed on {[a.title for a in articles if a.title in self.bad]}")
        return [Analysis(sentiment="neutral", sentiment_score=0.0, keywords=[a.title]) for a in articles]

    async def aclose(self) -> None:
        self.closed = True


class Broker:
    """The injected `send`: records what was produced; `acks` resolve when the test says (or at once)."""

    def __init__(self, *, ack_at_once: bool = True) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.acks: list[asyncio.Future[None]] = []
        self.ack_at_once = ack_at_once

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[object]:
        self.sent.append((topic, key, value))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.ack_at_once:
            ack.set_result(None)
        self.acks.append(ack)
        return ack

    def to(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        return [(k, v) for t, k, v in self.sent if t == topic]


SETTINGS = WorkerSettings(
    kafka=KafkaSettings(topics=TopicNames(prefix="unit.")),
    worker=WorkerConfig(stats_enabled=False, max_attempts=3, retry_backoff=0.001, outage_backoff_max=0.05),
)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


async def open_ctx(stack: AsyncExitStack, analyzer: Analyzer) -> WorkerContext:
    return await WorkerContext.open(stack, SETTINGS, registry=CollectorRegistry(), analyzer=analyzer, admin=False)


def counter(ctx: WorkerContext, name: str, **labels: str) -> float:
    value = ctx.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_articles_are_produced_keyed_by_id_in_batch_order(stack: AsyncExitStack) -> None:
    ctx = await open_ctx(stack, Scripted())
    articles = [article(t) for t in ("c", "a", "b", "d")]
    broker = Broker()
    outcome = await process_batch(ctx, [msg(a) for a in articles], send=broker.send)

    assert outcome == BatchOutcome(analyzed=4)
    produced = broker.to("unit.news.analyzed")
    assert [k for k, _ in produced] == [a.id.encode() for a in articles]
    decoded = [ctx.topics.analyzed.decode(v) for _, v in produced]
    assert [d.id for d in decoded] == [a.id for a in articles]
    assert [d.analysis.keywords for d in decoded] == [["c"], ["a"], ["b"], ["d"]]
    assert [d.title for d in decoded] == ["c", "a", "b", "d"]
    assert counter(ctx, "worker_processed_total") == 4
    assert counter(ctx, "worker_batch_size_count") == 1


async def test_messages_that_are_not_articles_are_dead_lettered_with_why(stack: AsyncExitStack) -> None:
    analyzer = Scripted()
    ctx = await open_ctx(stack, analyzer)
    good = article("good")
    batch = [
        Msg(b"k-empty", b""),
        Msg(b"k-bytes", b"\xff\xfe not JSON"),
        Msg(b"k-schema", orjson.dumps({"title": "no url, no date"})),
        msg(good),
        Msg(None, b"[1, 2"),
    ]
    broker = Broker()
    outcome = await process_batch(ctx, batch, send=broker.send)

    assert outcome == BatchOutcome(analyzed=1, dead_lettered=4)
    assert analyzer.calls == [["good"]]  # only the article reached the analyser
    assert [k for k, _ in broker.to("unit.news.analyzed")] == [good.id.encode()]
    letters = [(k, DeadLetter.model_validate_json(v)) for k, v in broker.to("unit.news.dlq")]
    assert [k for k, _ in letters] == [b"k-empty", b"k-bytes", b"k-schema", None]
    by_key = dict(letters)
    assert by_key[b"k-empty"].error == "empty message"
    assert "Invalid JSON" in by_key[b"k-bytes"].error
    assert by_key[b"k-bytes"].original_bytes() == b"\xff\xfe not JSON"  # kept byte for byte
    assert "Field required" in by_key[b"k-schema"].error and "url" in by_key[b"k-schema"].error
    for letter in by_key.values():
        assert letter.stage == "stream_worker" and letter.attempts == 1
        assert letter.original_topic == "unit.news.raw"
    assert by_key[b"k-schema"].original_key == "k-schema"
    assert counter(ctx, "worker_dead_lettered_total", reason="not_json") == 3  # empty, bytes, cut JSON
    assert counter(ctx, "worker_dead_lettered_total", reason="invalid") == 1


async def test_huge_message_keeps_its_head_and_says_so(stack: AsyncExitStack) -> None:
    ctx = await open_ctx(stack, Scripted())
    huge = b"x" * (DLQ_ORIGINAL_MAX * 3)
    broker = Broker()
    await process_batch(ctx, [Msg(b"k-huge", huge)], send=broker.send)
    ((key, value),) = broker.to("unit.news.dlq")
    letter = DeadLetter.model_validate_json(value)
    assert key == b"k-huge"
    assert letter.error.startswith(f"message of {len(huge)} bytes (kept the first {DLQ_ORIGINAL_MAX})")
    assert letter.original_bytes() == huge[:DLQ_ORIGINAL_MAX]


async def test_article_whose_analysis_keeps_failing_is_dead_lettered_with_attempts(stack: AsyncExitStack) -> None:
    analyzer = Scripted(bad=frozenset({"bad"}))
    ctx = await open_ctx(stack, analyzer)
    articles = [article("a"), article("bad"), article("b")]
    broker = Broker()
    outcome = await process_batch(ctx, [msg(a) for a in articles], send=broker.send)

    assert outcome == BatchOutcome(analyzed=2, dead_lettered=1)
    assert [k for k, _ in broker.to("unit.news.analyzed")] == [articles[0].id.encode(), articles[2].id.encode()]
    ((key, value),) = broker.to("unit.news.dlq")
    letter = DeadLetter.model_validate_json(value)
    assert key == articles[1].id.encode() and letter.original_key == articles[1].id
    assert letter.attempts == 3 and "model crashed" in letter.error and letter.error.startswith("ValueError")
    assert letter.first_failure <= letter.last_failure
    assert RawArticle.model_validate_json(letter.original_bytes()).id == articles[1].id  # the original, intact
    assert analyzer.calls.count(["bad"]) == 3
    assert counter(ctx, "worker_dead_lettered_total", reason="analysis_failed") == 1
    assert counter(ctx, "worker_failed_total", reason="ValueError") == 4  # the batch, then three tries alone


async def test_stop_during_an_outage_gives_the_batch_back_to_raw(stack: AsyncExitStack) -> None:
    ctx = await open_ctx(stack, Scripted(down=True))
    articles = [article("a"), article("b")]
    batch = [Msg(b"k-bad", b"nope"), *[msg(a) for a in articles]]
    stop = asyncio.Event()
    broker = Broker()
    task = asyncio.create_task(process_batch(ctx, batch, send=broker.send, stopping=stop.is_set))
    await asyncio.sleep(0.1)
    assert not task.done()  # waiting out the outage: backpressure, not failure
    assert counter(ctx, "worker_backpressure") == 1
    stop.set()
    outcome = await asyncio.wait_for(task, 2)

    assert outcome == BatchOutcome(dead_lettered=1, requeued=2)
    assert broker.to("unit.news.raw") == [(m.key, m.value) for m in batch[1:]]  # byte for byte, same keys
    assert broker.to("unit.news.analyzed") == []
    assert [k for k, _ in broker.to("unit.news.dlq")] == [b"k-bad"]  # a bad message stays a dead letter
    assert counter(ctx, "worker_backpressure") == 0
    assert counter(ctx, "worker_processed_total") == 0


async def test_returns_only_after_every_record_was_acknowledged(stack: AsyncExitStack) -> None:
    ctx = await open_ctx(stack, Scripted())
    broker = Broker(ack_at_once=False)
    task = asyncio.create_task(process_batch(ctx, [msg(article("a")), Msg(b"k", b"junk")], send=broker.send))
    while len(broker.acks) < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert not task.done()  # the caller must not ack (commit) the batch yet
    broker.acks[0].set_result(None)
    await asyncio.sleep(0.05)
    assert not task.done()
    broker.acks[1].set_result(None)
    assert await asyncio.wait_for(task, 1) == BatchOutcome(analyzed=1, dead_lettered=1)


async def test_the_context_closes_its_analyser() -> None:
    analyzer = Scripted()
    async with AsyncExitStack() as stack:
        await open_ctx(stack, analyzer)
        assert not analyzer.closed
    assert analyzer.closed
