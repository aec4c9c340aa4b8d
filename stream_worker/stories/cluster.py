"""Online story clustering (issue 15, item 2): each analysed article joins an open story or starts one.

The rule (thresholds chosen on the development split of `training/stories/clusters.tsv`, see
`training/eval_stories.py` and `training/stories/README_clusters.md`):

1. Only stories in the same embedding space (`Analysis.models["embedding"]`: MiniLM for English, e5 for the
   others) and still open are compared: a story is open for an article published within `idle_hours` of the
   story's span [first_seen, last_seen]. Times are the articles' publication times, never the wall clock, so
   a replay gives what the live stream gave.
2. The article's similarity to a story is the cosine between its shared embedding and the story's centroid
   (the normalised sum of its members' embeddings).
3. It joins the most similar open story when that similarity is at least `join_similarity`, or at least
   `entity_similarity` while it also names `min_shared_entities` of the story's canonical entities
   (`Entity.id`). Ties go to the smaller story id. Otherwise it starts a story.

A story's id is its first article's id. Re-assigning an article the clusterer remembers returns its story
unchanged (`remembered_articles` most recent ids), and an article that starts a story after a crash starts it
under the same id, so re-processing never makes a duplicate story. The same input order gives the same
assignments: no clock, no randomness, no hash ordering (ties are broken by id).

Memory is bounded by the working set: at most `max_stories` open stories (the least recently grown is evicted
and handed back), and per story a centroid, a few recent titles and capped counters. `snapshot()` writes the
whole working set as JSON bytes (for Redis) and `StoryClusterer.restore` reads it back; the float32 sums are
written bit for bit, so the assignments that follow a restore are those that would have followed anyway.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from common.schemas import AnalyzedArticle
from common.stories import (
    MAX_SOURCES,
    TIMELINE_BUCKET_SECONDS,
    TIMELINE_MAX_BUCKETS,
    TOP_ENTITIES,
    TOP_KEYWORDS,
    SentimentMix,
    Story,
    StoryEntity,
    TimelineBucket,
)
from common.vectors import pack, unpack

__all__ = [
    "SNAPSHOT_VERSION",
    "Assignment",
    "Candidate",
    "ClusterConfig",
    "EntityRef",
    "StoryClusterer",
    "StoryState",
]

SNAPSHOT_VERSION = 1
_Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ClusterConfig:
    """The rule's constants; the defaults are those chosen on the development split."""

    join_similarity: float = 0.55
    entity_similarity: float = 0.5
    min_shared_entities: int = 1
    idle_hours: float = 48.0
    max_stories: int = 5_000
    recent_titles: int = 5
    remembered_articles: int = 50_000
    # Counters are pruned to their largest entries when they grow past twice these (ties by key).
    top_entities: int = TOP_ENTITIES
    top_keywords: int = TOP_KEYWORDS
    max_sources: int = MAX_SOURCES

    def __post_init__(self) -> None:
        if not -1.0 <= self.entity_similarity <= self.join_similarity <= 1.0:
            raise ValueError("need -1 <= entity_similarity <= join_similarity <= 1")
        if self.idle_hours <= 0 or self.max_stories < 1 or self.remembered_articles < 1:
            raise ValueError("idle_hours, max_stories and remembered_articles must be positive")


@dataclass(frozen=True)
class EntityRef:
    id: str
    name: str
    type: str


@dataclass(frozen=True)
class Candidate:
    """The part of an analysed article the clusterer reads."""

    article_id: str
    published_at: datetime
    title: str
    source: str
    language: str
    space: str
    vector: _Vector
    entities: tuple[EntityRef, ...] = ()
    keywords: tuple[str, ...] = ()
    sentiment: str = "neutral"
    sentiment_score: float = 0.0

    @classmethod
    def of(cls, article: AnalyzedArticle) -> Candidate:
        """From a `news.analyzed` record; raises ValueError when the analysis carries no embedding."""
        analysis = article.analysis
        if analysis.embedding is None:
            raise ValueError(f"article {article.id} has no embedding (lexicon tier?): it cannot join a story")
        seen: dict[str, EntityRef] = {}
        for entity in analysis.entities:
            if entity.id and entity.id not in seen:
                seen[entity.id] = EntityRef(entity.id, entity.display, entity.type)
        return cls(
            article_id=article.id,
            published_at=article.published_at,
            title=article.title,
            source=article.source,
            language=analysis.language,
            space=analysis.models.get("embedding", analysis.language),
            vector=unpack(analysis.embedding),
            entities=tuple(seen.values()),
            keywords=tuple(analysis.keywords),
            sentiment=analysis.sentiment,
            sentiment_score=analysis.sentiment_score,
        )


@dataclass(frozen=True)
class Assignment:
    story_id: str
    created: bool
    similarity: float
    evicted: tuple[StoryState, ...] = ()
    """Stories pushed out of a full working set by this assignment (store them as closed)."""


def _prune(counter: dict[str, int], keep: int) -> None:
    """Keep the `keep` largest counts (ties by key) once the counter reaches twice that: bounded, deterministic."""
    if len(counter) >= 2 * keep:
        kept = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]
        counter.clear()
        counter.update(kept)


def _top(counter: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _hour(moment: datetime) -> int:
    return int(moment.timestamp()) // TIMELINE_BUCKET_SECONDS


@dataclass
class StoryState:
    """One story in the working set: its running centroid and bounded summaries."""

    story_id: str
    space: str
    first_seen: datetime
    last_seen: datetime
    vector_sum: _Vector
    article_count: int = 0
    recent: list[tuple[str, str]] = field(default_factory=list)  # (title, packed unit vector), newest last
    sources: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    entities: dict[str, int] = field(default_factory=dict)
    entity_names: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, type), pruned with counts
    keywords: dict[str, int] = field(default_factory=dict)
    sentiments: dict[str, int] = field(default_factory=dict)
    score_sum: float = 0.0
    timeline: dict[int, int] = field(default_factory=dict)  # hour since the epoch -> articles
    source_total: int = 0  # distinct sources ever seen, which `sources` may have pruned

    @property
    def centroid(self) -> _Vector:
        norm = float(np.linalg.norm(self.vector_sum))
        return self.vector_sum / norm if norm else self.vector_sum

    def add(self, candidate: Candidate, config: ClusterConfig) -> None:
        self.vector_sum = (self.vector_sum + candidate.vector).astype(np.float32)
        self.article_count += 1
        self.first_seen = min(self.first_seen, candidate.published_at)
        self.last_seen = max(self.last_seen, candidate.published_at)
        self.recent.append((candidate.title, pack(candidate.vector)))
        del self.recent[: -config.recent_titles]
        if candidate.source not in self.sources:
            self.source_total += 1
        self.sources[candidate.source] = self.sources.get(candidate.source, 0) + 1
        _prune(self.sources, config.max_sources)
        self.languages[candidate.language] = self.languages.get(candidate.language, 0) + 1
        for entity in candidate.entities:
            self.entities[entity.id] = self.entities.get(entity.id, 0) + 1
            self.entity_names[entity.id] = (entity.name, entity.type)
        _prune(self.entities, config.top_entities)
        if len(self.entity_names) > len(self.entities):
            self.entity_names = {k: v for k, v in self.entity_names.items() if k in self.entities}
        for keyword in dict.fromkeys(k.casefold() for k in candidate.keywords):
            self.keywords[keyword] = self.keywords.get(keyword, 0) + 1
        _prune(self.keywords, config.top_keywords)
        self.sentiments[candidate.sentiment] = self.sentiments.get(candidate.sentiment, 0) + 1
        self.score_sum += candidate.sentiment_score
        hour = _hour(candidate.published_at)
        self.timeline[hour] = self.timeline.get(hour, 0) + 1
        if len(self.timeline) > TIMELINE_MAX_BUCKETS:
            for old in sorted(self.timeline)[: len(self.timeline) - TIMELINE_MAX_BUCKETS]:
                del self.timeline[old]

    def title(self) -> str:
        """The kept title nearest the centroid (the first article's until others join)."""
        centroid = self.centroid
        best = max(enumerate(self.recent), key=lambda item: (float(unpack(item[1][1]) @ centroid), -item[0]))
        return best[1][0]

    def to_story(self, *, active: bool = True) -> Story:
        language = _top(self.languages, 1)[0][0]
        n = self.article_count
        return Story(
            id=self.story_id,
            title=self.title(),
            language=language,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            article_count=n,
            source_count=max(self.source_total, 1),
            sources=dict(_top(self.sources, MAX_SOURCES)),
            languages=dict(self.languages),
            entities=[
                StoryEntity(id=key, name=self.entity_names[key][0], type=self.entity_names[key][1], count=count)
                for key, count in _top(self.entities, TOP_ENTITIES)
            ],
            keywords=[key for key, _ in _top(self.keywords, TOP_KEYWORDS)],
            sentiment=SentimentMix(
                positive=self.sentiments.get("positive", 0),
                neutral=self.sentiments.get("neutral", 0),
                negative=self.sentiments.get("negative", 0),
                mean_score=max(-1.0, min(1.0, self.score_sum / n)) if n else 0.0,
            ),
            timeline=[
                TimelineBucket(start=datetime.fromtimestamp(hour * TIMELINE_BUCKET_SECONDS, UTC), count=count)
                for hour, count in sorted(self.timeline.items())
            ],
            active=active,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        data["vector_sum"] = base64.b64encode(self.vector_sum.astype("<f4").tobytes()).decode("ascii")
        data["recent"] = [list(item) for item in self.recent]
        data["entity_names"] = {k: list(v) for k, v in self.entity_names.items()}
        data["timeline"] = {str(k): v for k, v in self.timeline.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoryState:
        values = dict(data)
        values["first_seen"] = datetime.fromisoformat(values["first_seen"])
        values["last_seen"] = datetime.fromisoformat(values["last_seen"])
        raw = base64.b64decode(values["vector_sum"])
        values["vector_sum"] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        values["recent"] = [(str(t), str(v)) for t, v in values["recent"]]
        values["entity_names"] = {k: (str(v[0]), str(v[1])) for k, v in values["entity_names"].items()}
        values["timeline"] = {int(k): int(v) for k, v in values["timeline"].items()}
        return cls(**values)


class StoryClusterer:
    """The working set of open stories and the rule that assigns articles to them (one writer per language)."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        self._idle = timedelta(hours=self.config.idle_hours)
        self._stories: dict[str, StoryState] = {}
        self._assigned: OrderedDict[str, str] = OrderedDict()  # article id -> story id, most recent last
        # Centroids as rows of one matrix, so one matrix-vector product scores every open story.
        self._rows: list[str] = []
        self._row_of: dict[str, int] = {}
        self._matrix: _Vector = np.zeros((0, 0), dtype=np.float32)

    # -- queries -------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._stories)

    def __contains__(self, story_id: object) -> bool:
        return story_id in self._stories

    def current(self, story_id: str) -> Story:
        """The open story's wire shape as it stands, without copying its state (KeyError when not in the set)."""
        return self._stories[story_id].to_story()

    def story(self, story_id: str) -> StoryState:
        """The story as it stands (a copy: changing it changes nothing here); KeyError when not in the set."""
        return StoryState.from_dict(self._stories[story_id].to_dict())

    def stories(self) -> list[str]:
        return sorted(self._stories)

    def story_of(self, article_id: str) -> str | None:
        return self._assigned.get(article_id)

    # -- the rule ------------------------------------------------------------------------------------------

    def assign(self, candidate: Candidate) -> Assignment:
        known = self._assigned.get(candidate.article_id)
        if known is not None:
            self._assigned.move_to_end(candidate.article_id)
            return Assignment(known, created=known == candidate.article_id, similarity=1.0)
        if candidate.vector.ndim != 1 or not candidate.vector.size:
            raise ValueError(f"article {candidate.article_id}: the embedding must be a non-empty vector")
        if self._rows and self._matrix.shape[1] != candidate.vector.size:  # checked before anything changes
            raise ValueError(
                f"article {candidate.article_id}: embedding of {candidate.vector.size} dimensions in a working set "
                f"of {self._matrix.shape[1]}: one clusterer per embedding space"
            )
        best_id, best_similarity = self._best(candidate)
        evicted: tuple[StoryState, ...] = ()
        if best_id is None:
            if candidate.article_id in self._stories:  # its story aged out of the map, not out of the set
                best_id, best_similarity = candidate.article_id, 1.0
            else:
                evicted = self._make_room()
                state = StoryState(
                    story_id=candidate.article_id,
                    space=candidate.space,
                    first_seen=candidate.published_at,
                    last_seen=candidate.published_at,
                    vector_sum=np.zeros(candidate.vector.shape, dtype=np.float32),
                )
                state.add(candidate, self.config)
                self._stories[state.story_id] = state
                self._set_row(state)
                self._remember(candidate.article_id, state.story_id)
                return Assignment(state.story_id, created=True, similarity=1.0, evicted=evicted)
        state = self._stories[best_id]
        state.add(candidate, self.config)
        self._set_row(state)
        self._remember(candidate.article_id, best_id)
        return Assignment(best_id, created=False, similarity=best_similarity)

    def _best(self, candidate: Candidate) -> tuple[str | None, float]:
        if not self._rows or self._matrix.shape[1] != candidate.vector.size:
            return None, 0.0
        similarities = self._matrix[: len(self._rows)] @ candidate.vector.astype(np.float32)
        config = self.config
        shortlist = np.flatnonzero(similarities >= config.entity_similarity)
        entity_ids = {entity.id for entity in candidate.entities}
        best: tuple[float, str] | None = None
        for row in shortlist.tolist():
            story_id = self._rows[row]
            state = self._stories[story_id]
            similarity = float(similarities[row])
            if state.space != candidate.space or not self._open(state, candidate.published_at):
                continue
            if similarity < config.join_similarity:
                shared = sum(1 for key in entity_ids if key in state.entities)
                if shared < config.min_shared_entities:
                    continue
            # Highest similarity wins; equal similarities go to the smaller id (never to dict or row order).
            if best is None or (-similarity, story_id) < (-best[0], best[1]):
                best = (similarity, story_id)
        return (best[1], best[0]) if best else (None, 0.0)

    def _open(self, state: StoryState, moment: datetime) -> bool:
        return state.first_seen - self._idle <= moment <= state.last_seen + self._idle

    # -- the working set -----------------------------------------------------------------------------------

    def expire(self, now: datetime) -> list[StoryState]:
        """Take out the stories that have not grown for `idle_hours` before `now` (oldest first): they are closed."""
        cutoff = now - self._idle
        gone = sorted(
            (s for s in self._stories.values() if s.last_seen < cutoff), key=lambda s: (s.last_seen, s.story_id)
        )
        for state in gone:
            self._drop(state.story_id)
        return gone

    def _make_room(self) -> tuple[StoryState, ...]:
        if len(self._stories) < self.config.max_stories:
            return ()
        oldest = min(self._stories.values(), key=lambda s: (s.last_seen, s.story_id))
        self._drop(oldest.story_id)
        return (oldest,)

    def _drop(self, story_id: str) -> None:
        del self._stories[story_id]
        row = self._row_of.pop(story_id)
        last = len(self._rows) - 1
        if row != last:  # move the last row into the hole
            moved = self._rows[last]
            self._rows[row] = moved
            self._row_of[moved] = row
            self._matrix[row] = self._matrix[last]
        self._rows.pop()

    def _set_row(self, state: StoryState) -> None:
        vector = state.centroid
        if self._matrix.shape[1] != vector.size:
            if self._rows:
                raise ValueError(
                    f"embedding of {vector.size} dimensions in a working set of {self._matrix.shape[1]}: "
                    "one clusterer per embedding space"
                )
            self._matrix = np.zeros((64, vector.size), dtype=np.float32)
        row = self._row_of.get(state.story_id)
        if row is None:
            row = len(self._rows)
            if row == self._matrix.shape[0]:
                grown = np.zeros((row * 2, vector.size), dtype=np.float32)
                grown[:row] = self._matrix
                self._matrix = grown
            self._rows.append(state.story_id)
            self._row_of[state.story_id] = row
        self._matrix[row] = vector

    def _remember(self, article_id: str, story_id: str) -> None:
        self._assigned[article_id] = story_id
        while len(self._assigned) > self.config.remembered_articles:
            self._assigned.popitem(last=False)

    # -- persistence ---------------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The working set as JSON (stories in id order, remembered articles in order): restore() reads it."""
        data = {
            "version": SNAPSHOT_VERSION,
            "config": asdict(self.config),
            "stories": [self._stories[key].to_dict() for key in sorted(self._stories)],
            "assigned": list(self._assigned.items()),
        }
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")

    @classmethod
    def restore(cls, data: bytes | str, config: ClusterConfig | None = None) -> StoryClusterer:
        """A clusterer from `snapshot()`; `config` overrides the snapshot's own (for example new thresholds)."""
        try:
            parsed = json.loads(data)
            if parsed.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"snapshot version {parsed.get('version')!r}, expected {SNAPSHOT_VERSION}")
            clusterer = cls(config or ClusterConfig(**parsed["config"]))
            for item in parsed["stories"]:
                state = StoryState.from_dict(item)
                clusterer._stories[state.story_id] = state
                clusterer._set_row(state)
            for article_id, story_id in parsed["assigned"]:
                clusterer._remember(str(article_id), str(story_id))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a story clusterer snapshot: {exc!r}") from exc
        return clusterer

    def assign_all(self, candidates: Iterable[Candidate]) -> list[Assignment]:
        return [self.assign(candidate) for candidate in candidates]
