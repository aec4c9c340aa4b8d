"""The yardstick for the consumer's list reads: the least a FastAPI app can do to answer `GET /news/recent`.

One route doing the same Redis reads as the consumer's list (the newest ids from the sorted set, then the 20
stored documents in one pipeline) and sending them as they are, with nothing else: no filters, cursor,
validation, ETag, middleware or auth. bench/serving.py starts it like the consumer (one uvicorn process, no
access log), on the same Redis slice, and drives it with the same wrk, so the consumer's requests/s is read
as a share of what FastAPI over Redis allows on the same machine at the same moment.

    REDIS__URL=redis://127.0.0.1:6379/0 REDIS__KEY_PREFIX=news: python -m uvicorn bench.bare_app:app

It sends whole records (the consumer's default list view is leaner), so it is the same Redis work and a
larger answer: a fair ceiling for the consumer's server-side cost, not a rival feature set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response

from common.redis_client import open_redis
from common.settings import RedisSettings

__all__ = ["app"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = RedisSettings(
        url=os.environ.get("REDIS__URL", RedisSettings().url),
        key_prefix=os.environ.get("REDIS__KEY_PREFIX", RedisSettings().key_prefix),
    )
    async with AsyncExitStack() as stack:
        # The consumer's own pool (bounded, blocking), so the two differ only in what they do per request.
        app.state.redis = await open_redis(stack, settings)
        app.state.prefix = settings.key_prefix
        yield


app = FastAPI(title="bare FastAPI + Redis", lifespan=_lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, bool]:
    return {"ready": True}


@app.get("/news/recent")
async def recent(request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> Response:
    redis: Any = request.app.state.redis
    prefix: str = request.app.state.prefix
    ids = await redis.zrevrange(f"{prefix}idx:recent", 0, limit - 1)
    async with redis.pipeline(transaction=False) as pipe:
        for i in ids:
            pipe.hget(f"{prefix}article:{i.decode()}", "json")
        records = await pipe.execute()
    return Response(b"[" + b",".join(r for r in records if r is not None) + b"]", media_type="application/json")
