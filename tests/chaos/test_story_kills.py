"""SIGKILL the worker while its story stage is mid-stream, restart it: every article is in exactly one story, no
story starts twice, and the assignments are those of an uninterrupted run (the batch function in one process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

ENV = {
    "WORKER__STORY_BATCH_SIZE": "5",  # many small batches: the kill lands between produce and commit
    "WORKER__BATCH_TIMEOUT": "0.2",
    "WORKER__SESSION_TIMEOUT": "6",
    "WORKER__STORY_CHECKPOINT_RECORDS": "60",  # the restart restores a checkpoint, then replays or skips
}


async def test_story_stage_sigkill_gives_no_duplicate_story(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    topics = Topics.of(kafka_settings.topics)
    articles = analysed_with_embeddings(600)
    reference = await story_reference(articles, topics)
    server = fake_inference()
    env = {**ENV, "WORKER__INFERENCE_URL": server.url}
    try:
        worker = spawn("worker", env=env)
        await produce(
            kafka_settings, topics.story_input.name, [(b"en", topics.story_input.encode(a).value) for a in articles]
        )
        first = await read_topic(kafka_settings, topics.stories.name, until=lambda rs: len(rs) >= 150, timeout=90)
        worker.kill()  # SIGKILL mid-stream: produced, not all committed, not all checkpointed
        assert len(first) < len(reference), "the stage finished before it could be killed: use more articles"
        spawn("worker", env=env)
        got_records: list[Any] = []

        def complete(records: list[Any]) -> bool:
            got_records[:] = records
            seen = {topics.stories.decode(r.value).article_id for r in records}
            return all(u.article_id in seen for u in reference)

        await read_topic(kafka_settings, topics.stories.name, until=complete, timeout=120)
    finally:
        server.stop()
    got: list[StoryUpdate] = [topics.stories.decode(r.value) for r in got_records]
    assigned = [u for u in got if u.story.active]
    # Every article is in exactly one story, whatever was produced twice around the kill.
    stories_of: dict[str, set[str]] = {}
    for update in assigned:
        stories_of.setdefault(update.article_id, set()).add(update.story.id)
    assert all(len(s) == 1 for s in stories_of.values()), {a: s for a, s in stories_of.items() if len(s) > 1}
    # A story id is only ever started by its own first article.
    assert all(u.story.id == u.article_id for u in assigned if u.created)
    # The same story sets as the uninterrupted run.
    expected = {u.article_id: (u.story.id, u.duplicate_of) for u in reference if u.story.active}
    actual = {u.article_id: (u.story.id, u.duplicate_of) for u in assigned}
    assert actual == expected
    # Re-produced updates around the kill are identical copies, never a different version of a story step.
    by_step: dict[tuple[str, str], set[bytes]] = {}
    for update in assigned:
        by_step.setdefault((update.story.id, update.article_id), set()).add(update.model_dump_json().encode())
    assert all(len(v) == 1 for v in by_step.values())
