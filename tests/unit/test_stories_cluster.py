"""Unit tests of the online story clusterer (stream_worker.stories.cluster) and the Story wire shape.

Embeddings are built here so that their cosines are known; the measured check on real articles is
`python -m training.eval_stories`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from common.schemas import Analysis, AnalyzedArticle, Entity
from common.stories import Story, StoryUpdate
from common.vectors import pack
from stream_worker.stories.cluster import Candidate, ClusterConfig, EntityRef, StoryClusterer

T0 = datetime(2017, 3, 1, 8, tzinfo=UTC)
DIM = 64


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def near(base: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """A unit vector at exactly `cosine` to `base`."""
    noise = unit(seed)
    noise = noise - float(noise @ base) * base
    noise /= np.linalg.norm(noise)
    vector = cosine * base + np.sqrt(1 - cosine**2) * noise
    out: np.ndarray = (vector / np.linalg.norm(vector)).astype(np.float32)
    return out


def cand(
    article_id: str,
    vector: np.ndarray,
    hours: float = 0.0,
    entities: tuple[str, ...] = (),
    source: str = "BBC",
    sentiment: str = "negative",
) -> Candidate:
    return Candidate(
        article_id=article_id,
        published_at=T0 + timedelta(hours=hours),
        title=f"title of {article_id}",
        source=source,
        language="en",
        space="minilm",
        vector=vector,
        entities=tuple(EntityRef(e, e.split(":")[-1], "ORG") for e in entities),
        keywords=("kim jong nam", "malaysia"),
        sentiment=sentiment,
        sentiment_score=-0.5,
    )


def test_two_reports_of_one_event_join_and_an_unrelated_one_does_not() -> None:
    event = unit(1)
    clusterer = StoryClusterer()
    first = clusterer.assign(cand("a1", event, source="BBC"))
    second = clusterer.assign(cand("a2", near(event, 0.8, 2), hours=3, source="CNN"))
    other = clusterer.assign(cand("b1", unit(99), hours=4))
    assert first.created and first.story_id == "a1"
    assert not second.created and second.story_id == "a1"
    assert second.similarity == pytest.approx(0.8, abs=0.02)
    assert other.created and other.story_id == "b1"
    state = clusterer.story("a1")
    assert state.article_count == 2 and state.sources == {"BBC": 1, "CNN": 1}


def test_middling_similarity_joins_only_with_a_shared_canonical_entity() -> None:
    config = ClusterConfig(join_similarity=0.7, entity_similarity=0.4)
    event = unit(3)
    clusterer = StoryClusterer(config)
    clusterer.assign(cand("a1", event, entities=("person:kim_jong_nam",)))
    without = clusterer.assign(cand("a2", near(event, 0.55, 4), hours=1, entities=("loc:paris",)))
    with_entity = clusterer.assign(cand("a3", near(event, 0.55, 5), hours=1, entities=("person:kim_jong_nam",)))
    assert without.created and without.story_id == "a2"
    assert with_entity.story_id == "a1" and not with_entity.created


def test_a_story_stops_accepting_after_its_idle_window_and_ages_out() -> None:
    config = ClusterConfig(idle_hours=24)
    event = unit(6)
    clusterer = StoryClusterer(config)
    clusterer.assign(cand("a1", event))
    assert clusterer.assign(cand("a2", near(event, 0.9, 7), hours=20)).story_id == "a1"
    late = clusterer.assign(cand("a3", near(event, 0.9, 8), hours=20 + 25))
    assert late.created and late.story_id == "a3"
    gone = clusterer.expire(T0 + timedelta(hours=20 + 24 + 1))
    assert [s.story_id for s in gone] == ["a1"] and gone[0].article_count == 2
    assert clusterer.stories() == ["a3"]
    with pytest.raises(KeyError):
        clusterer.story("a1")


def test_the_id_is_the_first_articles_and_reassigning_is_idempotent() -> None:
    event = unit(9)
    clusterer = StoryClusterer()
    clusterer.assign(cand("first", event))
    joined = clusterer.assign(cand("second", near(event, 0.9, 10), hours=1))
    again_first = clusterer.assign(cand("first", event))
    again_second = clusterer.assign(cand("second", near(event, 0.9, 10), hours=1))
    assert (again_first.story_id, again_first.created) == ("first", True)
    assert (again_second.story_id, again_second.created) == (joined.story_id, False) == ("first", False)
    assert clusterer.story("first").article_count == 2
    assert clusterer.stories() == ["first"]


def test_snapshot_and_restore_give_the_same_subsequent_assignments() -> None:
    events = [unit(100 + i) for i in range(6)]
    stream = [
        cand(f"x{i}", near(events[i % 6], 0.75, 200 + i), hours=i * 0.5, entities=(f"org:e{i % 6}",)) for i in range(60)
    ]
    reference = StoryClusterer()
    expected = reference.assign_all(stream)
    first_half = StoryClusterer()
    first_half.assign_all(stream[:30])
    restored = StoryClusterer.restore(first_half.snapshot())
    assert restored.snapshot() == first_half.snapshot()
    got = restored.assign_all(stream[30:])
    assert [(a.story_id, a.created, a.similarity) for a in got] == [
        (a.story_id, a.created, a.similarity) for a in expected[30:]
    ]
    assert restored.snapshot() == reference.snapshot()
    assert len({a.story_id for a in expected}) == 6


def test_same_input_order_gives_same_assignments() -> None:
    stream = [cand(f"y{i}", near(unit(i % 4), 0.6, 300 + i), hours=i) for i in range(40)]
    one = [a.story_id for a in StoryClusterer().assign_all(stream)]
    two = [a.story_id for a in StoryClusterer().assign_all(stream)]
    assert one == two


def test_memory_stays_bounded_over_many_articles() -> None:
    config = ClusterConfig(max_stories=50, remembered_articles=500)
    clusterer = StoryClusterer(config)
    evicted = 0
    sizes = []
    for i in range(3_000):
        assignment = clusterer.assign(
            cand(f"z{i}", unit(10_000 + i), hours=i / 100, entities=tuple(f"org:e{i}-{k}" for k in range(5)))
        )
        evicted += len(assignment.evicted)
        if i % 500 == 499:
            sizes.append(len(clusterer.snapshot()))
    assert len(clusterer) == 50
    assert evicted == 3_000 - 50
    assert len(clusterer._assigned) == 500
    assert max(sizes) <= min(sizes) * 1.05  # the snapshot stops growing once the working set is full
    # A story that keeps growing keeps bounded counters.
    big = StoryClusterer()
    event = unit(7)
    for i in range(400):
        big.assign(
            cand(f"g{i}", near(event, 0.95, i), hours=i / 10, source=f"s{i}", entities=(f"org:x{i}", "org:common"))
        )
    state = big.story("g0")
    assert state.article_count == 400 and state.source_total == 400
    assert len(state.sources) < 2 * config.max_sources and len(state.entities) < 2 * config.top_entities
    assert "org:common" in state.entities and len(state.timeline) <= 168


def test_to_story_is_a_valid_wire_story_and_update_checks_the_id() -> None:
    event = unit(11)
    clusterer = StoryClusterer()
    clusterer.assign(cand("s1", event, entities=("person:kim_jong_nam",), source="BBC"))
    clusterer.assign(cand("s2", near(event, 0.9, 12), hours=2, entities=("person:kim_jong_nam",), source="RTE"))
    story = clusterer.story("s1").to_story()
    assert isinstance(story, Story)
    assert story.article_count == 2 and story.source_count == 2 and story.languages == {"en": 2}
    assert story.entities[0].id == "person:kim_jong_nam" and story.entities[0].count == 2
    assert story.sentiment.negative == 2 and story.sentiment.mean_score == pytest.approx(-0.5)
    assert [b.count for b in story.timeline] == [1, 1]
    assert Story.model_validate_json(story.model_dump_json()) == story
    StoryUpdate(article_id="s1", created=True, similarity=1.0, story=story)
    with pytest.raises(ValidationError, match="created story takes the id"):
        StoryUpdate(article_id="s2", created=True, similarity=1.0, story=story)


def test_candidate_of_an_analysed_article_and_bad_input() -> None:
    vector = unit(13)
    analysis = Analysis(
        sentiment="neutral",
        sentiment_score=0.0,
        entities=[Entity(text="BBC", type="ORG", id="org:bbc", name="BBC"), Entity(text="x", type="MISC")],
        language="en",
        models={"embedding": "minilm"},
        embedding=pack(vector),
    )
    article = AnalyzedArticle(
        url="https://example.com/a", title="A title", published_at=T0, source="BBC", analysis=analysis
    )
    candidate = Candidate.of(article)
    assert candidate.space == "minilm" and [e.id for e in candidate.entities] == ["org:bbc"]
    assert float(candidate.vector @ vector) == pytest.approx(1.0, abs=0.01)
    bare = AnalyzedArticle(
        url="https://example.com/b",
        title="B",
        published_at=T0,
        analysis=Analysis(sentiment="neutral", sentiment_score=0.0),
    )
    with pytest.raises(ValueError, match="no embedding"):
        Candidate.of(bare)
    with pytest.raises(ValueError, match="not a story clusterer snapshot"):
        StoryClusterer.restore(b'{"version": 1}')
    with pytest.raises(ValueError, match="snapshot version"):
        StoryClusterer.restore(b'{"version": 99}')
    clusterer = StoryClusterer()
    clusterer.assign(cand("d1", unit(1)))
    before = clusterer.snapshot()
    with pytest.raises(ValueError, match="one clusterer per embedding space"):
        clusterer.assign(cand("d2", np.ones(8, dtype=np.float32) / np.sqrt(8)))
    assert clusterer.snapshot() == before  # refused whole: nothing half-written
