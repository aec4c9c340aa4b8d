"""Typed Redis access to analysed articles: idempotent writes, filtered and paged reads, a resumable event log.

Layout (every key under the configured prefix):
  article:{id}          hash {json, v, f, l}: the AnalyzedArticle JSON, its version (analyzed_at, epoch ms), a
                        fingerprint of its content (without fetched_at, analyzed_at, latency) and its list view
                        (`list_view`: what a list shows, without bodies or embedding); TTL
  ix:{id}               the secondary index keys the article is in, newline-separated (TTL + a day), so a
                        replacement or the sweeper can take it out of indexes it is no longer in
  idx:recent            sorted set id -> published_at (epoch s)
  idx:top               sorted set id -> importance_score
  idx:{field}:{value}   sorted set id -> published_at, field one of sentiment, source, category, language,
                        entity (values normalised: whitespace collapsed, case-folded)
  idx:expiry            sorted set id -> when its record expires (epoch s); the sweeper's work list
  events                stream of {a: id, v: version}, one entry per stored or replaced article, at most
                        `stream_maxlen` long; the entry id is the WebSocket resume cursor
  events:trimmed        id of the newest entry trimmed from `events` (a cursor below it cannot be resumed)

A write is one Lua script, so it is atomic: the same analysis twice leaves one entry and is not
announced twice; an older analysis never replaces a newer one; a newer one that says the same (a
worker's retry after a crash) is a duplicate too; a newer one that differs replaces the record, moves
the article between secondary indexes and is announced. A page is read by one Lua script too (index range and
records in one round trip, and consistent with the writes: a record read is the one its index entry was
written with, so nothing needs checking again); an id whose record has expired is never returned, and
`sweep()` (run periodically and on any such miss) then removes it from every index. Records stored before
list views existed have no `l`: the read projects them (`list_view`) instead.
Scripts name keys they derive from `ix:{id}` at run time: this needs a single Redis, not a cluster.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import StoreError
from common.schemas import STORED, AnalyzedArticle, Sentiment

__all__ = [
    "CURSOR_PATTERNS",
    "FILTER_FIELDS",
    "ArticleFilters",
    "ArticleStore",
    "LEAD_MAX",
    "InvalidCursor",
    "JsonPage",
    "Order",
    "Page",
    "QUERY_SCRIPT",
    "PutResult",
    "StoredEvent",
    "View",
    "cursor_after",
    "list_view",
    "normalise",
]

Order = Literal["recent", "top"]
View = Literal["lean", "full"]
LEAD_MAX = 300
"""Longest lead (characters) a list item carries when an article has no description: its content's start."""
FILTER_FIELDS: tuple[str, ...] = ("sentiment", "source", "category", "language", "entity")
_SWEEP_GRACE_S = 24 * 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCORE = r"-?[0-9]{1,20}(\.[0-9]{1,20})?(e-?[0-9]{1,3})?"
# A paging cursor is `<r|t>_<score>_<id>`: readable, safe in a URL as it is, and exactly described by its
# pattern (the API declares it, so any string of this shape is a cursor the list accepts).
CURSOR_PATTERNS: dict[Order, str] = {o: f"^{o[0]}_{_SCORE}_[0-9a-f]{{32}}$" for o in ("recent", "top")}


class PutResult(IntEnum):
    DUPLICATE = 0  # same or older analysis already stored: nothing changed
    CREATED = 1
    REPLACED = 2  # a newer analysis of a stored article


class InvalidCursor(ValueError):
    """A paging cursor this store did not write (or wrote for the other order)."""


def normalise(value: str) -> str:
    """How filter values and indexed values are compared: whitespace collapsed, case-folded."""
    return " ".join(value.split()).casefold()


FilterText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class ArticleFilters(BaseModel):
    """Filters shared by REST queries and WebSocket subscriptions; every one given must match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sentiment: Sentiment | None = None
    source: FilterText | None = Field(default=None, description="source name, case-insensitive")
    category: FilterText | None = Field(default=None, description="category, case-insensitive")
    language: FilterText | None = Field(default=None, description="language code, case-insensitive")
    entity: FilterText | None = Field(default=None, description="an entity's text, case-insensitive")

    def active(self) -> dict[str, str]:
        return {f: normalise(v) for f in FILTER_FIELDS if (v := getattr(self, f))}

    def matches(self, article: AnalyzedArticle) -> bool:
        values = _index_values(article)
        return all(v in values[f] for f, v in self.active().items())


def _index_values(article: AnalyzedArticle) -> dict[str, set[str]]:
    a = article.analysis
    return {
        "sentiment": {a.sentiment},
        "source": {normalise(article.source)},
        "category": {normalise(a.category)},
        "language": {normalise(a.language)},
        # Both the surface text and the canonical name find an article ("Trump" and "Donald Trump").
        "entity": {normalise(e.text) for e in a.entities} | {normalise(e.name) for e in a.entities if e.name},
    }


@dataclass(frozen=True)
class Page:
    items: list[AnalyzedArticle]
    next_cursor: str | None
    raw: list[str]  # the stored JSON of each item, to send as it is


@dataclass(frozen=True)
class JsonPage:
    """One page as a JSON array of the stored items (list views or whole records), to send as it is."""

    body: bytes
    count: int  # items on the page
    next_cursor: str | None


def _lead(description: Any, content: Any) -> str | None:
    if isinstance(description, str) and description.strip():
        return description
    if not isinstance(content, str) or not content.strip():
        return None
    if len(content) <= LEAD_MAX:
        return content
    cut = content[: LEAD_MAX - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > LEAD_MAX // 2 else cut).rstrip() + "\u2026"


def list_view(record: bytes | str) -> bytes:
    """What a list shows of a stored article (its JSON): every field but `description`, `content` and the
    analysis' `embedding`, plus `lead` (the description, else the start of the content, at most LEAD_MAX
    characters). Written beside the record when it is stored, so a list read sends it as it is."""
    data = orjson.loads(record)
    data["lead"] = _lead(data.pop("description", None), data.pop("content", None))
    analysis = data.get("analysis")
    if isinstance(analysis, dict):
        analysis.pop("embedding", None)
    return orjson.dumps(data)


@dataclass(frozen=True)
class StoredEvent:
    """One entry of the event stream whose record is still current: what a WebSocket client is sent."""

    cursor: str
    article: AnalyzedArticle
    json: str


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def stream_id(value: str) -> tuple[int, int]:
    """Parse a stream entry id (`<ms>-<seq>`) for comparison; ValueError when it is not one."""
    ms, sep, seq = value.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit() or len(ms) > 20 or len(seq) > 20:
        raise ValueError(f"not a stream id: {value[:40]!r}")
    return int(ms), int(seq)


def epoch_seconds(value: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC (never the host's zone)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH).total_seconds()


_PUT = """
-- KEYS: 1 record, 2 ix, 3 recent, 4 top, 5 expiry, 6 stream, 7 trimmed, 8.. secondary indexes
-- ARGV: 1 json, 2 version, 3 ttl, 4 published_at, 5 importance, 6 id, 7 expire_at, 8 ix ttl, 9 stream maxlen,
--       10 content fingerprint, 11 list view
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and tonumber(cur) >= tonumber(ARGV[2]) then
  return {0, false}
end
if cur and redis.call('HGET', KEYS[1], 'f') == ARGV[10] then
  return {0, false}  -- analysed again with the same result (a worker retry): nothing new to store or announce
end
local old = redis.call('GET', KEYS[2])
if old then
  for key in string.gmatch(old, '[^\\n]+') do redis.call('ZREM', key, ARGV[6]) end
end
local names = {}
for i = 8, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[4], ARGV[6])
  names[#names + 1] = KEYS[i]
end
redis.call('SET', KEYS[2], table.concat(names, '\\n'), 'EX', ARGV[8])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'v', ARGV[2], 'f', ARGV[10], 'l', ARGV[11])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6])
local maxlen = tonumber(ARGV[9])
local n = redis.call('XLEN', KEYS[6])
if n >= maxlen then
  local gone = redis.call('XRANGE', KEYS[6], '-', '+', 'COUNT', n - maxlen + 1)
  redis.call('SET', KEYS[7], gone[#gone][1])
  redis.call('XTRIM', KEYS[6], 'MAXLEN', maxlen - 1)
end
local sid = redis.call('XADD', KEYS[6], '*', 'a', ARGV[6], 'v', ARGV[2])
if cur then return {2, sid} end
return {1, sid}
"""

_SWEEP = """
-- KEYS: 1 expiry, 2 recent, 3 top; ARGV: 1 now, 2 max ids, 3 record key prefix, 4 ix key prefix
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
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[1], id)
    removed = removed + 1
  end
end
return removed
"""

_SOURCE = """
-- KEYS: 1 scratch, 2 order index, 3 recent, 4.. filter indexes
-- ARGV: 1 order, 2 since ('-inf' or number), 3 max score ('+inf' or the cursor's), 4 cursor id or '', 5 count
local src = KEYS[2]
local since = ARGV[2]
local nf = #KEYS - 3
if nf == 1 and ARGV[1] == 'recent' then
  src = KEYS[4]  -- one filter index is already scored by publication time
elseif nf > 0 or (ARGV[1] == 'top' and since ~= '-inf') then
  local args = {'ZINTERSTORE', KEYS[1], nf + 1, KEYS[3]}
  for i = 4, #KEYS do args[#args + 1] = KEYS[i] end
  args[#args + 1] = 'WEIGHTS'
  args[#args + 1] = 1
  for i = 4, #KEYS do args[#args + 1] = 0 end
  redis.call(unpack(args))
  if since ~= '-inf' then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. since)
    since = '-inf'
  end
  if ARGV[1] == 'top' then
    redis.call('ZINTERSTORE', KEYS[1], 2, KEYS[1], KEYS[2], 'WEIGHTS', 0, 1)
  end
  src = KEYS[1]
end
if ARGV[1] == 'top' then since = '-inf' end
"""

_QUERY = (
    _SOURCE
    + """
local want = tonumber(ARGV[5]) * 2
local cid = ARGV[4]
local maxs = ARGV[3]
local maxn = tonumber(maxs)
local out = {}
local offset = 0
local batch = tonumber(ARGV[5]) + 32
while #out < want do
  local rows = redis.call('ZREVRANGEBYSCORE', src, maxs, since, 'WITHSCORES', 'LIMIT', offset, batch)
  if #rows == 0 then break end
  for i = 1, #rows, 2 do
    if cid == '' or tonumber(rows[i + 1]) < maxn or rows[i] < cid then
      out[#out + 1] = rows[i]
      out[#out + 1] = rows[i + 1]
      if #out >= want then break end
    end
  end
  offset = offset + batch
end
if src == KEYS[1] then redis.call('DEL', KEYS[1]) end
return out
"""
)


_LIST = (
    _SOURCE
    + """
-- ARGV (besides the above): 6 record key prefix, 7 the hash field to send ('l' the list view, 'json' the record),
--   8 'join' or 'split'. Reads up to ARGV[5] (the page's length + 1, to know whether a page follows) records.
-- Returns {stale, found, cursor id, cursor score, joined, kind, body, ...}: stale = ids whose record has expired
-- (the caller sweeps them); the cursor fields are the page's last item's when a page follows, else ''.
-- `joined` is the page's records joined by ',' (one reply to send as it is) when ARGV[8] is 'join' and every
-- record had ARGV[7]; otherwise it is nil and each record follows with its kind ('l' or 'json': a record stored
-- before list views existed has no 'l', and the caller projects it).
local want = tonumber(ARGV[5])
local cid = ARGV[4]
local maxs = ARGV[3]
local maxn = tonumber(maxs)
local field = ARGV[7]
local stale = 0
local ids, scores, kinds, bodies = {}, {}, {}, {}
local mixed = ARGV[8] ~= 'join'
local offset = 0
local batch = want + 8
while #bodies < want do
  local rows = redis.call('ZREVRANGEBYSCORE', src, maxs, since, 'WITHSCORES', 'LIMIT', offset, batch)
  if #rows == 0 then break end
  for i = 1, #rows, 2 do
    if cid == '' or tonumber(rows[i + 1]) < maxn or rows[i] < cid then
      local key = ARGV[6] .. rows[i]
      local kind = field
      local body = redis.call('HGET', key, field)
      if not body and field ~= 'json' then
        kind = 'json'
        body = redis.call('HGET', key, 'json')
        mixed = true
      end
      if body then
        local n = #bodies + 1
        ids[n], scores[n], kinds[n], bodies[n] = rows[i], rows[i + 1], kind, body
        if n >= want then break end
      else
        stale = stale + 1
      end
    end
  end
  if #rows < batch * 2 then break end
  offset = offset + batch
end
if src == KEYS[1] then redis.call('DEL', KEYS[1]) end
local page = math.min(#bodies, want - 1)
local out = {stale, #bodies, '', ''}
if #bodies >= want then
  out[3], out[4] = ids[page], scores[page]
end
if not mixed then
  out[5] = table.concat(bodies, ',', 1, page)
  return out
end
out[5] = false
for i = 1, page do
  out[#out + 1] = kinds[i]
  out[#out + 1] = bodies[i]
end
return out
"""
)

QUERY_SCRIPT = _QUERY
"""The paged read of scored indexes, shared with `common.story_store` (same index layout)."""


def _fingerprint(payload: str) -> str:
    """What a reader sees of an analysis (the article's JSON): everything but when it was fetched and analysed
    and how long it took. From the JSON about to be stored, with orjson: no second dump of the model."""
    data = orjson.loads(payload)
    data.pop("analyzed_at", None)
    data.pop("fetched_at", None)
    data["analysis"].pop("latency_ms", None)
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _encode_cursor(order: Order, score: str, article_id: str) -> str:
    # Python's repr round-trips the double exactly; "e+" would read as a space in an unencoded query.
    return f"{order[0]}_{float(score)!r}_{article_id}".replace("e+", "e")


def cursor_after(order: Order, article: AnalyzedArticle) -> str:
    """The cursor that continues `order` after `article` (as if a page had ended with it)."""
    score = epoch_seconds(article.published_at) if order == "recent" else article.analysis.importance_score
    return _encode_cursor(order, repr(float(score)), article.id)


def _decode_cursor(order: Order, cursor: str) -> tuple[str, str]:
    if not re.fullmatch(CURSOR_PATTERNS[order], cursor):
        other: Order = "top" if order == "recent" else "recent"
        if re.fullmatch(CURSOR_PATTERNS[other], cursor):
            raise InvalidCursor(f"this cursor pages another list, not /news/{order}")
        raise InvalidCursor("not a cursor returned by this API")
    _, score, article_id = cursor.split("_")
    return score, article_id


class ArticleStore:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "news:",
        ttl_seconds: int = 7 * 24 * 3600,
        stream_maxlen: int = 10_000,
    ) -> None:
        if stream_maxlen < 1:
            raise ValueError("stream_maxlen must be at least 1")
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._stream_maxlen = stream_maxlen
        self._put = redis.register_script(_PUT)
        self._sweep = redis.register_script(_SWEEP)
        self._query = redis.register_script(_QUERY)
        self._list = redis.register_script(_LIST)
        self.recent_key = f"{prefix}idx:recent"
        self.top_key = f"{prefix}idx:top"
        self.expiry_key = f"{prefix}idx:expiry"
        self.stream_key = f"{prefix}events"
        self.trimmed_key = f"{prefix}events:trimmed"

    def _article_key(self, article_id: str) -> str:
        return f"{self._prefix}article:{article_id}"

    def _ix_key(self, article_id: str) -> str:
        return f"{self._prefix}ix:{article_id}"

    def index_key(self, field: str, value: str) -> str:
        """The secondary index of articles whose `field` is `value` (normalised here)."""
        return f"{self._prefix}idx:{field}:{normalise(value)}"

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    # -- writes -------------------------------------------------------------------------------------

    async def put(self, article: AnalyzedArticle) -> PutResult:
        result, _ = await self.put_with_cursor(article)
        return result

    async def put_with_cursor(self, article: AnalyzedArticle) -> tuple[PutResult, str | None]:
        """Store (or replace with a newer analysis) and log the event; the cursor is None for a duplicate."""
        keys, args = self._put_call(article)
        try:
            result, cursor = await self._put(keys=keys, args=args)
        except RedisError as exc:
            raise StoreError(f"could not store article {article.id}: {exc}") from exc
        return PutResult(int(result)), None if cursor is None else _text(cursor)

    async def put_many(self, articles: Sequence[AnalyzedArticle]) -> list[PutResult]:
        """Store a batch in one round trip: the same atomic script per article, pipelined in order (so a batch
        costs one network wait, not one per article). Each write is idempotent; if Redis fails part-way the
        articles written so far stay written and `StoreError` asks for the whole batch again (their second write
        is a duplicate)."""
        if not articles:
            return []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for article in articles:
                    keys, args = self._put_call(article)
                    await self._put(keys=keys, args=args, client=pipe)
                replies = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not store a batch of {len(articles)} articles: {exc}") from exc
        return [PutResult(int(reply[0])) for reply in replies]

    def _put_call(self, article: AnalyzedArticle) -> tuple[list[str], list[Any]]:
        """The keys and arguments of `_PUT` for one article."""
        payload = article.model_dump_json()
        version = int(epoch_seconds(article.analyzed_at) * 1000)
        secondary = sorted(
            {self.index_key(field, v) for field, values in _index_values(article).items() for v in values}
        )
        keys = [
            self._article_key(article.id),
            self._ix_key(article.id),
            self.recent_key,
            self.top_key,
            self.expiry_key,
            self.stream_key,
            self.trimmed_key,
            *secondary,
        ]
        args: list[Any] = [
            payload,
            version,
            self._ttl,
            epoch_seconds(article.published_at),
            article.analysis.importance_score,
            article.id,
            int(time.time()) + self._ttl,
            self._ttl + _SWEEP_GRACE_S,
            self._stream_maxlen,
            _fingerprint(payload),
            list_view(payload),
        ]
        return keys, args

    async def sweep(self, now: float | None = None, max_ids: int = 1_000) -> int:
        """Remove articles whose record has expired from every index; returns how many."""
        try:
            removed = await self._sweep(
                keys=[self.expiry_key, self.recent_key, self.top_key],
                args=[time.time() if now is None else now, max_ids, self._article_key(""), self._ix_key("")],
            )
        except RedisError as exc:
            raise StoreError(f"could not sweep expired articles: {exc}") from exc
        return int(removed)

    # -- reads --------------------------------------------------------------------------------------

    async def get(self, article_id: str) -> AnalyzedArticle | None:
        try:
            raw = await self._redis.hget(self._article_key(article_id), "json")
        except RedisError as exc:
            raise StoreError(f"could not read article {article_id}: {exc}") from exc
        return None if raw is None else AnalyzedArticle.model_validate_json(raw, context=STORED)

    async def get_json(self, article_id: str) -> str | None:
        """The stored JSON of one article, as stored (validated on the way in), or None."""
        try:
            raw = await self._redis.hget(self._article_key(article_id), "json")
        except RedisError as exc:
            raise StoreError(f"could not read article {article_id}: {exc}") from exc
        return None if raw is None else _text(raw)

    async def get_bytes(self, article_id: str) -> bytes | None:
        """The stored JSON of one article as bytes, to send as it is, or None."""
        try:
            raw = await self._redis.hget(self._article_key(article_id), "json")
        except RedisError as exc:
            raise StoreError(f"could not read article {article_id}: {exc}") from exc
        return None if raw is None else raw if isinstance(raw, bytes) else str(raw).encode()

    async def _page(
        self,
        order: Order,
        limit: int,
        filters: ArticleFilters | None,
        since: datetime | None,
        cursor: str | None,
        view: View,
        *,
        join: bool,
    ) -> tuple[int, str | None, Any, list[tuple[Any, Any]]]:
        """`_LIST` for one page: (items on it, next cursor, the joined records or None, (kind, record) pairs)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        active = () if filters is None else sorted(filters.active().items())
        max_score, after_id = ("+inf", "") if cursor is None else _decode_cursor(order, cursor)
        keys = [
            f"{self._prefix}scratch:{uuid.uuid4().hex}" if active or since is not None else f"{self._prefix}scratch",
            self.recent_key if order == "recent" else self.top_key,
            self.recent_key,
            *(self.index_key(f, v) for f, v in active),
        ]
        args: list[str | int] = [
            order,
            "-inf" if since is None else repr(epoch_seconds(since)),
            max_score,
            after_id,
            limit + 1,
            self._article_key(""),
            "l" if view == "lean" else "json",
            "join" if join else "split",
        ]
        try:
            rows: Sequence[Any] = await self._list(keys=keys, args=args)
            if rows[0]:
                await self.sweep()
        except RedisError as exc:
            raise StoreError(f"could not read /news/{order}: {exc}") from exc
        found, next_id, next_score = int(rows[1]), _text(rows[2]), _text(rows[3])
        next_cursor = _encode_cursor(order, next_score, next_id) if next_id else None
        return min(found, limit), next_cursor, rows[4], list(zip(rows[5::2], rows[6::2], strict=True))

    async def page_json(
        self,
        order: Order,
        limit: int,
        *,
        filters: ArticleFilters | None = None,
        since: datetime | None = None,
        cursor: str | None = None,
        view: View = "lean",
    ) -> JsonPage:
        """One page as a JSON array, newest (recent) or most important (top) first, in one round trip:
        `view="lean"` the list views, `"full"` the whole records, joined by Redis and sent as they are.

        Order is (score, id) descending, so pages neither skip nor repeat an article even while new ones
        arrive. `since` keeps articles published at or after it. Raises InvalidCursor for a bad cursor.
        """
        n, next_cursor, joined, items = await self._page(order, limit, filters, since, cursor, view, join=True)
        if joined is not None:
            return JsonPage(b"[" + _bytes(joined) + b"]", n, next_cursor)
        records = [list_view(_bytes(b)) if view == "lean" and _text(k) != "l" else _bytes(b) for k, b in items]
        return JsonPage(b"[" + b",".join(records) + b"]", n, next_cursor)

    async def query(
        self,
        order: Order,
        limit: int,
        *,
        filters: ArticleFilters | None = None,
        since: datetime | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of whole records, each also parsed (for callers that need the models); see `page_json`."""
        _, next_cursor, _, items = await self._page(order, limit, filters, since, cursor, "full", join=False)
        raw = [_text(b) for _, b in items]
        return Page([AnalyzedArticle.model_validate_json(r, context=STORED) for r in raw], next_cursor, raw)

    async def get_many_json(self, article_ids: Iterable[str]) -> list[str | None]:
        """The stored JSON of each article (None where there is none), in one round trip."""
        try:
            return [None if r is None else _text(r) for r in await self._fetch(article_ids)]
        except RedisError as exc:
            raise StoreError(f"could not read articles: {exc}") from exc

    async def _fetch(self, ids: Iterable[str]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hget(self._article_key(i), "json")
            return list(await pipe.execute())

    async def recent(self, limit: int = 20) -> list[AnalyzedArticle]:
        return (await self.query("recent", limit)).items

    async def top(self, limit: int = 10) -> list[AnalyzedArticle]:
        return (await self.query("top", limit)).items

    async def count(self) -> int:
        try:
            return int(await self._redis.zcard(self.recent_key))
        except RedisError as exc:
            raise StoreError(f"could not count articles: {exc}") from exc

    # -- event stream (WebSocket fan-out and resume) ------------------------------------------------

    async def last_cursor(self) -> str:
        """Id of the newest event ("0-0" when there is none yet): the cursor of "now"."""
        try:
            last: Any = await self._redis.xrevrange(self.stream_key, count=1)
        except RedisError as exc:
            raise StoreError(f"could not read the event stream: {exc}") from exc
        return _text(last[0][0]) if last else "0-0"

    async def can_resume(self, cursor: str) -> bool:
        """Whether every event after `cursor` is still in the stream (and the cursor is not from the future)."""
        position = stream_id(cursor)
        try:
            trimmed = await self._redis.get(self.trimmed_key)
        except RedisError as exc:
            raise StoreError(f"could not read the event stream: {exc}") from exc
        if trimmed is not None and position < stream_id(_text(trimmed)):
            return False
        return position <= stream_id(await self.last_cursor())

    async def read_events(
        self, after: str, *, block_ms: int = 5_000, count: int = 100
    ) -> tuple[str, list[StoredEvent]]:
        """Wait up to `block_ms` for events after `after`; returns the new position and the current ones."""
        try:
            reply: Any = await self._redis.xread({self.stream_key: after}, count=count, block=block_ms)
        except RedisError as exc:
            raise StoreError(f"could not read the event stream: {exc}") from exc
        entries = list(reply[0][1]) if reply else []
        if not entries:
            return after, []
        return _text(entries[-1][0]), await self._current(entries)

    async def events_after(self, after: str, *, count: int) -> tuple[str, list[StoredEvent]]:
        """Events logged after `after` (up to `count` entries, oldest first) and the position reached."""
        try:
            entries: Any = await self._redis.xrange(self.stream_key, min=f"({after}", count=count)
        except RedisError as exc:
            raise StoreError(f"could not read the event stream: {exc}") from exc
        if not entries:
            return after, []
        return _text(entries[-1][0]), await self._current(entries)

    async def _current(self, entries: Sequence[Any]) -> list[StoredEvent]:
        # An entry is delivered only while its version is the stored one: a replaced analysis is
        # delivered by its own later entry, an expired one not at all.
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, fields in entries:
                    pipe.hmget(self._article_key(_text(fields[b"a"])), ["json", "v"])
                records = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not read the event stream: {exc}") from exc
        out = []
        for (entry_id, fields), (raw, version) in zip(entries, records, strict=True):
            if raw is None or version is None or _text(version) != _text(fields[b"v"]):
                continue
            text = _text(raw)
            out.append(StoredEvent(_text(entry_id), AnalyzedArticle.model_validate_json(text, context=STORED), text))
        return out
