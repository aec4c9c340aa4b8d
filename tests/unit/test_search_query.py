"""The search query as data: parameters, the body sent to OpenSearch, cursors, interval choice, parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from common.search_index import SEARCH_FIELDS
from common.search_query import (
    CURSOR_PATTERN,
    MAX_BUCKETS,
    InvalidCursor,
    SearchParams,
    build_query,
    choose_interval,
    decode_cursor,
    encode_cursor,
    parse_result,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def test_text_and_filters() -> None:
    body = build_query(
        SearchParams(q=' "white house" -trump ', source="BBC", lang="EN", sentiment="negative", entity="org:acme")
    )
    (text,) = body["query"]["bool"]["must"]
    assert text["simple_query_string"]["query"] == '"white house" -trump'
    assert text["simple_query_string"]["fields"] == SEARCH_FIELDS
    assert text["simple_query_string"]["default_operator"] == "and"
    filters = body["query"]["bool"]["filter"]
    assert {"term": {"source": "BBC"}} in filters  # the field's normalizer folds case
    assert {"term": {"language": "en"}} in filters
    assert {"term": {"sentiment": "negative"}} in filters
    assert body["sort"] == [{"_score": "desc"}, {"published_at": "desc"}, {"id": "asc"}]
    assert body["track_total_hits"] is True
    assert set(body["aggs"]) == {"source", "language", "category", "sentiment", "entity", "histogram"}
    assert body["highlight"]["encoder"] == "html"


def test_empty_query_matches_everything_without_highlights() -> None:
    body = build_query(SearchParams(q="   "))
    assert body["query"]["bool"]["must"] == [{"match_all": {}}]
    assert "highlight" not in body


def test_naive_dates_are_utc_and_the_range_is_half_open() -> None:
    p = SearchParams(since=datetime(2024, 5, 1), until=datetime(2024, 5, 2))
    assert p.since == T0
    window = build_query(p)["query"]["bool"]["filter"][0]["range"]["published_at"]
    assert window == {"gte": T0.isoformat(), "lt": (T0 + timedelta(days=1)).isoformat()}


def test_dates_reach_the_engine_in_utc_whatever_their_offset() -> None:
    # ISO 8601 allows offsets beyond +-18:00 (found by schemathesis); OpenSearch refuses them, so the
    # query carries UTC, clamped at the calendar's ends.
    p = SearchParams(
        since=datetime.fromisoformat("0136-08-26T13:33:49.567882-18:43"),
        until=datetime.fromisoformat("0001-01-01T00:00:00+05:00"),
    )
    window = build_query(p)["query"]["bool"]["filter"][0]["range"]["published_at"]
    assert window == {"gte": "0136-08-27T08:16:49.567882+00:00", "lt": "0001-01-01T00:00:00+00:00"}


@pytest.mark.parametrize(
    ("span", "interval"),
    [(timedelta(hours=5), "hour"), (timedelta(days=20), "hour"), (timedelta(days=30), "day"),
     (timedelta(days=400), "day"), (timedelta(days=3000), "week"), (timedelta(days=40_000), "month")],
)  # fmt: skip
def test_interval_keeps_the_histogram_small(span: timedelta, interval: str) -> None:
    assert choose_interval(T0, T0 + span) == interval


def test_histogram_bounds_only_when_the_range_is_known() -> None:
    known = build_query(SearchParams(since=T0, until=T0 + timedelta(days=2)))["aggs"]["histogram"]
    assert known["date_histogram"]["calendar_interval"] == "1h"
    assert known["date_histogram"]["min_doc_count"] == 0 and "extended_bounds" in known["date_histogram"]
    open_range = build_query(SearchParams())["aggs"]["histogram"]
    assert "auto_date_histogram" in open_range
    # An interval asked for over a range too long for empty buckets: only the non-empty ones.
    wide = build_query(SearchParams(since=T0, until=T0 + timedelta(hours=MAX_BUCKETS + 1), interval="hour"))
    assert wide["aggs"]["histogram"]["date_histogram"]["min_doc_count"] == 1
    # A reversed range is accepted (it matches nothing), never an engine error.
    reversed_range = build_query(SearchParams(since=T0 + timedelta(days=1), until=T0))
    assert "auto_date_histogram" in reversed_range["aggs"]["histogram"]


@pytest.mark.parametrize("score", [1.0, 12.345678, 3.4e-05, 0.0])
def test_cursor_round_trips(score: float) -> None:
    sort = [score, 1714567890123, "a" * 32]
    cursor = encode_cursor(sort)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == sort
    assert build_query(SearchParams(after=cursor))["search_after"] == sort


def test_bad_parameters_are_refused() -> None:
    for bad in ({"q": "x" * 501}, {"q": "a\x00b"}, {"size": 0}, {"size": 101}, {"after": "nope"}):
        with pytest.raises(ValidationError):
            SearchParams(**bad)
    with pytest.raises(InvalidCursor):
        decode_cursor("1.0_x_" + "a" * 32)


def _hit(i: int, score: float) -> dict[str, Any]:
    return {
        "_score": score,
        "sort": [score, 1714567890000 + i, f"{i:032x}"],
        "_source": {
            "id": f"{i:032x}",
            "url": f"https://example.com/{i}",
            "title": f"Story {i}",
            "source": "BBC",
            "language": "en",
            "category": "world",
            "sentiment": "neutral",
            "sentiment_score": 0.0,
            "importance_score": 1.0,
            "published_at": "2024-05-01T12:00:00+00:00",
        },
        "highlight": {"title.en": ["<mark>Story</mark> 1"], "content": ["a <mark>story</mark>"]},
    }


def test_parse_result_pages_and_highlights() -> None:
    p = SearchParams(q="story", size=2)
    answer = {
        "hits": {"total": {"value": 3}, "hits": [_hit(1, 2.0), _hit(2, 1.5)]},
        "aggregations": {
            "source": {"buckets": [{"key": "bbc", "doc_count": 3}]},
            "histogram": {
                "interval": "1d",
                "buckets": [{"key": 1714521600000, "doc_count": 3, "mean_sentiment": {"value": 0.25}}],
            },
        },
    }
    result = parse_result(p, answer)
    assert result.total == 3 and [h.score for h in result.hits] == [2.0, 1.5]
    assert result.hits[0].highlights == {"title": ["<mark>Story</mark> 1"], "content": ["a <mark>story</mark>"]}
    assert result.next_cursor == encode_cursor([1.5, 1714567890002, f"{2:032x}"])
    assert result.facets.source[0].value == "bbc" and result.facets.entity == []
    assert result.interval == "1d" and result.histogram[0].mean_sentiment == 0.25
    # A short page is the last one.
    last = parse_result(p, {"hits": {"total": {"value": 1}, "hits": [_hit(3, 1.0)]}, "aggregations": {}})
    assert last.next_cursor is None


def test_the_analysis_that_marks_most_is_shown() -> None:
    from common.search_query import _highlights

    raw = {
        "title": ["<mark>Central</mark> banks hold rates"],
        "title.en": ["<mark>Central</mark> <mark>banks</mark> hold rates"],
        "content_cjk": ["<mark>삼성전자가</mark> 발표했다"],
        "content": ["삼성전자가 발표했다"],
    }
    shown = _highlights(raw)
    assert shown == {"title": raw["title.en"], "content": raw["content_cjk"]}
    # a tie keeps the exact words
    assert _highlights({"title": ["<mark>a</mark>"], "title.en": ["<mark>b</mark>"]}) == {"title": ["<mark>a</mark>"]}


def test_every_cursor_the_pattern_admits_is_finite() -> None:
    import math

    from common.search_query import CURSOR_PATTERN, decode_cursor

    largest = "9" * 20 + "." + "9" * 20 + "e99_-1_" + "a" * 32
    assert math.isfinite(decode_cursor(largest)[0])
    assert re.fullmatch(CURSOR_PATTERN, "77780295.9019947725e799_-8257886498449_" + "5c" * 16) is None
    assert math.isfinite(decode_cursor("1.5e-45_0_" + "b" * 32)[0])
