"""Unit tests of the story stage's batch function (stream_worker.story_stage) with real Redis for its checkpoints.

Embeddings are built here so that their cosines are known (the clusterer's own tests do the same); the texts
decide near-duplicates. Kafka is the injected `send` and `replay`: what those do on a real broker is
tests/integration/test_story_stage.py and tests/chaos/test_story_kills.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from common.metrics import StoryMetrics
from common.schemas import Analysis, AnalyzedArticle, DeadLetter, Entity, RawArticle
from common.settings import KafkaSettings, TopicNames
from common.stories import StoryUpdate
from common.topics import Topics
from common.vectors import pack
from stream_worker.analysis import Analyzer
from stream_worker.context import WorkerContext
from stream_worker.processing import process_batch
from stream_worker.settings import WorkerConfig, WorkerSettings
from stream_worker.stories.cluster import ClusterConfig
from stream_worker.story_stage import StageConfig, StoryRecord, StoryStage, process_story_batch

pytestmark = pytest.mark.unit

T0 = datetime(2017, 3, 1, 8, tzinfo=UTC)
DIM = 64
WIRE = (
    "The central bank raised its benchmark interest rate by a quarter point on Wednesday, citing stronger "
    "hiring and inflation that has edged closer to its two percent target, and signalled more increases this year."
)


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    out: np.ndarray = vector / np.linalg.norm(vector)
    return out


def near(base: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    noise = unit(seed)
    noise = noise - float(noise @ base) * base
    noise /= np.linalg.norm(noise)
    out: np.ndarray = (cosine * base + np.sqrt(1 - cosine**2) * noise).astype(np.float32)
    return out


def analysed(
    article_id: str,
    vector: np.ndarray | None,
    *,
    text: str,
    hours: float = 0.0,
    source: str = "Wire",
    language: str = "en",
) -> AnalyzedArticle:
    analysis = Analysis(
        sentiment="neutral",
        sentiment_score=0.0,
        language=language,
        entities=[Entity(text="Fed", type="ORG", id="org:fed")],
        models={"embedding": "minilm"},
        embedding=None if vector is None else pack(vector),
    )
    article = AnalyzedArticle(
        url=f"https://example.com/{article_id}",
        title=text.split(",")[0][:120],
        description=text,
        source=source,
        published_at=T0 + timedelta(hours=hours),
        analysis=analysis,
    )
    NAMES[article.id] = article_id
    return article


NAMES: dict[str, str] = {}  # article id (a hash of the URL) -> the short name a test gave it


def named(update: StoryUpdate) -> tuple[str, str, str | None]:
    """(article, story, duplicate_of) by the tests' names."""
    dup = update.duplicate_of
    return NAMES[update.article_id], NAMES[update.story.id], None if dup is None else NAMES[dup]


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[object]:
        self.sent.append((topic, key, value))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ack.set_result(None)
        return ack

    def updates(self, topics: Topics) -> list[StoryUpdate]:
        return [topics.stories.decode(v) for t, _, v in self.sent if t == topics.stories.name]


class Log:
    """The partition as Kafka would hold it: records by offset; `replay` reads a range of it."""

    def __init__(self, topics: Topics, articles: Sequence[AnalyzedArticle | bytes]) -> None:
        self.records = [
            StoryRecord(
                0,
                offset,
                (T0 + timedelta(days=30)).timestamp(),  # produced long after publication (a replay of old news)
                b"en",
                item if isinstance(item, bytes) else topics.story_input.encode(item).value,
            )
            for offset, item in enumerate(articles)
        ]
        self.replayed: list[tuple[int, int, int]] = []

    async def replay(self, partition: int, start: int, end: int) -> Sequence[StoryRecord]:
        self.replayed.append((partition, start, end))
        return [r for r in self.records if start <= r.offset < end]


def make_stage(
    topics: Topics, redis: Redis | None, prefix: str, *, registry: CollectorRegistry | None = None, **config: object
) -> StoryStage:
    return StoryStage(
        topics=topics,
        redis=redis,
        key_prefix=prefix,
        metrics=StoryMetrics.create(registry or CollectorRegistry()),
        config=StageConfig(**config),  # type: ignore[arg-type]
    )


@pytest.fixture
def topics(namespace: str) -> Topics:
    return Topics.of(TopicNames(prefix=f"{namespace}."))


def corpus() -> list[AnalyzedArticle]:
    """Two stories of several articles each, a wire copy, a later unrelated story; the first story idles out."""
    rates, quake = unit(1), unit(2)
    return [
        analysed("a1", rates, text=WIRE),
        analysed("a2", near(rates, 0.8, 11), text="Markets rally after rate decision, bank stocks lead", source="B"),
        analysed("q1", quake, text="Earthquake of magnitude 6 strikes off the coast, no tsunami warning issued"),
        analysed("a3", near(rates, 0.9, 12), text=WIRE.replace("Wednesday", "Wednesday afternoon"), source="C"),
        analysed("q2", near(quake, 0.85, 13), text="Rescuers search rubble after coastal quake", source="D", hours=1),
        analysed("x1", unit(3), text="Local team wins the regional final in extra time", hours=2),
        analysed("q3", near(quake, 0.8, 14), text="Aftershocks rattle the coast days later", source="E", hours=60),
    ]


async def run(stage: StoryStage, log: Log, batches: Sequence[slice]) -> list[StoryUpdate]:
    broker = Broker()
    for part in batches:
        await process_story_batch(stage, log.records[part], send=broker.send, replay=log.replay)
    return broker.updates(stage.topics)


async def test_new_join_duplicate_and_closed(topics: Topics, redis: Redis, namespace: str) -> None:
    registry = CollectorRegistry()
    stage = make_stage(topics, redis, f"{namespace}:", registry=registry)
    log = Log(topics, corpus())
    updates = await run(stage, log, [slice(0, None)])
    assert [named(u) + (u.created, u.story.active) for u in updates] == [
        ("a1", "a1", None, True, True),
        ("a2", "a1", None, False, True),
        ("q1", "q1", None, True, True),
        ("a3", "a1", "a1", False, True),  # the wire copy: linked to the first-seen original, never a story
        ("q2", "q1", None, False, True),
        ("x1", "x1", None, True, True),
        # 60 hours on, the idle stories close (before q3 is assigned), each once, as itself, inactive.
        ("a1", "a1", None, False, False),
        ("q1", "q1", None, False, False),
        ("x1", "x1", None, False, False),
        ("q3", "q3", None, True, True),  # q1 had closed: q3 starts a story
    ]
    assert updates[1].story.article_count == 2 and updates[1].story.source_count == 2
    dup = updates[3].story
    assert dup.duplicate_count == 1 and dup.article_count == 2  # counted, not a member
    assert updates[6].story.duplicate_count == 1 and updates[6].story.article_count == 2
    assert stage.offset(0) == len(log.records) - 1
    # Working set and metrics: closed stories and their signatures are gone.
    state = stage.language(0, "en")
    assert state is not None and [NAMES[s] for s in state.clusterer.stories()] == ["q3"] and len(state.dedup) == 1
    assert registry.get_sample_value("news_story_duplicates_total", {"language": "en"}) == 1
    assert registry.get_sample_value("news_story_created_total", {"language": "en"}) == 4
    assert registry.get_sample_value("news_story_closed_total", {"reason": "idle"}) == 3


async def test_batching_does_not_change_assignments(topics: Topics) -> None:
    whole = await run(make_stage(topics, None, "x:"), Log(topics, corpus()), [slice(0, None)])
    ones = await run(make_stage(topics, None, "x:"), Log(topics, corpus()), [slice(i, i + 1) for i in range(7)])
    assert [u.model_dump() for u in whole] == [u.model_dump() for u in ones]


async def test_invalid_records_are_dead_lettered_and_no_embedding_skipped(topics: Topics) -> None:
    stage = make_stage(topics, None, "x:")
    bare = analysed("n1", None, text="A lexicon-tier article")
    log = Log(topics, [b"{not json", analysed("a1", unit(1), text=WIRE), bare])
    broker = Broker()
    outcome = await process_story_batch(stage, log.records, send=broker.send, replay=log.replay)
    assert (outcome.created, outcome.dead_lettered, outcome.skipped) == (1, 1, 1)
    letters = [topics.dead_letters.decode(v) for t, _, v in broker.sent if t == topics.dead_letters.name]
    assert len(letters) == 1 and isinstance(letters[0], DeadLetter)
    assert (
        letters[0].stage == "story_stage" and letters[0].original == "{not json" and "json" in letters[0].error.lower()
    )
    assert letters[0].original_topic == topics.story_input.name


async def test_full_working_set_evicts_as_closed(topics: Topics) -> None:
    stage = make_stage(topics, None, "x:", cluster=ClusterConfig(max_stories=1))
    log = Log(topics, [analysed("a1", unit(1), text=WIRE), analysed("b1", unit(2), text="Something else entirely")])
    updates = await run(stage, log, [slice(0, None)])
    assert [named(u)[:2] + (u.story.active,) for u in updates] == [
        ("a1", "a1", True),
        ("a1", "a1", False),  # evicted by b1, produced closed before b1's update
        ("b1", "b1", True),
    ]


async def test_restart_from_checkpoint_and_replay_gives_the_same_stories(
    topics: Topics, redis: Redis, namespace: str
) -> None:
    articles = corpus()
    reference = await run(make_stage(topics, None, "x:"), Log(topics, articles), [slice(0, None)])

    # Run 1: checkpoint after offset 2 only, then two more batches committed (offsets 3..4) and the process dies.
    log = Log(topics, articles)
    first = make_stage(topics, redis, f"{namespace}:", checkpoint_records=3)
    got = await run(first, log, [slice(0, 3), slice(3, 4), slice(4, 5)])
    raw = await redis.get(first.checkpoint_key(0))
    assert raw is not None
    stored = orjson.loads(raw)
    assert stored["offset"] == 2 and set(stored["languages"]) == {"en"}

    # Run 2 reads from the committed offset 5: it restores offset 2, replays 3..4 (state only), goes on.
    second = make_stage(topics, redis, f"{namespace}:", checkpoint_records=3)
    after = await run(second, log, [slice(5, None)])
    assert log.replayed == [(0, 3, 5)]
    assert [u.model_dump() for u in got + after] == [u.model_dump() for u in reference]

    # Run 3: killed after the checkpoint of offset 6 but before the commit: the batch is re-read and skipped.
    await second.checkpoint(0)
    third = make_stage(topics, redis, f"{namespace}:")
    broker = Broker()
    outcome = await process_story_batch(third, log.records[5:], send=broker.send, replay=log.replay)
    assert outcome.already_done == 2 and broker.sent == []


async def test_kill_mid_batch_re_reads_it_with_the_same_ids(topics: Topics, redis: Redis, namespace: str) -> None:
    articles = corpus()
    reference = await run(make_stage(topics, None, "x:"), Log(topics, articles), [slice(0, None)])
    log = Log(topics, articles)
    first = make_stage(topics, redis, f"{namespace}:", checkpoint_records=1)
    before = await run(first, log, [slice(0, 4)])
    # The next batch (4..6) is processed and produced, then the process dies before its checkpoint and commit.
    doomed = make_stage(topics, redis, f"{namespace}:", checkpoint_records=1)
    doomed._partitions = {}  # a process of its own: nothing shared but Redis
    await run(doomed, log, [slice(0, 4)])  # restores offset 3: all skipped, nothing produced
    lost = Broker()
    doomed.config = StageConfig(checkpoint_records=10_000)
    await process_story_batch(doomed, log.records[4:], send=lost.send, replay=log.replay)
    # Restart: the uncommitted batch is read again from the checkpoint at offset 3.
    again = await run(make_stage(topics, redis, f"{namespace}:"), log, [slice(4, None)])
    assert [u.model_dump() for u in again] == [u.model_dump() for u in lost.updates(topics)]
    assert [u.model_dump() for u in before + again] == [u.model_dump() for u in reference]


class FakeEngine:
    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        return [
            Analysis(
                sentiment="neutral",
                sentiment_score=0.0,
                language="ko" if i % 2 else "en",
                embedding=pack(unit(i)) if i < 2 else None,
            )
            for i, _ in enumerate(articles)
        ]

    async def aclose(self) -> None:
        return None


async def test_analysed_articles_with_embeddings_are_fed_keyed_by_language() -> None:
    settings = WorkerSettings(
        kafka=KafkaSettings(topics=TopicNames(prefix="unit.")), worker=WorkerConfig(stats_enabled=False)
    )
    engine: Analyzer = FakeEngine()
    async with AsyncExitStack() as stack:
        ctx = await WorkerContext.open(stack, settings, registry=CollectorRegistry(), analyzer=engine, admin=False)
        raws = [RawArticle(url=f"https://example.com/{i}", title=f"Title {i}", published_at=T0) for i in range(3)]

        class Msg:
            def __init__(self, raw: RawArticle) -> None:
                self.key, self.value = raw.id.encode(), ctx.topics.raw.encode(raw).value

        broker = Broker()
        await process_batch(ctx, [Msg(r) for r in raws], send=broker.send)
        fed = [(k, ctx.topics.story_input.decode(v).id) for t, k, v in broker.sent if t == ctx.topics.story_input.name]
        assert fed == [(b"en", raws[0].id), (b"ko", raws[1].id)]  # the third has no embedding
        assert len([t for t, _, _ in broker.sent if t == ctx.topics.analyzed.name]) == 3
        assert ctx.registry.get_sample_value("news_story_skipped_total", {"reason": "no_embedding"}) == 1
