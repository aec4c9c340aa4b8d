"""Windowed statistics: analysed articles with chosen timestamps give the expected per-window counts, once each
however often Kafka delivers them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from redis.asyncio import Redis

from common.schemas import Analysis, AnalyzedArticle, Entity, RawArticle
from common.settings import KafkaSettings, RedisSettings
from common.stats import StatsStore, WindowedArticle
from harness.processes import ServiceProcess
from tests.support.worker_support import produce

pytestmark = pytest.mark.integration


def analysed(n: int, source: str, at: float, sentiment: str, score: float, **analysis: object) -> AnalyzedArticle:
    raw = RawArticle(
        url=f"https://example.com/{source}/{n}", title=f"story {n}", source=source, published_at=datetime.now(UTC)
    )
    result = Analysis.model_validate({"sentiment": sentiment, "sentiment_score": score, **analysis})
    return AnalyzedArticle.from_raw(raw, result).model_copy(update={"analyzed_at": datetime.fromtimestamp(at, UTC)})


async def test_sentiment_and_trend_windows(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, redis_settings: RedisSettings, redis: Redis
) -> None:
    now = time.time()
    # The two "recent" articles share one minute (the trend tables hop by the minute, and the worker's view shows
    # the newest window), and the two whole 5-minute sentiment windows end before it, whatever the clock says
    # when the test starts.
    minute = int((now - 5) // 60) * 60
    base = int((minute - 1) // 300) * 300 - 600
    articles = [
        analysed(1, "alpha", base + 10, "positive", 0.6),
        analysed(2, "alpha", base + 250, "negative", -0.4),
        analysed(3, "beta", base + 20, "neutral", 0.1),
        analysed(4, "alpha", base + 310, "neutral", 0.0),  # the next window
        # trends: recent articles with keywords and entities
        analysed(
            5,
            "gamma",
            minute + 1,
            "positive",
            0.2,
            keywords=["Kafka", "redis"],
            entities=[Entity(text="Apache", type="ORG")],
        ),
        analysed(
            6, "gamma", minute + 2, "positive", 0.2, keywords=["kafka"], entities=[Entity(text="Apache", type="ORG")]
        ),
    ]
    worker = spawn("worker", env={"WORKER__LAG_INTERVAL": "1"})
    await produce(
        kafka_settings,
        kafka_settings.topics.analyzed_topic,
        [(a.id.encode(), a.model_dump_json().encode()) for a in articles],
    )
    store = StatsStore(redis, prefix=redis_settings.key_prefix)

    deadline = time.monotonic() + 60
    while True:
        buckets = await store.sentiment(base, base + 600, source="alpha")
        trends = await store.trends(now=time.time())
        if sum(b.count for b in buckets) == 3 and trends.keywords and trends.keywords[0].count == 2:
            break
        assert time.monotonic() < deadline, (buckets, trends)
        await asyncio.sleep(0.5)

    assert [(b.start.timestamp(), b.positive, b.neutral, b.negative) for b in buckets] == [
        (base, 1, 0, 1),
        (base + 300, 0, 1, 0),
    ]
    assert buckets[0].mean_score == pytest.approx(0.1)
    everyone = await store.sentiment(base, base + 600)
    assert [b.count for b in everyone] == [3, 1]
    wide = await store.sentiment(base - 900, base + 600, bucket=1800)
    assert sum(b.count for b in wide) == 4
    assert [(t.term, t.count) for t in trends.keywords] == [("kafka", 2), ("redis", 1)]
    assert [(t.term, t.type, t.count) for t in trends.entities] == [("Apache", "ORG", 2)]

    # Kafka delivers the whole batch again (a crash before the commit, a rebalance): nothing counts twice. A new
    # article produced after the repeats shows when the worker has read past them.
    again = [*articles, analysed(7, "delta", base + 30, "positive", 0.5)]
    await produce(
        kafka_settings,
        kafka_settings.topics.analyzed_topic,
        [(a.id.encode(), a.model_dump_json().encode()) for a in again],
    )
    deadline = time.monotonic() + 60
    while not await store.sentiment(base, base + 600, source="delta"):
        assert time.monotonic() < deadline, "the article after the repeated batch was never counted"
        await asyncio.sleep(0.5)
    assert [b.count for b in await store.sentiment(base, base + 600)] == [4, 1]
    assert [(t.term, t.count) for t in (await store.trends(now=time.time())).keywords] == [("kafka", 2), ("redis", 1)]

    # the same numbers through the worker's web views
    web = f"http://127.0.0.1:{worker.port}"
    async with httpx.AsyncClient(base_url=web, timeout=10) as client:
        windows = (await client.get("/stats/sentiment/")).json()["windows"]
        alpha = {w["start"]: w["count"] for w in windows if w["source"] == "alpha"}
        assert alpha == {float(base): 2, float(base + 300): 1}
        terms = (await client.get("/stats/trends/")).json()["terms"]
        assert {"key": "keyword:kafka", "count": 2} in terms


async def test_count_is_once_per_article(redis: Redis, redis_settings: RedisSettings) -> None:
    store = StatsStore(redis, prefix=f"{redis_settings.key_prefix}once:")
    at = time.time()
    first = WindowedArticle(id="a1", source="alpha", at=at, sentiment="positive", score=0.5, keywords=("kafka",))
    second = WindowedArticle(id="a2", source="alpha", at=at, sentiment="weird", score=-0.1, entities=("ORG:Acme",))
    assert await store.count([first, second]) == 2
    # redelivered, and re-analysed later with another label: neither counts again
    assert await store.count([first, second, first.model_copy(update={"sentiment": "negative", "at": at + 60})]) == 0
    [bucket] = await store.sentiment(at - 300, at + 300)
    assert (bucket.positive, bucket.neutral, bucket.negative, bucket.count) == (1, 1, 0, 2)  # unknown -> neutral
    assert bucket.mean_score == pytest.approx(0.2)
    trends = await store.trends(now=at)
    assert [(t.term, t.count) for t in trends.keywords] == [("kafka", 1)]
    assert [(t.term, t.type, t.count) for t in trends.entities] == [("Acme", "ORG", 1)]
    # the article is in every 15-minute window that holds its minute, and in no other
    assert (await store.trends(now=at + 14 * 60)).keywords[0].count == 1
    assert not (await store.trends(now=at + 15 * 60)).keywords
