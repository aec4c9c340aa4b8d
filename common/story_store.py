"""Typed Redis access to stories (issue 15): the latest state of each story, which story each article joined,
each story's member articles, filtered and paged reads, the story event stream, and importance from coverage.

The story stage (`stream_worker`) produces one `StoryUpdate` per assigned article to `news.stories`; the
consumer stores them here, beside the articles of `common.store`, and serves them.

Layout (every key under the configured prefix):
  story:{id}            hash {json, n, t, a, m}: the Story JSON, its version (n = article_count +
                        duplicate_count, t = last_seen in epoch ms, a = 1 once inactive) and its coverage
                        summary for scoring (`m`, compact JSON); TTL
  story:{id}:articles   sorted set article id -> the story's n when it joined (join order), the newest
                        `max_members` kept; TTL
  astory:{article id}   the id of the story the article joined; TTL
  six:{id}              the secondary index keys the story is in, newline-separated (TTL + a day)
  sidx:recent           sorted set story id -> last_seen (epoch s)
  sidx:{field}:{value}  sorted set story id -> last_seen, field one of language, source, entity (an entity's
                        canonical id); values normalised like the article indexes
  sidx:expiry           sorted set story id -> when its record expires (epoch s); the sweeper's work list
  sevents               stream of {s: story id, v: version, a: article id, c: created, d: duplicate_of},
                        one entry per stored update (about `stream_maxlen` kept): the live feed's source

Writes are one Lua script, so atomic and idempotent. Story updates for one story arrive in order (the topic
is keyed by story id) but may be delivered twice or, after a rebalance, late: an update replaces the stored
story only when its version is newer, compared as (n, t, a): more members, else a later last_seen, else the
same story turned inactive. The membership facts (article -> story, the story's members) are recorded from
every update, old or new, since they never change once made.

Importance from coverage (`story_score`), computed at read time from the story and `now`:

    base  = 1 + 2 * ln(1 + sources) + ln(effective_sources) + ln(1 + recent) * (1 + momentum)
    score = log2(base) - age_hours / 12            (rounded to 6 decimals)

- `sources`: the story's `source_count` (how many outlets cover it);
- `effective_sources`: 1 / sum(p_i^2) over the listed sources' shares of the articles (Simpson's effective
  number: 1 for one outlet, k for k outlets with equal shares; a story one site re-posted many times gains
  nothing here);
- `recent`: articles in the timeline's hourly buckets that overlap the last 6 hours before `now`;
  `momentum` = recent / all the timeline's articles (1 for a story whose coverage is all recent);
- `age_hours`: hours from `last_seen` to `now` (0 when in the future). The score halves its coverage weight
  (loses 1) every 12 hours without a new article; in log form, so old stories never underflow to a tie.

Ties are broken by the later `last_seen`, then the larger id (and in `/news/top` first by the representative
article's own `importance_score`).
Scripts name keys they derive from `six:{id}` at run time: this needs a single Redis, not a cluster.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import StoreError
from common.schemas import STORED, AnalyzedArticle
from common.store import QUERY_SCRIPT, epoch_seconds, normalise
from common.stories import TIMELINE_BUCKET_SECONDS, Story, StoryUpdate

__all__ = [
    "GROWTH_WINDOW_S",
    "HALF_LIFE_H",
    "SCORE_CANDIDATES",
    "STORY_CURSOR_PATTERNS",
    "STORY_FILTER_FIELDS",
    "Coverage",
    "InvalidStoryCursor",
    "RankedStory",
    "StoryDetail",
    "StoryEvent",
    "StoryFilters",
    "StoryOrder",
    "StoryPage",
    "StoryPutResult",
    "StoryStore",
    "newest_first",
    "ranked_json",
    "story_score",
]

StoryOrder = Literal["score", "recent"]
STORY_FILTER_FIELDS: tuple[str, ...] = ("language", "source", "entity")
GROWTH_WINDOW_S = 6 * 3600
"""`recent` in the score counts the articles of the last 6 hours."""
HALF_LIFE_H = 12.0
"""Hours without a new article that cost a story one point (half its coverage weight)."""
SCORE_CANDIDATES = 1_000
"""How many stories, the most recently seen first, a score-ordered list ranks (older ones score too low)."""
_SWEEP_GRACE_S = 24 * 3600
_NUM = r"-?[0-9]{1,20}(\.[0-9]{1,20})?(e-?[0-9]{1,3})?"
# `sr_<last_seen>_<id>` pages the recent order; `ss_<now>_<score>_<id>` the score order, frozen at the `now`
# of its first page so that every page ranks with the same clock.
STORY_CURSOR_PATTERNS: dict[StoryOrder, str] = {
    "recent": f"^sr_{_NUM}_[0-9a-f]{{32}}$",
    "score": f"^ss_{_NUM}_{_NUM}_[0-9a-f]{{32}}$",
}


class InvalidStoryCursor(ValueError):
    """A paging cursor this store did not write (or wrote for the other order)."""


class StoryPutResult(IntEnum):
    DUPLICATE = 0  # the same or an older state: only the membership facts were recorded
    CREATED = 1
    REPLACED = 2


FilterText = Annotated[str, StringConstraints(min_length=1, max_length=240, strip_whitespace=True)]


class StoryFilters(BaseModel):
    """Filters of `GET /stories`; every one given must match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: FilterText | None = Field(default=None, description="the story's language code")
    source: FilterText | None = Field(default=None, description="a source covering the story, case-insensitive")
    entity: FilterText | None = Field(default=None, description="a canonical entity id, e.g. person:donald_trump")

    def active(self) -> dict[str, str]:
        return {f: normalise(v) for f in STORY_FILTER_FIELDS if (v := getattr(self, f))}


class RankedStory(Story):
    """A story as the API lists it: the story and its importance from coverage at the time of the request."""

    score: float = Field(description="importance from coverage at the time of the request (docs/api.md, Stories)")


class StoryDetail(RankedStory):
    """`GET /stories/{id}`: the story, its score and its stored member articles, newest first."""

    articles: list[AnalyzedArticle] = Field(description="stored member articles, newest published first")


# --- importance from coverage ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the score needs of a story, kept beside it so that ranking many stories parses no Story."""

    sources: int
    effective_sources: float
    last_seen: float  # epoch s
    timeline: tuple[tuple[float, int], ...]  # (bucket start, articles), oldest first

    @classmethod
    def of(cls, story: Story) -> Coverage:
        total = sum(story.sources.values())
        shares = sum((c / total) ** 2 for _, c in sorted(story.sources.items())) if total else 1.0
        return cls(
            sources=story.source_count,
            effective_sources=1.0 / shares if shares else 1.0,
            last_seen=epoch_seconds(story.last_seen),
            timeline=tuple((epoch_seconds(b.start), b.count) for b in story.timeline),
        )

    def dumps(self) -> str:
        return json.dumps([self.sources, self.effective_sources, self.last_seen, [list(b) for b in self.timeline]])

    @classmethod
    def loads(cls, text: str | bytes) -> Coverage:
        sources, effective, last_seen, timeline = json.loads(text)
        return cls(int(sources), float(effective), float(last_seen), tuple((float(s), int(c)) for s, c in timeline))


def story_score(coverage: Coverage, now: float) -> float:
    """Importance from coverage (the module docstring has the formula); `now` in epoch seconds."""
    total = sum(c for _, c in coverage.timeline)
    recent = sum(c for start, c in coverage.timeline if start + TIMELINE_BUCKET_SECONDS > now - GROWTH_WINDOW_S)
    momentum = recent / total if total else 0.0
    base = (
        1.0
        + 2.0 * math.log1p(coverage.sources)
        + math.log(max(coverage.effective_sources, 1.0))
        + math.log1p(recent) * (1.0 + momentum)
    )
    age_h = max(0.0, now - coverage.last_seen) / 3600.0
    return round(math.log2(base) - age_h / HALF_LIFE_H, 6)


# --- pages and events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryPage:
    stories: list[Story]
    scores: list[float]
    raw: list[str]  # each story's stored JSON, to send as it is
    next_cursor: str | None

    def ranked_json(self) -> list[str]:
        """Each story as `RankedStory` JSON, spliced from the stored JSON (no model round trip)."""
        return [ranked_json(raw, score) for raw, score in zip(self.raw, self.scores, strict=True)]


def ranked_json(story_json: str, score: float) -> str:
    """The stored Story JSON with its score added (a `RankedStory`)."""
    return f'{{"score":{json.dumps(score)},{story_json[1:]}'


@dataclass(frozen=True)
class StoryEvent:
    """A stored story update whose story is still at that version: what a WebSocket client is sent."""

    position: str
    story_json: str
    article_id: str
    created: bool
    duplicate_of: str | None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _version(update: StoryUpdate) -> tuple[int, int, int]:
    story = update.story
    return (
        story.article_count + story.duplicate_count,
        int(epoch_seconds(story.last_seen) * 1000),
        0 if story.active else 1,
    )


_PUT = """
-- KEYS: 1 record, 2 six, 3 recent, 4 expiry, 5 stream, 6 members, 7 article -> story, 8.. secondary indexes
-- ARGV: 1 json, 2 n, 3 t, 4 a, 5 ttl, 6 last_seen (s), 7 story id, 8 expire_at, 9 six ttl, 10 stream maxlen,
--       11 coverage, 12 article id, 13 created, 14 duplicate_of, 15 max members
-- Membership never changes once made: recorded from every update, even one older than the stored story.
redis.call('SET', KEYS[7], ARGV[7], 'EX', ARGV[5])
redis.call('ZADD', KEYS[6], 'NX', ARGV[2], ARGV[12])
local extra = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[15])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[6], 0, extra - 1) end
redis.call('EXPIRE', KEYS[6], ARGV[5])
local cur = redis.call('HMGET', KEYS[1], 'n', 't', 'a')
if cur[1] then
  local n, t, a = tonumber(cur[1]), tonumber(cur[2]), tonumber(cur[3])
  local nn, nt, na = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if not (nn > n or (nn == n and (nt > t or (nt == t and na > a)))) then
    return {0, false}
  end
end
local old = redis.call('GET', KEYS[2])
if old then
  for key in string.gmatch(old, '[^\\n]+') do redis.call('ZREM', key, ARGV[7]) end
end
local names = {}
for i = 8, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[6], ARGV[7])
  names[#names + 1] = KEYS[i]
end
redis.call('SET', KEYS[2], table.concat(names, '\\n'), 'EX', ARGV[9])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'n', ARGV[2], 't', ARGV[3], 'a', ARGV[4], 'm', ARGV[11])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[7])
local version = ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4]
local sid = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[10], '*',
  's', ARGV[7], 'v', version, 'a', ARGV[12], 'c', ARGV[13], 'd', ARGV[14])
if cur[1] then return {2, sid} end
return {1, sid}
"""

_SWEEP = """
-- KEYS: 1 expiry, 2 recent; ARGV: 1 now, 2 max ids, 3 record key prefix, 4 six key prefix
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, id in ipairs(ids) do
  local ttl = redis.call('TTL', ARGV[3] .. id)
  if ttl > 0 then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + ttl, id)
  elseif ttl == -1 then
    redis.call('ZREM', KEYS[1], id)
  else
    local ix = redis.call('GET', ARGV[4] .. id)
    if ix then
      for key in string.gmatch(ix, '[^\\n]+') do redis.call('ZREM', key, id) end
    end
    redis.call('DEL', ARGV[4] .. id, ARGV[3] .. id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[1], id)
    removed = removed + 1
  end
end
return removed
"""


def _encode_recent(last_seen: str, story_id: str) -> str:
    return f"sr_{float(last_seen)!r}_{story_id}".replace("e+", "e")


def _encode_score(now: float, score: float, story_id: str) -> str:
    return f"ss_{now!r}_{score!r}_{story_id}".replace("e+", "e")


def _decode(order: StoryOrder, cursor: str) -> list[str]:
    if not re.fullmatch(STORY_CURSOR_PATTERNS[order], cursor):
        other: StoryOrder = "recent" if order == "score" else "score"
        if re.fullmatch(STORY_CURSOR_PATTERNS[other], cursor):
            raise InvalidStoryCursor(f"this cursor pages the {other} order, not {order}")
        raise InvalidStoryCursor("not a cursor returned by this API")
    return cursor.split("_")[1:]


class StoryStore:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "news:",
        ttl_seconds: int = 7 * 24 * 3600,
        stream_maxlen: int = 10_000,
        max_members: int = 500,
    ) -> None:
        if stream_maxlen < 1 or max_members < 1:
            raise ValueError("stream_maxlen and max_members must be at least 1")
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._stream_maxlen = stream_maxlen
        self._max_members = max_members
        self._put = redis.register_script(_PUT)
        self._sweep = redis.register_script(_SWEEP)
        self._query = redis.register_script(QUERY_SCRIPT)
        self.recent_key = f"{prefix}sidx:recent"
        self.expiry_key = f"{prefix}sidx:expiry"
        self.stream_key = f"{prefix}sevents"

    def _story_key(self, story_id: str) -> str:
        return f"{self._prefix}story:{story_id}"

    def _members_key(self, story_id: str) -> str:
        return f"{self._prefix}story:{story_id}:articles"

    def _of_key(self, article_id: str) -> str:
        return f"{self._prefix}astory:{article_id}"

    def _six_key(self, story_id: str) -> str:
        return f"{self._prefix}six:{story_id}"

    def index_key(self, field: str, value: str) -> str:
        """The secondary index of stories whose `field` is `value` (normalised here)."""
        return f"{self._prefix}sidx:{field}:{normalise(value)}"

    # -- writes -------------------------------------------------------------------------------------

    async def put(self, update: StoryUpdate) -> tuple[StoryPutResult, str | None]:
        """Record the membership and store the story when this update is newer than the stored one;
        returns what happened and the event's stream position (None when nothing was stored)."""
        story = update.story
        n, t, a = _version(update)
        secondary = sorted(
            {self.index_key("language", story.language)}
            | {self.index_key("source", s) for s in story.sources}
            | {self.index_key("entity", e.id) for e in story.entities}
        )
        last_seen = epoch_seconds(story.last_seen)
        try:
            result, position = await self._put(
                keys=[
                    self._story_key(story.id),
                    self._six_key(story.id),
                    self.recent_key,
                    self.expiry_key,
                    self.stream_key,
                    self._members_key(story.id),
                    self._of_key(update.article_id),
                    *secondary,
                ],
                args=[
                    story.model_dump_json(),
                    n,
                    t,
                    a,
                    self._ttl,
                    last_seen,
                    story.id,
                    int(time.time()) + self._ttl,
                    self._ttl + _SWEEP_GRACE_S,
                    self._stream_maxlen,
                    Coverage.of(story).dumps(),
                    update.article_id,
                    1 if update.created else 0,
                    update.duplicate_of or "",
                    self._max_members,
                ],
            )
        except RedisError as exc:
            raise StoreError(f"could not store story {story.id}: {exc}") from exc
        return StoryPutResult(int(result)), None if position is None else _text(position)

    async def sweep(self, now: float | None = None, max_ids: int = 1_000) -> int:
        """Remove stories whose record has expired from every index; returns how many."""
        try:
            removed = await self._sweep(
                keys=[self.expiry_key, self.recent_key],
                args=[time.time() if now is None else now, max_ids, self._story_key(""), self._six_key("")],
            )
        except RedisError as exc:
            raise StoreError(f"could not sweep expired stories: {exc}") from exc
        return int(removed)

    # -- reads --------------------------------------------------------------------------------------

    async def get_json(self, story_id: str) -> str | None:
        """The stored JSON of one story, or None."""
        try:
            raw = await self._redis.hget(self._story_key(story_id), "json")
        except RedisError as exc:
            raise StoreError(f"could not read story {story_id}: {exc}") from exc
        return None if raw is None else _text(raw)

    async def get(self, story_id: str) -> Story | None:
        raw = await self.get_json(story_id)
        return None if raw is None else Story.model_validate_json(raw)

    async def story_of(self, article_id: str) -> str | None:
        """The id of the story an article joined, or None (not assigned yet, or expired)."""
        return (await self.stories_of([article_id]))[0]

    async def stories_of(self, article_ids: Sequence[str]) -> list[str | None]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in article_ids:
                    pipe.get(self._of_key(i))
                replies = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not read which story articles joined: {exc}") from exc
        return [None if r is None else _text(r) for r in replies]

    async def members(self, story_id: str, limit: int) -> list[str]:
        """The ids of the story's members, the most recently joined first (at most `limit`)."""
        try:
            ids = await self._redis.zrevrange(self._members_key(story_id), 0, limit - 1)
        except RedisError as exc:
            raise StoreError(f"could not read the articles of story {story_id}: {exc}") from exc
        return [_text(i) for i in ids]

    async def get_many_json(self, story_ids: Iterable[str]) -> list[str | None]:
        return [None if r is None else _text(r) for r in await self._hget_many(story_ids, "json")]

    async def _hget_many(self, story_ids: Iterable[str], field: str) -> list[Any]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in story_ids:
                    pipe.hget(self._story_key(i), field)
                return list(await pipe.execute())
        except RedisError as exc:
            raise StoreError(f"could not read stories: {exc}") from exc

    async def _ids(
        self, filters: StoryFilters, since: datetime | None, count: int, max_score: str = "+inf", after_id: str = ""
    ) -> tuple[list[str], list[str]]:
        """Ids (and last_seen scores) of matching stories, most recently seen first."""
        keys = [
            f"{self._prefix}scratch:{uuid.uuid4().hex}",
            self.recent_key,
            self.recent_key,
            *[self.index_key(f, v) for f, v in sorted(filters.active().items())],
        ]
        since_arg = "-inf" if since is None else repr(epoch_seconds(since))
        try:
            rows: Sequence[Any] = await self._query(keys=keys, args=["recent", since_arg, max_score, after_id, count])
        except RedisError as exc:
            raise StoreError(f"could not list stories: {exc}") from exc
        return [_text(r) for r in rows[0::2]], [_text(r) for r in rows[1::2]]

    async def ranked(
        self, now: float, *, filters: StoryFilters | None = None, since: datetime | None = None
    ) -> list[tuple[float, float, str]]:
        """(score, last_seen, id) of the `SCORE_CANDIDATES` most recently seen matching stories, best first."""
        ids, _ = await self._ids(filters or StoryFilters(), since, SCORE_CANDIDATES)
        coverages = await self._hget_many(ids, "m")
        ranked = [
            (story_score(c, now), c.last_seen, i)
            for i, raw in zip(ids, coverages, strict=True)
            if raw is not None
            for c in (Coverage.loads(raw),)
        ]
        ranked.sort(reverse=True)
        return ranked

    async def query(
        self,
        order: StoryOrder,
        limit: int,
        *,
        filters: StoryFilters | None = None,
        since: datetime | None = None,
        cursor: str | None = None,
        now: float | None = None,
    ) -> StoryPage:
        """One page of stories, by score (best first) or by last_seen (newest first); `since` keeps stories
        seen at or after it. Raises InvalidStoryCursor for a bad cursor."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        filters = filters or StoryFilters()
        if order == "recent":
            max_score, after_id = ("+inf", "") if cursor is None else _decode("recent", cursor)
            found: list[tuple[str, str, float]] = []  # (id, json, last_seen)
            stale = False
            while len(found) <= limit:
                want = limit + 1 - len(found)
                ids, scores = await self._ids(filters, since, want, max_score, after_id)
                if not ids:
                    break
                for i, s, raw in zip(ids, scores, await self.get_many_json(ids), strict=True):
                    if raw is None:
                        stale = True
                    else:
                        found.append((i, raw, float(s)))
                max_score, after_id = scores[-1], ids[-1]
                if len(ids) < want:
                    break
            if stale:
                await self.sweep()
            page = found[:limit]
            at = time.time() if now is None else now
            stories = [Story.model_validate_json(raw) for _, raw, _ in page]
            scores_out = [story_score(Coverage.of(s), at) for s in stories]
            nxt = _encode_recent(repr(page[-1][2]), page[-1][0]) if len(found) > limit else None
            return StoryPage(stories, scores_out, [raw for _, raw, _ in page], nxt)
        if cursor is not None:
            frozen, cscore, cid = _decode("score", cursor)
            at, position = float(frozen), (float(cscore), cid)
        else:
            at, position = time.time() if now is None else now, None
        ranked = await self.ranked(at, filters=filters, since=since)
        if position is not None:
            ranked = [r for r in ranked if (r[0], r[2]) < position]
        out: list[tuple[float, str, str]] = []
        for start in range(0, len(ranked), limit + 1):
            chunk = ranked[start : start + limit + 1]
            for (score, _, i), raw in zip(chunk, await self.get_many_json(r[2] for r in chunk), strict=True):
                if raw is not None:
                    out.append((score, i, raw))
            if len(out) > limit:
                break
        page_s = out[:limit]
        nxt = _encode_score(at, page_s[-1][0], page_s[-1][1]) if len(out) > limit else None
        return StoryPage(
            [Story.model_validate_json(raw) for _, _, raw in page_s],
            [s for s, _, _ in page_s],
            [raw for _, _, raw in page_s],
            nxt,
        )

    # -- event stream (WebSocket fan-out) -----------------------------------------------------------

    async def last_position(self) -> str:
        try:
            last: Any = await self._redis.xrevrange(self.stream_key, count=1)
        except RedisError as exc:
            raise StoreError(f"could not read the story stream: {exc}") from exc
        return _text(last[0][0]) if last else "0-0"

    async def read_events(self, after: str, *, block_ms: int = 5_000, count: int = 100) -> tuple[str, list[StoryEvent]]:
        """Wait up to `block_ms` for story events after `after`; the new position and the current ones (an
        event whose story has since moved on is left out: its later event carries the newer state)."""
        try:
            reply: Any = await self._redis.xread({self.stream_key: after}, count=count, block=block_ms)
            entries = list(reply[0][1]) if reply else []
            if not entries:
                return after, []
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, fields in entries:
                    pipe.hmget(self._story_key(_text(fields[b"s"])), ["json", "n", "t", "a"])
                records = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not read the story stream: {exc}") from exc
        out = []
        for (entry_id, fields), (raw, n, t, a) in zip(entries, records, strict=True):
            if raw is None or f"{_text(n)}:{_text(t)}:{_text(a)}" != _text(fields[b"v"]):
                continue
            duplicate_of = _text(fields[b"d"]) or None
            out.append(
                StoryEvent(_text(entry_id), _text(raw), _text(fields[b"a"]), _text(fields[b"c"]) == "1", duplicate_of)
            )
        return _text(entries[-1][0]), out


def newest_first(articles: Iterable[str]) -> list[str]:
    """Stored article JSON, newest published first (then by id, so the order is total)."""
    parsed = [(AnalyzedArticle.model_validate_json(raw, context=STORED), raw) for raw in articles]
    parsed.sort(key=lambda p: (p[0].published_at, p[0].id), reverse=True)
    return [raw for _, raw in parsed]
