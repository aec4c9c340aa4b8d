"""The suite's Kafka topics as typed objects: each knows its value model, how records are keyed, and how to
encode and decode them, so no call site repeats the key encoding or the validation.

    topics = Topics.of(settings.kafka.topics)
    key, value = topics.raw.encode(article)         # bytes for any Kafka client (aiokafka, faust)
    article = topics.raw.decode(message.value)      # RawArticle, or InvalidMessage with the reason
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from common.errors import InvalidMessage
from common.schemas import STORED, TEXT_ONLY, AnalyzedArticle, ArticleBase, DeadLetter, RawArticle
from common.settings import TopicNames
from common.stories import StoryUpdate

__all__ = ["Record", "Topic", "Topics"]

M = TypeVar("M", bound=BaseModel)

_REASON_MAX = 2_000  # characters of a validation error kept in a dead letter


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as bytes: what every client sends."""

    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Topic(Generic[M]):
    """One topic: its full name, its value model and its key."""

    name: str
    model: type[M]
    key_of: Callable[[M], str | None]
    # Validation context when decoding; the suite's own topics carry text it already normalised, which
    # must never be parsed as markup a second time (see common.schemas.TEXT_ONLY).
    context: dict[str, Any] | None = None

    def key(self, value: M) -> bytes | None:
        key = self.key_of(value)
        return None if key is None else key.encode("utf-8")

    def encode(self, value: M) -> Record:
        # model_dump_json returns str; pydantic-core's to_json gives the same JSON as bytes without a copy.
        return Record(self.key(value), self.model.__pydantic_serializer__.to_json(value))

    def decode(self, value: bytes | bytearray | None) -> M:
        """The record's value as the topic's model; `InvalidMessage` (with `kind` and the reason) otherwise."""
        if not value:
            raise InvalidMessage("empty message", kind="empty")
        try:
            return self.model.model_validate_json(value, context=self.context)
        except ValidationError as exc:
            kind = "not_json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "invalid"
            raise InvalidMessage(str(exc)[:_REASON_MAX], kind=kind) from exc

    @staticmethod
    def decode_key(key: bytes | None) -> str | None:
        return None if key is None else key.decode("utf-8", "replace")


def _article_id(article: ArticleBase) -> str:
    return article.id


def _original_key(letter: DeadLetter) -> str | None:
    return letter.original_key


def _language(article: AnalyzedArticle) -> str:
    return article.analysis.language


def _story_id(update: StoryUpdate) -> str:
    return update.story.id


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one deployment (the names carry its prefix)."""

    raw: Topic[RawArticle]
    analyzed: Topic[AnalyzedArticle]
    dead_letters: Topic[DeadLetter]
    story_input: Topic[AnalyzedArticle]
    stories: Topic[StoryUpdate]

    @classmethod
    def of(cls, names: TopicNames) -> Topics:
        return cls(
            raw=Topic(names.raw_topic, RawArticle, _article_id, TEXT_ONLY),
            # Written only by the worker, from an article it validated and normalised: read with STORED, which
            # checks types and limits but skips the text pass (it showed in the consumer's profile, per article).
            analyzed=Topic(names.analyzed_topic, AnalyzedArticle, _article_id, STORED),
            dead_letters=Topic(names.dlq_topic, DeadLetter, _original_key),
            story_input=Topic(names.full(names.story_input), AnalyzedArticle, _language, STORED),
            stories=Topic(names.full(names.stories), StoryUpdate, _story_id),
        )

    def names(self) -> list[str]:
        return [t.name for t in (self.raw, self.analyzed, self.dead_letters, self.story_input, self.stories)]
