"""What a user sees of a story (issue 15): many articles about one event, grouped by the story stage.

Declared once here, like the article models in `common.schemas`: the story stage produces `StoryUpdate`
records, the consumer stores and serves `Story`, and the dashboard's types are generated from these models.

A story's `id` is the id of its first article (see `stream_worker.stories.cluster`), so the same input gives
the same id on every replica and after every restart. Everything here is a bounded summary: the article ids
themselves live with the articles (each stored article names its story), not in this record.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.schemas import SENTIMENTS, UtcDatetime

__all__ = [
    "MAX_SOURCES",
    "STORY_SCHEMA_VERSION",
    "TIMELINE_BUCKET_SECONDS",
    "TIMELINE_MAX_BUCKETS",
    "TOP_ENTITIES",
    "TOP_KEYWORDS",
    "SentimentMix",
    "Story",
    "StoryEntity",
    "StoryUpdate",
    "TimelineBucket",
]

STORY_SCHEMA_VERSION = 1
TIMELINE_BUCKET_SECONDS = 3_600
"""A story's volume timeline counts articles per hour (by publication time)."""
TIMELINE_MAX_BUCKETS = 168
"""At most a week of hourly buckets: the newest are kept (a story that idles for its window stops growing)."""
TOP_ENTITIES = 20
TOP_KEYWORDS = 20
MAX_SOURCES = 100


class _Frozen(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class StoryEntity(_Frozen):
    """A canonical entity (`Entity.id`) and how many of the story's articles name it."""

    id: Annotated[str, Field(min_length=1, max_length=240)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    type: Annotated[str, Field(min_length=1, max_length=32)]
    count: Annotated[int, Field(ge=1)]


class TimelineBucket(_Frozen):
    """Articles published in the hour that starts at `start` (UTC)."""

    start: UtcDatetime
    count: Annotated[int, Field(ge=1)]


class SentimentMix(_Frozen):
    """How many of the story's articles read positive, neutral and negative, and their mean score (-1..1)."""

    positive: Annotated[int, Field(ge=0)] = 0
    neutral: Annotated[int, Field(ge=0)] = 0
    negative: Annotated[int, Field(ge=0)] = 0
    mean_score: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0


class Story(_Frozen):
    """One story as the API serves it."""

    schema_version: Literal[1] = 1  # STORY_SCHEMA_VERSION
    id: Annotated[str, Field(min_length=1, max_length=64, description="the id of the story's first article")]
    title: Annotated[str, Field(min_length=1, max_length=500, description="the member title nearest the centroid")]
    language: Annotated[str, Field(min_length=2, max_length=16)]
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    article_count: Annotated[int, Field(ge=1)]
    source_count: Annotated[int, Field(ge=1)]
    sources: Annotated[
        dict[str, int], Field(max_length=MAX_SOURCES, description="articles per source, the largest kept")
    ]
    languages: dict[str, int]
    entities: Annotated[list[StoryEntity], Field(max_length=TOP_ENTITIES, description="most named first")]
    keywords: Annotated[list[str], Field(max_length=TOP_KEYWORDS, description="most frequent first")]
    sentiment: SentimentMix
    timeline: Annotated[list[TimelineBucket], Field(max_length=TIMELINE_MAX_BUCKETS, description="oldest first")]
    active: bool = Field(description="false once the story stopped accepting articles (idle past its window)")
    duplicate_count: Annotated[int, Field(ge=0, description="near-duplicate copies seen (not in article_count)")] = 0

    @model_validator(mode="after")
    def _consistent(self) -> Story:
        if self.last_seen < self.first_seen:
            raise ValueError("last_seen is before first_seen")
        if self.source_count < len(self.sources):
            raise ValueError("source_count is smaller than the sources listed")
        mix = self.sentiment
        if mix.positive + mix.neutral + mix.negative > self.article_count:
            raise ValueError("sentiment counts exceed article_count")
        return self


class StoryUpdate(_Frozen):
    """What the story stage produces per assigned article (topic of story updates, keyed by `story.id`).

    `article_id` joined `story` (`created`: it started it), with cosine `similarity` to the story (1.0 for the
    first article). The last update per story id is the story's current state, so the topic can be compacted.
    """

    schema_version: Literal[1] = 1
    article_id: Annotated[str, Field(min_length=1, max_length=64)]
    created: bool
    similarity: Annotated[float, Field(ge=-1.0, le=1.0)]
    story: Story
    # Set when the article is a near-duplicate (a copy or light rewrite) of this earlier article: it is stored
    # and counted in `story.duplicate_count`, never announced as a new story.
    duplicate_of: Annotated[str | None, Field(min_length=1, max_length=64)] = None

    @model_validator(mode="after")
    def _first_article(self) -> StoryUpdate:
        if self.created and self.story.id != self.article_id:
            raise ValueError("a created story takes the id of the article that started it")
        if self.created and self.duplicate_of is not None:
            raise ValueError("a near-duplicate never starts a story")
        return self


# A sentiment label that the Story's mix does not count would be lost silently: keep the two in step.
if set(SENTIMENTS) != set(SentimentMix.model_fields) - {"mean_score"}:  # pragma: no cover
    raise RuntimeError("SentimentMix must count every label in common.schemas.SENTIMENTS")
