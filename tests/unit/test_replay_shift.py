"""--shift-to-now: the corpus's dates move so that the newest is now, gaps kept, day-only dates spread over the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from producer.replay import shifted_dates

NOW = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


def test_distinct_dates_keep_their_gaps_and_the_newest_is_now() -> None:
    dates = [
        datetime(2017, 3, 1, 10, tzinfo=UTC),
        datetime(2017, 3, 1, 12, tzinfo=UTC),
        datetime(2017, 3, 2, tzinfo=UTC),
    ]
    moved = shifted_dates(dates, NOW)
    assert moved[-1] == NOW
    assert [b - a for a, b in zip(moved, moved[1:], strict=False)] == [timedelta(hours=2), timedelta(hours=12)]


def test_a_days_articles_are_spread_over_the_day_in_corpus_order() -> None:
    day1, day2 = datetime(2017, 3, 1, tzinfo=UTC), datetime(2017, 3, 2, tzinfo=UTC)
    moved = shifted_dates([day1] * 4 + [day2] * 2, NOW)
    assert moved[:4] == [NOW - timedelta(hours=36) + timedelta(hours=6 * k) for k in range(4)]
    assert moved[4:] == [NOW - timedelta(hours=12), NOW]  # the newest day spreads over the gap before it
    assert moved == sorted(moved) and len(set(moved)) == len(moved)


def test_one_date_or_none() -> None:
    assert shifted_dates([], NOW) == []
    assert shifted_dates([datetime(2017, 3, 1, tzinfo=UTC)] * 3, NOW) == [NOW] * 3
