"""`common.stats.StatsStore` against a real Redis: what the worker writes is what the consumer reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from common.settings import RedisSettings
from common.stats import SentimentCounts, StatsStore, entity_member

pytestmark = pytest.mark.integration

T0 = 1_700_000_100  # a multiple of 300


async def test_sentiment_windows_merge_into_buckets(redis: Redis, redis_settings: RedisSettings) -> None:
    store = StatsStore(redis, prefix=redis_settings.key_prefix, ttl_seconds=10**9)
    await store.put_sentiment(T0, "bbc", SentimentCounts(positive=2, negative=1, score_sum=0.5))
    await store.put_sentiment(T0, "cnn", SentimentCounts(neutral=1))
    await store.put_sentiment(T0 + 300, "bbc", SentimentCounts(negative=1, score_sum=-0.8))
    # a second publication of a window replaces, never adds
    await store.put_sentiment(T0, "cnn", SentimentCounts(neutral=2, score_sum=0.2))

    all_sources = await store.sentiment(T0, T0 + 600)
    assert [(b.start.timestamp(), b.count, b.source) for b in all_sources] == [(T0, 5, None), (T0 + 300, 1, None)]
    assert all_sources[0].positive == 2 and all_sources[0].neutral == 2 and all_sources[0].negative == 1
    assert all_sources[0].mean_score == pytest.approx(0.7 / 5)

    bbc = await store.sentiment(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 600, UTC), source="bbc")
    assert [b.count for b in bbc] == [3, 1]
    assert [b.mean_score for b in bbc] == pytest.approx([0.5 / 3, -0.8])

    per_source = await store.sentiment(T0, T0 + 600, by_source=True)
    assert [(b.start.timestamp(), b.source, b.count) for b in per_source] == [
        (T0, "bbc", 3),
        (T0, "cnn", 2),
        (T0 + 300, "bbc", 1),
    ]
    merged = await store.sentiment(T0 - 1200, T0 + 1200, bucket=1800)
    assert len(merged) == 1 and merged[0].count == 6
    assert await store.sentiment(T0 + 600, T0 + 900) == []
    with pytest.raises(ValueError, match="multiple"):
        await store.sentiment(T0, T0 + 600, bucket=60)


async def test_trends_read_the_window_ending_now(redis: Redis, redis_settings: RedisSettings) -> None:
    store = StatsStore(redis, prefix=redis_settings.key_prefix)
    now = 1_700_000_130.0
    start = 1_700_000_100 - 900 + 60
    # one-minute buckets: the window is the sum of the 15 that end with the current minute
    await store.put_trends(
        "keyword",
        {(start, "election"): 3, (start, "storm"): 1, (start + 60, "election"): 2, (start - 60, "old"): 50},
    )
    await store.put_trends("entity", {(start, entity_member("Reuters", "ORG")): 2})
    snap = await store.trends(now=now, limit=1)
    assert snap.window_start.timestamp() == start and snap.window_minutes == 15
    assert [(i.term, i.count) for i in snap.keywords] == [("election", 5)]
    assert [(i.term, i.type, i.count) for i in snap.entities] == [("Reuters", "ORG", 2)]
    wide = await store.trends(now=now, limit=10)
    assert [(i.term, i.count) for i in wide.keywords] == [("election", 5), ("storm", 1)]  # "old" left the window
    assert not await store._redis.keys(f"{redis_settings.key_prefix}stats:trends:sum:*")  # no scratch key left
    with pytest.raises(ValueError):
        await store.trends(window_minutes=5)
