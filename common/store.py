"""Typed Redis access to analysed articles: idempotent writes, indexes that stay consistent with expiry.

Layout (every key under the configured prefix):
  article:{id}     hash {json, v}: the AnalyzedArticle JSON and its version (analyzed_at, epoch ms); TTL
  idx:recent       sorted set id -> published_at (epoch s)
  idx:top          sorted set id -> importance_score
  events           pub/sub channel: JSON of each newly stored or replaced article, for WebSocket fan-out

A write is one Lua script, so it is atomic: the same analysis twice leaves one entry and is not
announced twice; an older analysis never replaces a newer one. Index entries whose record has
expired are dropped when read, so no client ever sees an id without its article.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import StoreError
from common.schemas import AnalyzedArticle

__all__ = ["ArticleStore", "PutResult"]


class PutResult(IntEnum):
    DUPLICATE = 0  # same or older analysis already stored: nothing changed
    CREATED = 1
    REPLACED = 2  # a newer analysis of a stored article


_PUT = """
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and tonumber(cur) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'v', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
redis.call('PUBLISH', KEYS[4], ARGV[1])
if cur then return 2 end
return 1
"""


class ArticleStore:
    def __init__(self, redis: Redis, *, prefix: str = "news:", ttl_seconds: int = 7 * 24 * 3600) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._put = redis.register_script(_PUT)
        self.recent_key = f"{prefix}idx:recent"
        self.top_key = f"{prefix}idx:top"
        self.channel = f"{prefix}events"

    def _article_key(self, article_id: str) -> str:
        return f"{self._prefix}article:{article_id}"

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def put(self, article: AnalyzedArticle) -> PutResult:
        payload = article.model_dump_json()
        version = int(article.analyzed_at.timestamp() * 1000)
        try:
            result = await self._put(
                keys=[self._article_key(article.id), self.recent_key, self.top_key, self.channel],
                args=[
                    payload,
                    version,
                    self._ttl,
                    article.published_at.timestamp(),
                    article.analysis.importance_score,
                    article.id,
                ],
            )
        except RedisError as exc:
            raise StoreError(f"could not store article {article.id}: {exc}") from exc
        return PutResult(int(result))

    async def get(self, article_id: str) -> AnalyzedArticle | None:
        try:
            raw = await self._redis.hget(self._article_key(article_id), "json")
        except RedisError as exc:
            raise StoreError(f"could not read article {article_id}: {exc}") from exc
        return None if raw is None else AnalyzedArticle.model_validate_json(raw)

    async def _from_index(self, key: str, limit: int) -> list[AnalyzedArticle]:
        # Over-fetch a little so that expired ids pruned on the way still leave `limit` results.
        out: list[AnalyzedArticle] = []
        start = 0
        try:
            while len(out) < limit:
                ids: Sequence[Any] = await self._redis.zrevrange(key, start, start + limit * 2 - 1)
                if not ids:
                    break
                start += len(ids)
                records = await self._fetch(ids)
                stale = [i for i, r in zip(ids, records, strict=True) if r is None]
                if stale:
                    await self._redis.zrem(self.recent_key, *stale)
                    await self._redis.zrem(self.top_key, *stale)
                    start -= len(stale)
                out.extend(AnalyzedArticle.model_validate_json(r) for r in records if r is not None)
        except RedisError as exc:
            raise StoreError(f"could not read index {key}: {exc}") from exc
        return out[:limit]

    async def _fetch(self, ids: Sequence[Any]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hget(self._article_key(i.decode() if isinstance(i, bytes) else i), "json")
            return list(await pipe.execute())

    async def recent(self, limit: int = 20) -> list[AnalyzedArticle]:
        return await self._from_index(self.recent_key, limit)

    async def top(self, limit: int = 10) -> list[AnalyzedArticle]:
        return await self._from_index(self.top_key, limit)

    async def count(self) -> int:
        return int(await self._redis.zcard(self.recent_key))
