"""The story stage (issue 15): near-duplicates and online story clustering over `news.stories.in`, a plain
function per batch, free of faust (`stream_worker.story_agents` connects it).

One writer per language. `news.stories.in` carries every analysed article that has an embedding, keyed by its
language (fed by `stream_worker.processing`), so all articles of one language are in one partition, read by one
worker in offset order, whichever replica analysed them. The stage keeps, per partition, one `LanguageState`
per language: a `StoryClusterer` (stories) and a `NearDuplicates` (copies), plus which story each remembered
article is in. Everything it decides is a pure function of (state, records in offset order): no clock (expiry
runs on the publication-time watermark), no randomness, ties broken by id.

Per batch, for each partition in offset order: decode (a record that is not an analysed article is
dead-lettered with the reason); an article without an embedding is skipped and counted (a fast-tier article is
a valid article that cannot be compared, not a failure: the feed never sends one, so one here is counted as
`news_story_skipped_total{reason="no_embedding"}`); a near-duplicate of a remembered article gets
`StoryUpdate(duplicate_of=<first-seen original>, created=False)` for the original's story with
`duplicate_count` bumped (it neither starts nor grows a story); any other article joins or starts a story.
Stories pushed out of a full working set (`evicted`) or idle past the window (`expire(watermark)`) are produced
once more with `active=False` (`article_id` is then the story's own first article, so a store that links
articles to stories by update never re-links another article to a closed story). Every update is produced to
`news.stories` keyed by story id, and the batch returns only after Kafka acknowledged all of them.

State and restarts: why the same story ids come out after a SIGKILL.

- Checkpoints. After the batch's produce acks and before the agent acks it (so before its offsets can be
  committed), the stage writes a partition's checkpoint to Redis when it is due (every `checkpoint_records`
  records or `checkpoint_seconds`): one SET of one JSON document holding every language's clusterer snapshot
  and near-duplicate signatures and the offset of the last record they reflect. One key per partition, so a
  checkpoint is all or nothing. Checkpointing every batch would rewrite the whole working set (megabytes) per
  batch; between checkpoints, Kafka itself is the changelog.
- Restore. When a partition is first read by this process (start-up, or after a rebalance gave it back:
  `forget` drops what a revoked partition held in memory), its checkpoint is loaded (offset C; none: empty
  state, C = -1) and the first record of the batch has offset O:
  - records at or below C are skipped: the checkpoint already reflects them, and their updates were acked
    before it was written;
  - records between C and O (committed after the checkpoint: a crash after the commit, before the next
    checkpoint) are re-read from Kafka (`replay`) and applied to the state only: they were committed, so their
    updates were acknowledged already and are not produced twice.
  The state is then exactly what the uninterrupted run had before O, and the batch is processed from there.
- A SIGKILL mid-batch: the batch was not committed, so it is re-read; restored state + the same records in the
  same order give the same assignments, so the same story ids and the same update contents come out. Updates
  the killed process had produced already are produced again, identical: the consumer's store keys stories by
  id, so no story appears twice. A kill after a checkpoint and before the commit: the re-read records are at
  or below C and are skipped.
- A checkpoint that cannot be written (Redis down) is counted and tried again at the next batch: correctness
  does not depend on it (the replay covers any committed gap), only the replay's length does.

Bounded memory: the clusterer caps its open stories (`ClusterConfig.max_stories`) and the articles it
remembers; the near-duplicate set keeps at most `max_signatures` articles per language (oldest dropped first)
and drops the members of every story that closes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import InvalidMessage
from common.metrics import StoryMetrics
from common.retry import until_up
from common.schemas import AnalyzedArticle, DeadLetter
from common.stories import Story, StoryUpdate
from common.topics import Topics
from stream_worker.stories.cluster import Candidate, ClusterConfig, StoryClusterer, StoryState
from stream_worker.stories.dedup import NearDuplicates, Signature, article_text, signature

__all__ = [
    "CHECKPOINT_VERSION",
    "STAGE",
    "LanguageState",
    "Replay",
    "Send",
    "StageConfig",
    "StoryOutcome",
    "StoryRecord",
    "StoryStage",
    "process_story_batch",
]

log = logging.getLogger(__name__)

STAGE = "story_stage"
CHECKPOINT_VERSION = 1

# send(topic name, key, value) queues one record and returns what to await for the broker's ack.
Send = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[object]]]


@dataclass(frozen=True, slots=True)
class StoryRecord:
    """One consumed `news.stories.in` record (from a faust event or a plain aiokafka record)."""

    partition: int
    offset: int
    timestamp: float  # seconds since the epoch (the record's CreateTime): the same on every re-read
    key: bytes | None
    value: bytes | None


# replay(partition, start, end): the records of that partition at offsets start <= offset < end, in order.
Replay = Callable[[int, int, int], Awaitable[Sequence[StoryRecord]]]


@dataclass(frozen=True)
class StageConfig:
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    max_signatures: int = 10_000  # per language
    checkpoint_records: int = 2_000
    checkpoint_seconds: float = 30.0


@dataclass
class LanguageState:
    """One language's working set: stories, near-duplicate signatures and the story of each signed article."""

    clusterer: StoryClusterer
    dedup: NearDuplicates
    story_of: dict[str, str] = field(default_factory=dict)  # signed article -> story, first-seen order
    members: dict[str, dict[str, None]] = field(default_factory=dict)  # story -> its signed articles
    duplicates: dict[str, int] = field(default_factory=dict)  # story -> near-duplicates counted
    watermark: datetime | None = None  # latest publication time seen (capped by record time): "now" for expiry
    expired_hour: int | None = None  # the watermark's hour when expiry last ran

    @classmethod
    def empty(cls, config: StageConfig) -> LanguageState:
        return cls(StoryClusterer(config.cluster), NearDuplicates())

    def remember(self, article_id: str, story_id: str, limit: int) -> None:
        self.story_of[article_id] = story_id
        self.members.setdefault(story_id, {})[article_id] = None
        while len(self.story_of) > limit:  # oldest first
            self.forget_article(next(iter(self.story_of)))

    def forget_article(self, article_id: str) -> None:
        story_id = self.story_of.pop(article_id, None)
        self.dedup.remove(article_id)
        if story_id is not None:
            members = self.members.get(story_id)
            if members is not None:
                members.pop(article_id, None)
                if not members:
                    del self.members[story_id]

    def close(self, story_id: str) -> None:
        """A closed story's articles are no longer originals a copy can join."""
        for article_id in list(self.members.pop(story_id, {})):
            self.story_of.pop(article_id, None)
            self.dedup.remove(article_id)
        self.duplicates.pop(story_id, None)

    def story(self, state: StoryState | str, *, active: bool = True) -> Story:
        if isinstance(state, str):
            story = self.clusterer.current(state)
            story_id = state
        else:
            story, story_id = state.to_story(active=active), state.story_id
        count = self.duplicates.get(story_id, 0)
        return story.model_copy(update={"duplicate_count": count}) if count else story

    def to_dict(self) -> dict[str, Any]:
        return {
            "clusterer": self.clusterer.snapshot().decode("utf-8"),
            "dedup": [
                [key, base64.b64encode(sig.to_bytes()).decode("ascii"), original, self.story_of.get(key)]
                for key, sig, original in self.dedup.entries()
            ],
            "duplicates": self.duplicates,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "expired_hour": self.expired_hour,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: StageConfig) -> LanguageState:
        entries = [(str(k), Signature.from_bytes(base64.b64decode(s)), o) for k, s, o, _ in data["dedup"]]
        state = cls(
            StoryClusterer.restore(data["clusterer"], config.cluster),
            NearDuplicates.from_signatures(entries),
            duplicates={str(k): int(v) for k, v in data["duplicates"].items()},
            watermark=datetime.fromisoformat(data["watermark"]) if data["watermark"] else None,
            expired_hour=data["expired_hour"],
        )
        for key, _, _, story_id in data["dedup"]:
            if story_id is not None:
                state.story_of[key] = story_id
                state.members.setdefault(story_id, {})[key] = None
        return state


@dataclass
class _Partition:
    offset: int = -1  # the last record the state reflects
    languages: dict[str, LanguageState] = field(default_factory=dict)
    since_checkpoint: int = 0
    checkpointed_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class StoryOutcome:
    created: int = 0
    joined: int = 0
    duplicates: int = 0
    closed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    replayed: int = 0
    already_done: int = 0  # at or below the checkpoint's offset


class StoryStage:
    """The stage's state across batches: the partitions this process reads and their checkpoints in Redis."""

    def __init__(
        self,
        *,
        topics: Topics,
        redis: Redis | None,
        key_prefix: str,
        metrics: StoryMetrics,
        config: StageConfig | None = None,
    ) -> None:
        self.topics = topics
        self.redis = redis
        self.prefix = f"{key_prefix}stories:checkpoint:{topics.story_input.name}:"
        self.metrics = metrics
        self.config = config or StageConfig()
        self._partitions: dict[int, _Partition] = {}

    def checkpoint_key(self, partition: int) -> str:
        return f"{self.prefix}{partition}"

    def forget(self, partitions: Sequence[int] | None = None) -> None:
        """Drop what memory holds for these partitions (all: None); they are restored from Redis when read again."""
        for partition in list(self._partitions) if partitions is None else partitions:
            self._partitions.pop(partition, None)

    def language(self, partition: int, language: str) -> LanguageState | None:
        held = self._partitions.get(partition)
        return held.languages.get(language) if held else None

    def offset(self, partition: int) -> int | None:
        held = self._partitions.get(partition)
        return held.offset if held else None

    async def _load(self, partition: int) -> _Partition:
        if self.redis is None:
            return _Partition()
        async for attempt in _until_redis():
            with attempt:
                raw = await self.redis.get(self.checkpoint_key(partition))
        if raw is None:
            return _Partition()
        data = orjson.loads(raw)
        if data.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"story checkpoint version {data.get('version')!r}, expected {CHECKPOINT_VERSION}")
        return _Partition(
            offset=int(data["offset"]),
            languages={lang: LanguageState.from_dict(item, self.config) for lang, item in data["languages"].items()},
        )

    async def checkpoint(self, partition: int) -> bool:
        """Write the partition's state to Redis (one SET: all or nothing); False when Redis did not take it."""
        held = self._partitions.get(partition)
        if held is None or self.redis is None:
            return False
        document = orjson.dumps(
            {
                "version": CHECKPOINT_VERSION,
                "topic": self.topics.story_input.name,
                "partition": partition,
                "offset": held.offset,
                "languages": {lang: state.to_dict() for lang, state in sorted(held.languages.items())},
            }
        )
        try:
            await self.redis.set(self.checkpoint_key(partition), document)
        except RedisError as exc:
            self.metrics.checkpoints.labels(result="failed").inc()
            log.warning("could not checkpoint story partition %d (retried at the next batch): %r", partition, exc)
            return False
        held.since_checkpoint = 0
        held.checkpointed_at = time.monotonic()
        self.metrics.checkpoints.labels(result="ok").inc()
        return True

    def _due(self, held: _Partition) -> bool:
        config = self.config
        return held.since_checkpoint >= config.checkpoint_records or (
            held.since_checkpoint > 0 and time.monotonic() - held.checkpointed_at >= config.checkpoint_seconds
        )


def _until_redis() -> Any:
    return until_up("redis (story checkpoint)", on=(RedisError,))


class _Batch:
    """What one batch accumulates: records to produce and counts."""

    def __init__(self, stage: StoryStage, *, produce: bool) -> None:
        self.stage = stage
        self.produce = produce
        self.out: list[tuple[bytes | None, bytes]] = []
        self.dead: list[tuple[bytes | None, bytes]] = []
        self.counts: dict[str, int] = dict.fromkeys(
            ("created", "joined", "duplicates", "closed", "skipped", "dead_lettered"), 0
        )

    def emit(self, update: StoryUpdate) -> None:
        if self.produce:
            record = self.stage.topics.stories.encode(update)
            self.out.append((record.key, record.value))

    def closed(self, language: LanguageState, states: Sequence[StoryState], reason: str) -> None:
        for state in states:
            story = language.story(state, active=False)
            language.close(state.story_id)
            self.emit(StoryUpdate(article_id=state.story_id, created=False, similarity=1.0, story=story))
            self.counts["closed"] += 1
            if self.produce:
                self.stage.metrics.closed.labels(reason=reason).inc()


def _dead_letter(stage: StoryStage, record: StoryRecord, error: str) -> tuple[bytes | None, bytes]:
    letter = DeadLetter.wrap(
        record.value,
        stage=STAGE,
        error=error,
        key=record.key,
        topic=stage.topics.story_input.name,
    )
    return record.key, stage.topics.dead_letters.encode(letter).value


def _apply(stage: StoryStage, held: _Partition, record: StoryRecord, batch: _Batch) -> None:
    """One record into the partition's state; updates and dead letters go to `batch`."""
    metrics, config = stage.metrics, stage.config
    counting = batch.produce  # a replayed record was counted when it was first processed
    try:
        article: AnalyzedArticle = stage.topics.story_input.decode(record.value)
        candidate = Candidate.of(article)
    except InvalidMessage as exc:
        if counting:
            metrics.dead_lettered.labels(reason="invalid" if exc.kind == "invalid" else "not_json").inc()
            batch.dead.append(_dead_letter(stage, record, str(exc)))
        batch.counts["dead_lettered"] += 1
        return
    except ValueError:  # no embedding: see the module docstring
        if counting:
            metrics.skipped.labels(reason="no_embedding").inc()
        batch.counts["skipped"] += 1
        return
    lang = candidate.language
    state = held.languages.get(lang)
    if state is None:
        state = held.languages[lang] = LanguageState.empty(config)
    _advance(state, min(candidate.published_at, datetime.fromtimestamp(record.timestamp, UTC)), batch)

    redelivered = candidate.article_id in state.dedup
    original: str | None = None
    if not redelivered:
        try:
            sig = signature(
                article_text(article.title, article.description, article.content), lang, title=article.title
            )
        except ValueError:  # no letters or digits: nothing to compare, it can still join a story
            sig = None
        if sig is not None:
            original = state.dedup.check_and_add(candidate.article_id, sig)
    else:
        original = state.dedup.original_of(candidate.article_id)
    if original is not None:
        story_id = state.story_of.get(original) or state.clusterer.story_of(original)
        if story_id is not None and story_id in state.clusterer:
            if not redelivered:
                state.duplicates[story_id] = state.duplicates.get(story_id, 0) + 1
                state.remember(candidate.article_id, story_id, config.max_signatures)
                batch.counts["duplicates"] += 1
                if counting:
                    metrics.duplicates.labels(language=lang).inc()
            batch.emit(
                StoryUpdate(
                    article_id=candidate.article_id,
                    created=False,
                    similarity=1.0,
                    story=state.story(story_id),
                    duplicate_of=original,
                )
            )
            return
        # The original's story closed under it (cannot happen while closing drops its members): cluster it.
    assignment = state.clusterer.assign(candidate)
    batch.closed(state, assignment.evicted, "evicted")
    if not redelivered and candidate.article_id in state.dedup:
        state.remember(candidate.article_id, assignment.story_id, config.max_signatures)
    if assignment.created:
        batch.counts["created"] += 1
        if counting:
            metrics.created.labels(language=lang).inc()
    else:
        batch.counts["joined"] += 1
        if counting:
            metrics.updated.labels(language=lang).inc()
    batch.emit(
        StoryUpdate(
            article_id=candidate.article_id,
            created=assignment.created,
            similarity=max(-1.0, min(1.0, assignment.similarity)),
            story=state.story(assignment.story_id),
        )
    )


def _advance(state: LanguageState, moment: datetime, batch: _Batch) -> None:
    """Move the language's watermark; close idle stories each time it enters a new hour.

    Expiry runs at points fixed by the records alone (the watermark's hour changes), before the record that
    moved it is assigned, never at batch ends: batches are cut by timing, so expiring per batch would make the
    assignments depend on how a run happened to be batched, and a replay would not repeat them.
    """
    if state.watermark is None or moment > state.watermark:
        state.watermark = moment
    hour = int(state.watermark.timestamp()) // 3_600
    if state.expired_hour is None:
        state.expired_hour = hour
    elif hour > state.expired_hour:
        state.expired_hour = hour
        batch.closed(state, state.clusterer.expire(datetime.fromtimestamp(hour * 3_600, UTC)), "idle")


async def _restore(stage: StoryStage, partition: int, first: int, replay: Replay) -> tuple[_Partition, int]:
    """The partition's state as of the record before `first`: its checkpoint plus the committed records after it."""
    held = await stage._load(partition)
    replayed = 0
    if held.offset + 1 < first:
        # Retried, never raised: a failed batch is acked by faust all the same (take_events acks in a finally),
        # and its updates would then be lost to the next replay, which treats committed records as produced.
        async for attempt in until_up(
            f"kafka (replay of story partition {partition})", on=(KafkaError, OSError, TimeoutError)
        ):
            with attempt:
                records = await replay(partition, held.offset + 1, first)
        batch = _Batch(stage, produce=False)
        for record in records:
            if record.offset <= held.offset or record.offset >= first:
                continue
            _apply(stage, held, record, batch)
            held.offset = record.offset
            held.since_checkpoint += 1
            replayed += 1
        stage.metrics.replayed.inc(replayed)
        log.info("story partition %d: replayed %d committed records after its checkpoint", partition, replayed)
    stage._partitions[partition] = held
    return held, replayed


async def process_story_batch(
    stage: StoryStage, records: Sequence[StoryRecord], *, send: Send, replay: Replay
) -> StoryOutcome:
    """Assign one batch and produce its story updates and dead letters; see the module docstring."""
    started = time.perf_counter()
    by_partition: dict[int, list[StoryRecord]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record)
    batch = _Batch(stage, produce=True)
    replayed = already = 0
    for partition in sorted(by_partition):
        part_records = by_partition[partition]
        held = stage._partitions.get(partition)
        if held is None:
            held, n = await _restore(stage, partition, part_records[0].offset, replay)
            replayed += n
        for record in part_records:
            if record.offset <= held.offset:
                already += 1
                continue
            _apply(stage, held, record, batch)
            held.offset = record.offset
            held.since_checkpoint += 1
    # Updates first, then dead letters; the agent acks the batch only after every ack below.
    acks = [await send(stage.topics.stories.name, key, value) for key, value in batch.out]
    acks += [await send(stage.topics.dead_letters.name, key, value) for key, value in batch.dead]
    await asyncio.gather(*acks)
    for partition in by_partition:
        held = stage._partitions.get(partition)
        if held is None:  # revoked during the batch: its next reader restores it
            continue
        if stage._due(held):
            await stage.checkpoint(partition)
        for lang, state in held.languages.items():
            stage.metrics.working_set.labels(language=lang).set(len(state.clusterer))
            stage.metrics.signatures.labels(language=lang).set(len(state.dedup))
    stage.metrics.latency.observe(time.perf_counter() - started)
    counts = batch.counts
    return StoryOutcome(
        created=counts["created"],
        joined=counts["joined"],
        duplicates=counts["duplicates"],
        closed=counts["closed"],
        skipped=counts["skipped"],
        dead_lettered=counts["dead_lettered"],
        replayed=replayed,
        already_done=already,
    )
