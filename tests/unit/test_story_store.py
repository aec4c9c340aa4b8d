"""Stories without services: importance from coverage (the documented formula, term by term), the
coverage summary kept beside each story, cursors, and the `story_update` frame."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.messages import SERVER_MESSAGES, StoryUpdateMessage
from common.stories import Story
from common.story_store import (
    STORY_CURSOR_PATTERNS,
    Coverage,
    InvalidStoryCursor,
    RankedStory,
    _decode,
    _encode_recent,
    _encode_score,
    ranked_json,
    story_score,
)
from consumer.ranking import TOP_CURSOR_PATTERN

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def story(
    sources: dict[str, int],
    *,
    last_seen: datetime = NOW,
    timeline: list[tuple[datetime, int]] | None = None,
    sid: str = "a" * 32,
    **extra: Any,
) -> Story:
    count = sum(sources.values())
    timeline = timeline or [(last_seen.replace(minute=0, second=0), count)]
    return Story.model_validate(
        {
            "id": sid,
            "title": "A story",
            "language": "en",
            "first_seen": min(t for t, _ in timeline).isoformat(),
            "last_seen": last_seen.isoformat(),
            "article_count": count,
            "source_count": len(sources),
            "sources": sources,
            "languages": {"en": count},
            "entities": [],
            "keywords": [],
            "sentiment": {"neutral": count},
            "timeline": [{"start": t.isoformat(), "count": c} for t, c in timeline],
            "active": True,
            **extra,
        },
        strict=False,
    )


def score(s: Story, now: datetime = NOW) -> float:
    return story_score(Coverage.of(s), now.timestamp())


def test_formula_term_by_term() -> None:
    # One source, one article, seen now: base = 1 + 2 ln 2 + ln 1 + ln 2 * (1 + 1).
    one = story({"A": 1})
    assert score(one) == round(math.log2(1 + 2 * math.log(2) + 2 * math.log(2)), 6)
    # Four sources with equal shares, all recent: effective sources 4.
    four = story({"A": 2, "B": 2, "C": 2, "D": 2})
    base = 1 + 2 * math.log(5) + math.log(4) + math.log(9) * 2
    assert score(four) == round(math.log2(base), 6)
    # Every 12 hours without an article costs one point.
    old = story({"A": 2, "B": 2, "C": 2, "D": 2}, last_seen=NOW - timedelta(hours=30))
    base_old = 1 + 2 * math.log(5) + math.log(4)  # nothing in the last 6 hours: no growth term
    assert score(old) == round(math.log2(base_old) - 30 / 12, 6)


def test_more_sources_diversity_growth_and_recency_each_raise_the_score() -> None:
    assert score(story({"A": 1, "B": 1, "C": 1})) > score(story({"A": 1, "B": 1})) > score(story({"A": 1}))
    # Same articles and outlets: evenly spread beats one outlet re-posting.
    assert score(story({"A": 5, "B": 5})) > score(story({"A": 9, "B": 1}))
    # Same size: growing now beats coverage that was all yesterday (and seen as recently).
    growing = story({"A": 5, "B": 5}, timeline=[(NOW - timedelta(days=1), 2), (NOW.replace(minute=0), 8)])
    stale = story({"A": 5, "B": 5}, timeline=[(NOW - timedelta(days=1), 8), (NOW.replace(minute=0), 2)])
    assert score(growing) > score(stale)
    assert score(story({"A": 1}), NOW) > score(story({"A": 1}), NOW + timedelta(hours=1))
    # Deterministic, and an old story still ranks (no underflow to a tie).
    ancient = story({"A": 1}, last_seen=NOW - timedelta(days=900))
    older = story({"A": 1}, last_seen=NOW - timedelta(days=901))
    assert score(ancient) == score(ancient) > score(older)
    # A last_seen in the future is not a bonus.
    assert score(story({"A": 1}, last_seen=NOW + timedelta(hours=5)), NOW) == score(story({"A": 1}))


def test_coverage_round_trips_and_ranked_json_is_a_ranked_story() -> None:
    s = story({"A": 3, "B": 1}, duplicate_count=2)
    assert Coverage.loads(Coverage.of(s).dumps()) == Coverage.of(s)
    ranked = RankedStory.model_validate_json(ranked_json(s.model_dump_json(), 1.25))
    assert ranked.score == 1.25 and ranked.id == s.id and ranked.duplicate_count == 2


def test_cursors_round_trip_and_say_their_order() -> None:
    recent = _encode_recent("1714567890.5", "b" * 32)
    by_score = _encode_score(NOW.timestamp(), -3.25e-7, "c" * 32)
    assert re.fullmatch(STORY_CURSOR_PATTERNS["recent"], recent)
    assert re.fullmatch(STORY_CURSOR_PATTERNS["score"], by_score)
    assert _decode("recent", recent) == ["1714567890.5", "b" * 32]
    assert _decode("score", by_score)[2] == "c" * 32
    with pytest.raises(InvalidStoryCursor, match="score order"):
        _decode("recent", by_score)
    with pytest.raises(InvalidStoryCursor, match="not a cursor"):
        _decode("score", "t_1.0_" + "a" * 32)
    # /news/top takes its own story cursor and the seed's article cursor, nothing else.
    assert re.fullmatch(TOP_CURSOR_PATTERN, "ts_1.5_2.25_" + "d" * 32)
    assert re.fullmatch(TOP_CURSOR_PATTERN, "t_7.5_" + "d" * 32)
    assert not re.fullmatch(TOP_CURSOR_PATTERN, "r_7.5_" + "d" * 32)


def test_story_update_frame_is_the_message_model() -> None:
    s = story({"A": 1})
    frame = StoryUpdateMessage.frame_raw(s.model_dump_json(), s.id, created=True)
    parsed = SERVER_MESSAGES.validate_json(frame)
    assert isinstance(parsed, StoryUpdateMessage) and parsed.data == s and parsed.created
    assert json.loads(frame) == json.loads(StoryUpdateMessage(data=s, article_id=s.id, created=True).frame())
    dup = StoryUpdateMessage.frame_raw(s.model_dump_json(), "e" * 32, created=False, duplicate_of=s.id)
    assert json.loads(dup)["duplicate_of"] == s.id
