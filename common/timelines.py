"""Entity and keyword timelines (issue 15 item 4): how many articles named each canonical entity and each
keyword per 15 minutes, hour and day, kept for the retention period, and the reads behind
`GET /entities/{id}/timeline`, `GET /entities/top` and `GET /keywords/top`.

The consumer counts an article once, when it first stores it (`TimelineStore.count_batch`), and the burst
detector (`common.alerts`) reads the same counters.

Time: an article counts in the buckets of its publication time (what a reader means by "when was this
news"), clamped to its analysis time when it claims a future date; an article published longer ago than the
retention is not counted (its buckets would already be gone).

Exactly once: each article's increments run in one Lua script together with `SET NX` on a marker
`tlseen:{article id}` (kept for the retention), so a re-delivered, re-analysed or replayed article never
counts twice, and a crash between storing and counting cannot lose the count either (the re-delivery,
which the store calls a duplicate, is counted then).

Layout (every key under the configured prefix):
  tl:{e|k}:{size}:{start}   sorted set  subject -> articles in the bucket of `size` seconds (900, 3600,
                            86400) starting at `start` (epoch s); entities by `Entity.key` (canonical id,
                            else `type:folded text`), keywords case-folded; expires `retention` after the
                            bucket ends
  tl:names:{day start}      hash  `e:{key}` -> "type\\tdisplay name", `k:{keyword}` -> the keyword as first
                            written; same expiry as that day's buckets
  tlseen:{article id}       marker: the article was counted

Sorted sets rather than hashes: the same increment (ZINCRBY), and the top of a window is one ZUNIONSTORE
in Redis instead of shipping every counter to Python.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import StoreError
from common.schemas import AnalyzedArticle
from common.store import epoch_seconds, normalise

__all__ = [
    "BUCKETS",
    "MAX_TIMELINE_BUCKETS",
    "WINDOWS",
    "BucketName",
    "Counted",
    "SubjectKind",
    "Timeline",
    "TimelinePoint",
    "TimelineStore",
    "TopSubject",
    "WindowName",
    "bucket_start",
    "counted_at",
]

BucketName = Literal["15m", "1h", "1d"]
WindowName = Literal["15m", "1h", "24h", "7d"]
SubjectKind = Literal["entity", "keyword"]
BUCKETS: dict[BucketName, int] = {"15m": 900, "1h": 3600, "1d": 86400}
# A top window is the newest `n` buckets of one size, the current (still filling) bucket included.
WINDOWS: dict[WindowName, tuple[BucketName, int]] = {
    "15m": ("15m", 1),
    "1h": ("15m", 4),
    "24h": ("1h", 24),
    "7d": ("1d", 7),
}
MAX_TIMELINE_BUCKETS = 2_000
"""The most buckets one timeline read returns: a longer range is cut at its start (the newest are kept)."""
_KIND = {"entity": "e", "keyword": "k"}

# KEYS: marker, then per bucket size its entity and keyword sorted sets, then the day's names hash.
# ARGV: marker ttl, number of sizes, expire-at per size, names expire-at, n entities, entity keys,
#       entity labels, n keywords, keyword keys, keyword labels.
_COUNT_SCRIPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local nsizes = tonumber(ARGV[2])
local a = 3 + nsizes
local names_at = ARGV[a]
local ne = tonumber(ARGV[a + 1])
local e0 = a + 2
local nk = tonumber(ARGV[e0 + 2 * ne])
local k0 = e0 + 2 * ne + 1
local names = KEYS[2 + 2 * nsizes]
for s = 1, nsizes do
  local ekey, kkey, at = KEYS[2 * s], KEYS[2 * s + 1], ARGV[2 + s]
  for i = 0, ne - 1 do redis.call('ZINCRBY', ekey, 1, ARGV[e0 + i]) end
  for i = 0, nk - 1 do redis.call('ZINCRBY', kkey, 1, ARGV[k0 + i]) end
  if ne > 0 then redis.call('EXPIREAT', ekey, at) end
  if nk > 0 then redis.call('EXPIREAT', kkey, at) end
end
for i = 0, ne - 1 do redis.call('HSETNX', names, 'e:' .. ARGV[e0 + i], ARGV[e0 + ne + i]) end
for i = 0, nk - 1 do redis.call('HSETNX', names, 'k:' .. ARGV[k0 + i], ARGV[k0 + nk + i]) end
if ne + nk > 0 then redis.call('EXPIREAT', names, names_at) end
return 1
"""


class TimelinePoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: datetime = Field(description="the bucket's start (UTC)")
    count: int = Field(ge=0, description="articles naming the subject in the bucket")


class TopSubject(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(description="the entity's canonical id (`Entity.key`), or the case-folded keyword")
    name: str = Field(description="display name: the entity's canonical name, or the keyword as first written")
    type: str | None = Field(default=None, description="the entity's type (PERSON, ORG, ...); null for keywords")
    count: int = Field(ge=1, description="articles naming it in the window")


@dataclass(frozen=True)
class Counted:
    """What one article added to the counters (empty when it had been counted before or is too old)."""

    article: AnalyzedArticle
    at: float
    entities: tuple[str, ...]
    keywords: tuple[str, ...]


def bucket_start(at: float, size: int) -> int:
    return int(at // size) * size


def counted_at(article: AnalyzedArticle) -> float:
    """The time an article counts at: its publication, or its analysis when it claims a later date."""
    return min(epoch_seconds(article.published_at), epoch_seconds(article.analyzed_at))


def _subjects(article: AnalyzedArticle) -> tuple[dict[str, str], dict[str, str]]:
    entities: dict[str, str] = {}
    for entity in article.analysis.entities:
        entities.setdefault(entity.key, f"{entity.type}\t{entity.display}")
    keywords: dict[str, str] = {}
    for keyword in article.analysis.keywords:
        if key := normalise(keyword):
            keywords.setdefault(key, keyword)
    return entities, keywords


class TimelineStore:
    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._count = redis.register_script(_COUNT_SCRIPT)

    def bucket_key(self, kind: SubjectKind, size: int, start: int) -> str:
        return f"{self._prefix}tl:{_KIND[kind]}:{size}:{start}"

    def _names_key(self, day: int) -> str:
        return f"{self._prefix}tl:names:{day}"

    # -- writes -------------------------------------------------------------------------------------

    async def count_batch(self, articles: Iterable[AnalyzedArticle], now: float | None = None) -> list[Counted]:
        """Count each article not counted before (pipelined, one script per article); returns what was added."""
        now = time.time() if now is None else now
        planned: list[tuple[AnalyzedArticle, float, dict[str, str], dict[str, str]]] = []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for article in articles:
                    at = counted_at(article)
                    if at < now - self._ttl:
                        continue
                    entities, keywords = _subjects(article)
                    keys = [f"{self._prefix}tlseen:{article.id}"]
                    args: list[str | int | float] = [self._ttl, len(BUCKETS)]
                    for size in BUCKETS.values():
                        start = bucket_start(at, size)
                        keys += [self.bucket_key("entity", size, start), self.bucket_key("keyword", size, start)]
                        args.append(start + size + self._ttl)
                    day = bucket_start(at, BUCKETS["1d"])
                    keys.append(self._names_key(day))
                    args += [day + BUCKETS["1d"] + self._ttl, len(entities), *entities, *entities.values()]
                    args += [len(keywords), *keywords, *keywords.values()]
                    await self._count(keys=keys, args=args, client=pipe)
                    planned.append((article, at, entities, keywords))
                results = await pipe.execute() if planned else []
        except RedisError as exc:
            raise StoreError(f"could not count articles in the timelines: {exc}") from exc
        return [
            Counted(article, at, tuple(entities), tuple(keywords))
            for (article, at, entities, keywords), done in zip(planned, results, strict=True)
            if int(done)
        ]

    # -- reads --------------------------------------------------------------------------------------

    async def counts(
        self, subjects: Sequence[tuple[SubjectKind, str]], size: int, last_start: int, n: int
    ) -> list[list[int]]:
        """For each (kind, subject): its counts in the `n` buckets of `size` ending with the one starting at
        `last_start`, oldest first (one pipeline for all)."""
        starts = [last_start - size * i for i in range(n - 1, -1, -1)]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for kind, subject in subjects:
                    for start in starts:
                        pipe.zscore(self.bucket_key(kind, size, start), subject)
                raw = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not read the timelines: {exc}") from exc
        values = [int(v or 0) for v in raw]
        return [values[i * n : (i + 1) * n] for i in range(len(subjects))]

    async def timeline(
        self, kind: SubjectKind, subject: str, bucket: BucketName, since: datetime, until: datetime
    ) -> list[TimelinePoint]:
        """Counts per bucket from the one holding `since` to the last one starting before `until`, oldest first,
        empty buckets included as 0; at most `MAX_TIMELINE_BUCKETS` (the newest)."""
        size = BUCKETS[bucket]
        first = bucket_start(since.timestamp(), size)
        end = until.timestamp()
        last = bucket_start(math.ceil(end) - 1, size)
        if last < first:
            return []
        n = min((last - first) // size + 1, MAX_TIMELINE_BUCKETS)
        [values] = await self.counts([(kind, subject if kind == "entity" else normalise(subject))], size, last, n)
        first = last - size * (n - 1)
        return [
            TimelinePoint(start=datetime.fromtimestamp(first + i * size, UTC), count=c) for i, c in enumerate(values)
        ]

    async def top(
        self, kind: SubjectKind, window: WindowName, limit: int, now: float | None = None
    ) -> list[TopSubject]:
        """The most counted subjects over the window (its newest buckets), most first, ties by id."""
        now = time.time() if now is None else now
        name, n = WINDOWS[window]
        size = BUCKETS[name]
        last = bucket_start(now, size)
        keys = [self.bucket_key(kind, size, last - size * i) for i in range(n)]
        scratch = f"{self._prefix}tl:tmp:{id(self)}:{time.monotonic_ns()}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zunionstore(scratch, keys)
                # Take more than asked so that ties at the cut are ordered by id, not by Redis' order.
                pipe.zrange(scratch, 0, limit * 2 + 10, desc=True, withscores=True)
                pipe.delete(scratch)
                _, ranked, _ = await pipe.execute()
            ordered = sorted(((_text(m), int(s)) for m, s in ranked), key=lambda x: (-x[1], x[0]))[:limit]
            days = sorted({bucket_start(now - BUCKETS[name] * i, BUCKETS["1d"]) for i in range(n)}, reverse=True)
            fields = [f"{_KIND[kind]}:{subject}" for subject, _ in ordered]
            labels: dict[str, str] = {}
            if fields:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for day in days:
                        pipe.hmget(self._names_key(day), fields)
                    for found in await pipe.execute():
                        for field, value in zip(fields, found, strict=True):
                            if value is not None:
                                labels.setdefault(field, _text(value))
        except RedisError as exc:
            raise StoreError(f"could not read the top {kind} list: {exc}") from exc
        out = []
        for subject, count in ordered:
            label = labels.get(f"{_KIND[kind]}:{subject}", "")
            if kind == "entity":
                type_, _, display = label.partition("\t")
                out.append(TopSubject(id=subject, name=display or subject, type=type_ or None, count=count))
            else:
                out.append(TopSubject(id=subject, name=label or subject, count=count))
        return out


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class Timeline(BaseModel):
    """`GET /entities/{id}/timeline` (and keywords'): counts per bucket, oldest first, empty buckets as 0."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="the subject asked for")
    kind: SubjectKind
    bucket: BucketName
    since: datetime = Field(description="start of the first bucket returned")
    until: datetime = Field(description="end (exclusive) asked for")
    points: list[TimelinePoint] = Field(description=f"oldest first, zeros included, at most {MAX_TIMELINE_BUCKETS}")
