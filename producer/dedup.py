"""Which articles were already produced: one Redis key per article id, claimed before the send, confirmed after.

Why two steps, and not one `SET NX` (see docs/sources.md, *No duplicates, no loss*):
marking before the send loses the article if the process dies before Kafka has it; marking after
the ack duplicates it if the process dies between the ack and the mark. So a key goes through

  (absent) --claim--> "p|<instance>|<run>|<lease since ms>|<scan since ms>" --ack, confirm--> "d"

A claim that is never confirmed belongs to a process that died (or a send that failed and was
released). The next producer that meets the article takes the claim over, at once when the claim
is from an earlier run of its own instance (a restart), else once the lease has passed, and asks Kafka whether
a record with that key was written since the first claim; only if not does it send it again.
Both keys expire after the TTL, so memory is bounded by the articles of one TTL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import StoreError
from producer.service import Claim

__all__ = ["RedisDedup"]

# KEYS: one per article. ARGV: instance, run, now ms, lease ms, ttl s.
# Answers per key: "new" | "dup" | "busy" | "recover:<scan since ms>".
_CLAIM = """
local inst, run, now, lease, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, 'p|' .. inst .. '|' .. run .. '|' .. now .. '|' .. now, 'EX', ttl)
    out[i] = 'new'
  elseif v == 'd' then
    out[i] = 'dup'
  else
    local oinst, orun, since, scan = string.match(v, '^p|(.*)|([^|]*)|(%d+)|(%d+)$')
    if oinst == nil then
      out[i] = 'dup'
    elseif (orun == run or oinst ~= inst) and now - tonumber(since) < lease then
      out[i] = 'busy'
    else
      redis.call('SET', key, 'p|' .. inst .. '|' .. run .. '|' .. now .. '|' .. scan, 'EX', ttl)
      out[i] = 'recover:' .. scan
    end
  end
end
return out
"""

# Delete the claims this run still holds (a send that failed), so that the next poll retries at once.
_RELEASE = """
local prefix = ARGV[1]
local n = 0
for _, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and string.sub(v, 1, string.len(prefix)) == prefix then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"""


class RedisDedup:
    """Claims, confirms and releases article ids in Redis under `<prefix>seen:<id>`."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        instance: str,
        ttl_seconds: int,
        lease_seconds: float,
        run: str | None = None,
    ) -> None:
        if "|" in (run or ""):
            raise ValueError("run token may not contain '|'")
        self._redis = redis
        self._prefix = f"{prefix}seen:"
        self._instance = instance
        self._run = run or uuid.uuid4().hex
        self._ttl = ttl_seconds
        self._lease_ms = int(lease_seconds * 1000)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    @property
    def run(self) -> str:
        return self._run

    def key(self, article_id: str) -> str:
        return f"{self._prefix}{article_id}"

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def claim(self, ids: Sequence[str]) -> list[Claim]:
        if not ids:
            return []
        try:
            answers = await self._claim(
                keys=[self.key(i) for i in ids],
                args=[self._instance, self._run, int(time.time() * 1000), self._lease_ms, self._ttl],
            )
        except (RedisError, OSError) as exc:
            raise StoreError(f"dedup store unavailable, nothing produced: {exc}") from exc
        claims = []
        for raw in answers:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            if text.startswith("recover:"):
                claims.append(Claim("recover", since_ms=int(text.split(":", 1)[1])))
            else:
                claims.append(Claim(text))  # type: ignore[arg-type]
        return claims

    async def confirm(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.set(self.key(i), "d", ex=self._ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # The records are in Kafka; the claims stay and are resolved against Kafka later.
            raise StoreError(f"produced, but could not record it in the dedup store: {exc}") from exc

    async def release(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        try:
            await self._release(keys=[self.key(i) for i in ids], args=[f"p|{self._instance}|{self._run}|"])
        except (RedisError, OSError):
            pass  # the claims expire into takeovers; nothing is lost, the next poll only waits for the lease
