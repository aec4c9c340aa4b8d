"""Windowed statistics counted by the stream worker and served by the consumer (`/stats`, `/trends`).

Counting is exactly once per article: `StatsStore.count()` runs one Lua script per batch that, for each
article, first sets a marker `stats:counted:{article id}` (SET NX, `COUNTED_TTL_S`) and only when the marker is
new adds the article to its windows, all atomically inside Redis. A batch Kafka redelivers after a crash or a
rebalance, or an article analysed again, finds its marker and counts nothing. (The counts used to live in
faust windowed tables fed by two re-keyed internal topics: at-least-once, so a redelivered batch counted
twice, and a fresh worker showed no trends until its table partitions were assigned.) A redelivery later than
`COUNTED_TTL_S` would count again; Kafka redelivers within a rebalance, minutes at most.

Windows (seconds since the epoch, UTC; event time is the article's `analyzed_at`):
  sentiment  tumbling, `SENTIMENT_WINDOW_S` (5 minutes), per source
  trends     hopping, `TREND_WINDOW_S` (15 minutes) long, a new one every `TREND_STEP_S` (1 minute)

Layout (every key under the configured `REDIS__KEY_PREFIX`, e.g. `news:`):
  stats:counted:{article id}         string      marker of an article already counted; expires `COUNTED_TTL_S`
  stats:sentiment:windows            sorted set  member and score: window start (epoch s) of every
                                                 sentiment window that has data; pruned past the TTL
  stats:sentiment:{start}            hash        field: source -> JSON `SentimentCounts`
                                                 (`{"positive":3,"neutral":1,"negative":0,"score_sum":1.25}`); TTL
  stats:trends:keyword:{minute}      sorted set  keyword -> count of the articles of that one-minute bucket
  stats:trends:entity:{minute}       sorted set  "{TYPE}:{text}" -> count (e.g. "ORG:Reuters"); a 15-minute
                                                 window is the sum of its 15 buckets (summed on read); both
                                                 expire `TREND_TTL_S` after the last window holding them ends;
                                                 sentiment hashes after `REDIS__TTL_SECONDS`

Readers: `StatsStore.sentiment(since, until, source=None, bucket=300)` merges 5-minute windows into
buckets (a multiple of 5 minutes) and `StatsStore.trends(window_minutes=15, limit=20)` returns the
15-minute window that ends in the current minute (the most recent complete picture).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import StoreError

__all__ = [
    "COUNTED_TTL_S",
    "SENTIMENT_WINDOW_S",
    "TREND_STEP_S",
    "TREND_TTL_S",
    "TREND_WINDOW_S",
    "SentimentBucket",
    "SentimentCounts",
    "StatsStore",
    "TermKind",
    "TrendItem",
    "TrendsSnapshot",
    "WindowedArticle",
    "entity_member",
]

SENTIMENT_WINDOW_S = 300
TREND_WINDOW_S = 900
TREND_STEP_S = 60
TREND_TTL_S = 3_600
COUNTED_TTL_S = 24 * 3_600
_LABELS = ("positive", "neutral", "negative")

# One call per batch. ARGV: key prefix, now, sentiment TTL, marker TTL, then the batch as JSON: a list of
# {"id", "src", "label", "score", "at", "kw": [...], "en": [...]}. The keys are built here from the prefix (one
# Redis node: the suite does not run Redis Cluster). Atomic for the whole batch.
_COUNT_BATCH = """
local prefix, now, ttl, counted_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local W, STEP, TW, TTTL = %(sentiment)d, %(step)d, %(window)d, %(trend_ttl)d
local index = prefix .. 'stats:sentiment:windows'
local new = 0
for _, a in ipairs(cjson.decode(ARGV[5])) do
  if redis.call('SET', prefix .. 'stats:counted:' .. a.id, '1', 'NX', 'EX', counted_ttl) then
    new = new + 1
    local start = math.floor(a.at / W) * W
    local key = prefix .. 'stats:sentiment:' .. string.format('%%d', start)
    local raw = redis.call('HGET', key, a.src)
    local c
    if raw then c = cjson.decode(raw) else c = {positive = 0, neutral = 0, negative = 0, score_sum = 0} end
    c[a.label] = (c[a.label] or 0) + 1
    c['score_sum'] = (c['score_sum'] or 0) + a.score
    redis.call('HSET', key, a.src, cjson.encode(c))
    redis.call('EXPIREAT', key, string.format('%%d', math.max(start + W, now) + ttl))
    redis.call('ZADD', index, start, string.format('%%d', start))
    local minute = math.floor(a.at / STEP) * STEP
    local expire_at = string.format('%%d', math.max(minute + TW, now) + TTTL)
    for kind, terms in pairs({keyword = a.kw, entity = a.en}) do
      if #terms > 0 then
        local tkey = prefix .. 'stats:trends:' .. kind .. ':' .. string.format('%%d', minute)
        for _, term in ipairs(terms) do redis.call('ZINCRBY', tkey, 1, term) end
        redis.call('EXPIREAT', tkey, expire_at)
      end
    end
  end
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', now - ttl - W)
return new
"""

TermKind = Literal["keyword", "entity"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SentimentCounts(_Frozen):
    """Sentiment tally of one source in one window (the faust table's value)."""

    positive: int = 0
    neutral: int = 0
    negative: int = 0
    score_sum: float = 0.0

    @property
    def count(self) -> int:
        return self.positive + self.neutral + self.negative

    def add(self, sentiment: str, score: float) -> SentimentCounts:
        update: dict[str, float | int] = {"score_sum": self.score_sum + score}
        if sentiment in ("positive", "neutral", "negative"):
            update[sentiment] = getattr(self, sentiment) + 1
        else:
            update["neutral"] = self.neutral + 1
        return self.model_copy(update=update)

    def merge(self, other: SentimentCounts) -> SentimentCounts:
        return SentimentCounts(
            positive=self.positive + other.positive,
            neutral=self.neutral + other.neutral,
            negative=self.negative + other.negative,
            score_sum=self.score_sum + other.score_sum,
        )


class SentimentBucket(_Frozen):
    """Sentiment of articles analysed in [start, end), for one source or (source None) all of them."""

    start: datetime
    end: datetime
    source: str | None = None
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    count: int = 0
    mean_score: float | None = None  # None when the bucket is empty


class TrendItem(_Frozen):
    term: str
    count: int
    type: str | None = None  # entity type (PERSON, ORG, ...); None for keywords


class TrendsSnapshot(_Frozen):
    """Most frequent keywords and entities of articles analysed in [window_start, window_end)."""

    window_start: datetime
    window_end: datetime
    window_minutes: int
    keywords: list[TrendItem] = Field(default_factory=list)
    entities: list[TrendItem] = Field(default_factory=list)


class WindowedArticle(_Frozen):
    """What the statistics need of one analysed article (`stream_worker.stats` builds it)."""

    id: str
    source: str
    at: float  # event time: analyzed_at, epoch seconds
    sentiment: str
    score: float
    keywords: tuple[str, ...] = ()  # trends members, each once (casefolded keywords)
    entities: tuple[str, ...] = ()  # `entity_member()` strings, each once


def entity_member(text: str, entity_type: str) -> str:
    """How an entity is named inside a trends key (and in the worker's table key)."""
    return f"{entity_type}:{text}"


def _epoch(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class StatsStore:
    """Write side for the stream worker, read side for the consumer; see the module docstring for keys."""

    def __init__(self, redis: Redis, *, prefix: str = "news:", ttl_seconds: int = 7 * 24 * 3600) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self.sentiment_index_key = f"{prefix}stats:sentiment:windows"
        windows = {"sentiment": SENTIMENT_WINDOW_S, "step": TREND_STEP_S, "window": TREND_WINDOW_S}
        self._count_script = redis.register_script(_COUNT_BATCH % {**windows, "trend_ttl": TREND_TTL_S})

    def sentiment_key(self, start: int) -> str:
        return f"{self._prefix}stats:sentiment:{start}"

    def trends_key(self, kind: TermKind, start: int) -> str:
        return f"{self._prefix}stats:trends:{kind}:{start}"

    # -- write side (stream worker) -----------------------------------------------------------------

    def counted_key(self, article_id: str) -> str:
        return f"{self._prefix}stats:counted:{article_id}"

    async def count(self, articles: list[WindowedArticle], *, now: float | None = None) -> int:
        """Add each article to its windows unless it was counted before (see the module docstring): one
        script call for the batch, atomic. Returns how many were new."""
        if not articles:
            return 0
        current = time.time() if now is None else now
        batch = [
            {
                "id": a.id,
                "src": a.source,
                "label": a.sentiment if a.sentiment in _LABELS else "neutral",
                "score": a.score,
                "at": a.at,
                "kw": list(a.keywords),
                "en": list(a.entities),
            }
            for a in articles
        ]
        try:
            args: list[str | int | bytes] = [self._prefix, repr(current), self._ttl, COUNTED_TTL_S, orjson.dumps(batch)]
            new = await self._count_script(args=args)
        except RedisError as exc:
            raise StoreError(f"could not count {len(articles)} articles into the statistics: {exc}") from exc
        return int(new)

    async def put_sentiment(self, window_start: datetime | float, source: str, counts: SentimentCounts) -> None:
        """Set (not add) one source's tally of the 5-minute window starting at `window_start`."""
        start = int(_epoch(window_start))
        key = self.sentiment_key(start)
        expire_at = int(max(start + SENTIMENT_WINDOW_S, time.time()) + self._ttl)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, source, counts.model_dump_json())
                pipe.expireat(key, expire_at)
                pipe.zadd(self.sentiment_index_key, {str(start): start})
                pipe.zremrangebyscore(self.sentiment_index_key, "-inf", time.time() - self._ttl - SENTIMENT_WINDOW_S)
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not publish sentiment window {start}: {exc}") from exc

    async def put_trends(self, kind: TermKind, counts: Mapping[tuple[int, str], int]) -> None:
        """Set (not add) term counts of one-minute buckets: `{(minute_start, term): count}`; entity terms as
        `entity_member()`. For seeding and repair; the worker counts with `count()`."""
        if not counts:
            return
        by_window: dict[int, dict[str, int]] = {}
        for (start, term), count in counts.items():
            by_window.setdefault(int(start) // TREND_STEP_S * TREND_STEP_S, {})[term] = count
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for start, terms in by_window.items():
                    key = self.trends_key(kind, start)
                    pipe.zadd(key, dict(terms))
                    pipe.expireat(key, int(max(start + TREND_WINDOW_S, now) + TREND_TTL_S))
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not publish {kind} trends: {exc}") from exc

    # -- read side (consumer) -----------------------------------------------------------------------

    async def sentiment(
        self,
        since: datetime | float,
        until: datetime | float,
        source: str | None = None,
        bucket: int | timedelta = SENTIMENT_WINDOW_S,
        *,
        by_source: bool = False,
    ) -> list[SentimentBucket]:
        """Buckets of `bucket` seconds (a multiple of 300, aligned to the epoch) that overlap [since, until)
        and hold data, oldest first; `source` None sums every source, unless `by_source` asks for one
        bucket per source and time (ordered by time, then source)."""
        size = int(bucket.total_seconds()) if isinstance(bucket, timedelta) else int(bucket)
        if size <= 0 or size % SENTIMENT_WINDOW_S:
            raise ValueError(f"bucket must be a positive multiple of {SENTIMENT_WINDOW_S} seconds, got {size}")
        lo = math.floor(_epoch(since) / SENTIMENT_WINDOW_S) * SENTIMENT_WINDOW_S
        hi = _epoch(until)
        if hi <= lo:
            return []
        try:
            members: list[Any] = list(await self._redis.zrangebyscore(self.sentiment_index_key, lo, f"({hi}"))
            starts = [int(_text(m)) for m in members]
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in starts:
                    if source is None and by_source:
                        pipe.hgetall(self.sentiment_key(start))
                    elif source is None:
                        pipe.hvals(self.sentiment_key(start))
                    else:
                        pipe.hget(self.sentiment_key(start), source)
                rows = await pipe.execute() if starts else []
        except RedisError as exc:
            raise StoreError(f"could not read sentiment stats: {exc}") from exc
        merged: dict[tuple[int, str | None], SentimentCounts] = {}
        for start, row in zip(starts, rows, strict=True):
            values: list[tuple[str | None, Any]]
            if isinstance(row, dict):
                values = [(_text(name), raw) for name, raw in row.items()]
            else:
                values = [(source, raw) for raw in (row if isinstance(row, list) else ([] if row is None else [row]))]
            for name, raw in values:
                counts = SentimentCounts.model_validate(orjson.loads(raw))
                key = (start - start % size, name)
                merged[key] = merged[key].merge(counts) if key in merged else counts
        out = []
        for start, name in sorted(merged, key=lambda k: (k[0], k[1] or "")):
            c = merged[(start, name)]
            if not c.count:
                continue
            out.append(
                SentimentBucket(
                    start=_dt(start),
                    end=_dt(start + size),
                    source=name,
                    positive=c.positive,
                    neutral=c.neutral,
                    negative=c.negative,
                    count=c.count,
                    mean_score=c.score_sum / c.count,
                )
            )
        return out

    async def trends(self, window_minutes: int = 15, limit: int = 20, *, now: float | None = None) -> TrendsSnapshot:
        """Top keywords and entities of the hopping window that ends in the current minute."""
        if window_minutes * 60 != TREND_WINDOW_S:
            raise ValueError(f"only {TREND_WINDOW_S // 60}-minute trend windows are published")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        current = time.time() if now is None else now
        start = int(current // TREND_STEP_S) * TREND_STEP_S - TREND_WINDOW_S + TREND_STEP_S
        minutes = range(start, start + TREND_WINDOW_S, TREND_STEP_S)
        scratch = f"{self._prefix}stats:trends:sum:{uuid.uuid4().hex}"
        try:
            # The window is the sum of its 15 one-minute buckets: summed into a scratch key, its top read, the
            # scratch key dropped, in one transaction.
            async with self._redis.pipeline(transaction=True) as pipe:
                for kind in ("keyword", "entity"):
                    pipe.zunionstore(f"{scratch}:{kind}", [self.trends_key(kind, m) for m in minutes])
                    pipe.zrevrange(f"{scratch}:{kind}", 0, limit - 1, withscores=True)
                pipe.delete(f"{scratch}:keyword", f"{scratch}:entity")
                _, keywords, _, entities, _ = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not read trends: {exc}") from exc
        entity_items = []
        for member, score in entities:
            kind, _, text = _text(member).partition(":")
            entity_items.append(TrendItem(term=text, count=int(score), type=kind))
        return TrendsSnapshot(
            window_start=_dt(start),
            window_end=_dt(start + TREND_WINDOW_S),
            window_minutes=window_minutes,
            keywords=[TrendItem(term=_text(m), count=int(s)) for m, s in keywords],
            entities=entity_items,
        )
