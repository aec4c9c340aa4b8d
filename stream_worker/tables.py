"""Windowed statistics: faust tables (with changelogs) over `news.analyzed`, published to Redis.

Per-event agents, never a `take()` batch: writing a table inside a batch raises
"Cannot modify table key from outside of stream iteration" (see DESIGN.md).

`news.analyzed` is keyed by article id, but the tables are keyed by source and by term; a table's
key must live in one partition, so `route_analyzed` re-keys every article into two internal topics
(`{app_id}-stats-sentiment` keyed by source, `{app_id}-stats-terms` keyed by term), stamped with the
article's `analyzed_at` (the event time of every window). `count_sentiment` and `count_terms` own
the tables of the partitions they are assigned and publish each window's new value to Redis through
`common.stats.StatsStore`, where the consumer reads it.

Tables:
  sentiment  source -> SentimentCounts (dict), tumbling 5 minutes
  terms      "keyword:{kw}" | "entity:{TYPE}:{text}" -> count, hopping 15 minutes, step 1 minute

Counting is at-least-once like the rest of the pipeline: a batch replayed after a crash counts twice.
The faust web views (`stream_worker.views`) show the windows of the partitions this worker holds; the
global view is Redis's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from faust.windows import HoppingWindow, TumblingWindow

from common.errors import InvalidMessage, StoreError
from common.schemas import AnalyzedArticle
from common.stats import (
    SENTIMENT_WINDOW_S,
    TREND_STEP_S,
    TREND_WINDOW_S,
    SentimentCounts,
    TermKind,
    entity_member,
)
from stream_worker.app import analyzed_topic, app, context, settings

__all__ = ["count_sentiment", "count_terms", "route_analyzed", "sentiment_table", "term_keys", "terms_table"]

log = logging.getLogger(__name__)
_EXPIRES = 3_600.0  # windows kept in the table (and its changelog); Redis keeps the history
# The same arithmetic as the tables' own windows, to name the window(s) an event fell into.
_SENTIMENT_WINDOW = TumblingWindow(SENTIMENT_WINDOW_S)
_TERMS_WINDOW = HoppingWindow(TREND_WINDOW_S, TREND_STEP_S)
_app_id = settings.worker.app_id
_partitions = settings.kafka.partitions

sentiment_topic = app.topic(
    f"{_app_id}-stats-sentiment", key_type=bytes, value_type=bytes, partitions=_partitions, internal=True
)
terms_topic = app.topic(
    f"{_app_id}-stats-terms", key_type=bytes, value_type=bytes, partitions=_partitions, internal=True
)

sentiment_table = app.Table(
    "sentiment",
    default=dict,
    partitions=_partitions,
    key_type=str,
).tumbling(SENTIMENT_WINDOW_S, expires=_EXPIRES)
terms_table = app.Table(
    "terms",
    default=int,
    partitions=_partitions,
    key_type=str,
).hopping(TREND_WINDOW_S, TREND_STEP_S, expires=_EXPIRES)


def term_keys(article: AnalyzedArticle) -> list[str]:
    """The `terms` table keys an article counts towards (each once)."""
    keys = [f"keyword:{kw.casefold()}" for kw in article.analysis.keywords]
    # Entities count by their canonical name ("Trump" and "Donald Trump" are one person), surface text otherwise.
    keys += [f"entity:{entity_member(e.display, e.type)}" for e in article.analysis.entities]
    return list(dict.fromkeys(keys))


def _crashed(agent: str) -> None:
    context.ctx.metrics.agent_restarts.labels(agent=agent).inc()
    log.exception("%s crashed; faust restarts it", agent)


@app.agent(analyzed_topic)
async def route_analyzed(stream: Any) -> None:
    try:
        topic = context.ctx.topics.analyzed
        async for event in stream.events():
            try:
                article = topic.decode(event.value)
            except InvalidMessage:
                continue  # the consumer dead-letters what it cannot read; stats just skip it
            ts = article.analyzed_at.timestamp()
            payload = orjson.dumps({"s": article.analysis.sentiment, "score": article.analysis.sentiment_score})
            futures = [await sentiment_topic.send(key=article.source.encode("utf-8"), value=payload, timestamp=ts)]
            for key in term_keys(article):
                futures.append(await terms_topic.send(key=key.encode("utf-8"), value=b"1", timestamp=ts))
            await asyncio.gather(*futures)  # re-keyed before this event is acked
    except asyncio.CancelledError:
        raise
    except Exception:
        _crashed("route_analyzed")
        raise


@app.agent(sentiment_topic)
async def count_sentiment(stream: Any) -> None:
    try:
        async for event in stream.events():
            source = event.key.decode("utf-8")
            data = orjson.loads(event.value)
            window = sentiment_table[source]
            counts = SentimentCounts.model_validate(window.current() or {}).add(data["s"], float(data["score"]))
            sentiment_table[source] = counts.model_dump()
            store = context.ctx.stats
            if store is not None:
                start = _SENTIMENT_WINDOW.current(event.message.timestamp)[0]
                await _publish(store.put_sentiment(start, source, counts))
    except asyncio.CancelledError:
        raise
    except Exception:
        _crashed("count_sentiment")
        raise


@app.agent(terms_topic)
async def count_terms(stream: Any) -> None:
    try:
        async for event in stream.events():
            key = event.key.decode("utf-8")
            terms_table[key] += 1
            store = context.ctx.stats
            if store is not None:
                kind, _, member = key.partition(":")
                window_set = terms_table[key]
                counts = {
                    (int(r[0]), member): int(window_set[r]) for r in _TERMS_WINDOW.ranges(event.message.timestamp)
                }
                term_kind: TermKind = "entity" if kind == "entity" else "keyword"
                await _publish(store.put_trends(term_kind, counts))
    except asyncio.CancelledError:
        raise
    except Exception:
        _crashed("count_terms")
        raise


async def _publish(write: Any) -> None:
    # Redis is a published copy of the tables: a failed write is logged and fixed by the next event
    # of that window, never a reason to stop counting.
    try:
        await write
    except StoreError as exc:
        log.warning("could not publish stats: %s", exc)
