"""The story stage in a real worker process over real Kafka and Redis: analysed real articles (synthetic
embeddings around a few dozen topics, some re-posted texts) on `news.stories.in`, story updates read back
from `news.stories` and compared with the batch function's own answer in one process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common.settings import KafkaSettings
from common.stories import StoryUpdate
from common.topics import Topics
from harness.processes import ServiceProcess
from tests.support.worker_support import (
    analysed_with_embeddings,
    fake_inference,
    produce,
    read_topic,
    story_reference,
)

pytestmark = pytest.mark.integration

ENV = {"WORKER__STORY_BATCH_SIZE": "20", "WORKER__BATCH_TIMEOUT": "0.2", "WORKER__SESSION_TIMEOUT": "6"}


def assignments(updates: list[StoryUpdate]) -> dict[str, tuple[str, str | None]]:
    """article -> (story, duplicate_of), from the updates that assigned an article (closed ones excluded)."""
    return {u.article_id: (u.story.id, u.duplicate_of) for u in updates if u.story.active}


def per_story(updates: list[StoryUpdate]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for update in updates:
        out.setdefault(update.story.id, []).append(update.model_dump())
    return out


def decoded(topics: Topics, records: list[Any]) -> list[StoryUpdate]:
    return [topics.stories.decode(r.value) for r in records]


async def test_worker_assigns_stories_and_duplicates(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    topics = Topics.of(kafka_settings.topics)
    articles = analysed_with_embeddings(120)
    reference = await story_reference(articles, topics)
    expected = assignments(reference)
    server = fake_inference()
    try:
        spawn("worker", env={**ENV, "WORKER__INFERENCE_URL": server.url})
        await produce(
            kafka_settings, topics.story_input.name, [(b"en", topics.story_input.encode(a).value) for a in articles]
        )
        records = await read_topic(
            kafka_settings,
            topics.stories.name,
            until=lambda rs: len(rs) >= len(reference),
            timeout=90,
        )
    finally:
        server.stop()
    got = decoded(topics, records)
    assert assignments(got) == expected
    # Same updates, in the same order per story (the topic is keyed by story id: ordered per partition only).
    assert per_story(got) == per_story(reference)
    assert all(r.key == u.story.id.encode() for r, u in zip(records, got, strict=True))
    multi = {u.story.id for u in got if u.story.source_count >= 2}
    dups = [u for u in got if u.duplicate_of]
    assert len(multi) >= 5 and len(dups) >= 5, (len(multi), len(dups))
    assert all(not u.created and u.story.duplicate_count >= 1 for u in dups)
