"""The engine: analyses batches of articles concurrently without blocking the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from common.schemas import Analysis, RawArticle
from inference.fast import analyze_fast

__all__ = ["ENGINE_VERSION", "Engine", "get_engine"]

ENGINE_VERSION = "0.1.0"


class Engine:
    """`analyze_batch` answers every article exactly once, in input order."""

    def __init__(self, *, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")

    async def analyze(self, article: RawArticle) -> Analysis:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        analysis = await loop.run_in_executor(self._pool, analyze_fast, article)
        latency = (time.perf_counter() - start) * 1000
        return analysis.model_copy(update={"engine_version": ENGINE_VERSION, "latency_ms": round(latency, 3)})

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        return list(await asyncio.gather(*(self.analyze(a) for a in articles)))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return Engine()
