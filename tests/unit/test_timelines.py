"""Entity and keyword timelines (common/timelines.py) on a real Redis: each article counted once, in the
buckets of its publication time, zeros filled, top lists with display names, keys that expire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from common.settings import RedisSettings
from common.timelines import BUCKETS, TimelineStore, bucket_start
from tests.integration.test_store import make_article

NOW = time.time()
HOUR = bucket_start(NOW, 3600)


def at(seconds_after_hour: float) -> datetime:
    return datetime.fromtimestamp(HOUR + seconds_after_hour, UTC)


async def test_counted_once_by_publication_time(redis: Redis, redis_settings: RedisSettings) -> None:
    store = TimelineStore(redis, prefix=redis_settings.key_prefix, ttl_seconds=7 * 86400)
    analysed = datetime.fromtimestamp(NOW, UTC)
    articles = [
        make_article(1, entities=("Acme",), published=at(-3000), analyzed=analysed),
        make_article(2, entities=("Acme", "Zeta"), published=at(-3000), analyzed=analysed),
        make_article(3, entities=("ACME",), published=at(0), analyzed=analysed),
        # Claims the future: counted at its analysis time.
        make_article(4, entities=("Acme",), published=analysed + timedelta(days=2), analyzed=analysed),
        # Older than the retention: not counted.
        make_article(5, entities=("Acme",), published=analysed - timedelta(days=8), analyzed=analysed),
    ]
    counted = await store.count_batch(articles, now=NOW)
    assert [c.article.id for c in counted] == [a.id for a in articles[:4]]
    assert counted[1].entities == ("org:acme", "org:zeta") and counted[0].keywords == ("story",)
    # Re-delivered (and a re-analysis of the same article): nothing counted again.
    assert await store.count_batch(articles, now=NOW) == []

    line = await store.timeline("entity", "org:acme", "1h", at(-2 * 3600), at(3600))
    assert [p.start.timestamp() for p in line] == [HOUR - 7200, HOUR - 3600, HOUR]
    assert [p.count for p in line] == [0, 2, 2]  # articles 1, 2 in the previous hour; 3, 4 in this one
    fine = await store.timeline("entity", "org:acme", "15m", at(-3600), at(0))
    assert [p.count for p in fine] == [2, 0, 0, 0]
    assert sum(p.count for p in await store.timeline("keyword", "STORY", "1d", at(-86400), at(3600))) == 4
    assert await store.timeline("entity", "org:acme", "1h", at(0), at(0)) == []

    top = await store.top("entity", "24h", 10, now=NOW)
    assert [(t.id, t.name, t.type, t.count) for t in top] == [
        ("org:acme", "Acme", "ORG", 4),
        ("org:zeta", "Zeta", "ORG", 1),
    ]
    assert [t.id for t in await store.top("entity", "24h", 1, now=NOW)] == ["org:acme"]
    assert [(t.id, t.count) for t in await store.top("keyword", "7d", 5, now=NOW)] == [("story", 4)]

    ttl = await redis.ttl(store.bucket_key("entity", BUCKETS["1h"], HOUR))
    # The bucket expires the retention after it ends (an absolute time): measured against the clock now, not
    # against NOW, which was read at import and may lie in an earlier hour by the time this runs.
    assert abs(ttl - (HOUR + 3600 + 7 * 86400 - time.time())) <= 5
    assert not [k async for k in redis.scan_iter(match=f"{redis_settings.key_prefix}tl:tmp:*")]


async def test_long_ranges_are_cut_to_the_newest_buckets(redis: Redis, redis_settings: RedisSettings) -> None:
    store = TimelineStore(redis, prefix=redis_settings.key_prefix, ttl_seconds=7 * 86400)
    line = await store.timeline("entity", "nobody", "15m", at(-900 * 5000), at(0))
    assert len(line) == 2000 and line[-1].start.timestamp() == HOUR - 900 and all(p.count == 0 for p in line)
