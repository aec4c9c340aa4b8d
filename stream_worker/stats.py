"""Windowed statistics: every analysed article counted once into Redis, where the consumer reads them.

`count_stats` follows `news.analyzed` in the worker's group and hands each batch to
`common.stats.StatsStore.count`, which adds an article to its 5-minute sentiment window and its 15-minute hopping
trend windows only the first time it sees the article's id (a Lua script per article, atomic in Redis). So the
windows are exact whatever Kafka redelivers: a batch replayed after a crash or a rebalance counts nothing twice,
and a re-analysed article is not counted again. There is no faust table and no re-keying topic: any replica can
count any partition, and a fresh worker publishes trends with its first batch.

The event time of every window is the article's `analyzed_at`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from common.errors import InvalidMessage, StoreError
from common.retry import until_up
from common.schemas import AnalyzedArticle
from common.stats import StatsStore, WindowedArticle, entity_member
from stream_worker.app import analyzed_topic, app, context

__all__ = ["count_stats", "windowed"]

log = logging.getLogger(__name__)
_BATCH = 500
_WITHIN = 0.5  # seconds: statistics may trail the feed by this much


def windowed(article: AnalyzedArticle) -> WindowedArticle:
    """What the statistics keep of one article: its trend terms each once, entities by their canonical name
    ("Trump" and "Donald Trump" are one person), surface text otherwise."""
    return WindowedArticle(
        id=article.id,
        source=article.source,
        at=article.analyzed_at.timestamp(),
        sentiment=article.analysis.sentiment,
        score=article.analysis.sentiment_score,
        keywords=tuple(dict.fromkeys(kw.casefold() for kw in article.analysis.keywords)),
        entities=tuple(dict.fromkeys(entity_member(e.display, e.type) for e in article.analysis.entities)),
    )


@app.agent(analyzed_topic)
async def count_stats(stream: Any) -> None:
    ctx = context.ctx
    try:
        async for events in stream.take_events(_BATCH, within=_WITHIN):
            store = ctx.stats  # None when WORKER__STATS_ENABLED is off
            if store is None:
                continue
            batch = []
            for event in events:
                try:
                    batch.append(windowed(ctx.topics.analyzed.decode(event.value)))
                except InvalidMessage:
                    continue  # the consumer dead-letters what it cannot read; statistics just skip it
            await _count(store, batch)
    except asyncio.CancelledError:
        raise
    except Exception:
        ctx.metrics.agent_restarts.labels(agent="count_stats").inc()
        log.exception("count_stats crashed; faust restarts it")
        raise


async def _count(store: StatsStore, batch: list[WindowedArticle]) -> None:
    # Redis down: retry the same batch with backoff (its offsets are not acked meanwhile), so nothing goes
    # uncounted; counting an article twice is impossible by construction.
    async for attempt in until_up("statistics count", on=(StoreError,), logger=log):
        with attempt:
            await store.count(batch)
