"""Helpers for the stream worker tests: a scriptable stand-in for the inference service, topic I/O."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from itertools import islice
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from common.schemas import Analysis, RawArticle
from common.settings import KafkaSettings
from tests.support.fake_llm import FakeServer

__all__ = ["fake_inference", "produce", "read_topic", "real_articles"]


def fake_inference() -> FakeServer:
    """`POST /v1/analyze/batch` like the inference service. `server.mode`: "ok" answers, "500" is an
    outage, "slow" waits `slow_s` per batch; an article titled with "POISON" is always refused (422)."""
    app = FastAPI()
    server: FakeServer

    @app.post("/v1/analyze/batch")
    async def batch(request: Request) -> Response:
        server.calls += 1
        body = orjson.loads(await request.body())
        if server.mode == "500":
            return JSONResponse({"detail": "engine down"}, status_code=503)
        if server.mode == "slow":
            await asyncio.sleep(server.slow_s)
        articles = body["articles"]
        if any("POISON" in a["title"] for a in articles):
            return JSONResponse({"detail": "cannot analyse this article"}, status_code=422)
        server.requests.extend(articles)
        analysis = Analysis(sentiment="positive", sentiment_score=0.5, keywords=["kafka"]).model_dump(mode="json")
        return JSONResponse({"results": [{"id": a.get("id", ""), "analysis": analysis} for a in articles]})

    server = FakeServer(app)
    return server.start()


def real_articles(n: int) -> list[RawArticle]:
    """The first `n` valid articles of the replay corpus."""
    from producer.corpus import read_corpus

    out: list[RawArticle] = []
    for item in islice(read_corpus(), n * 2):
        try:
            out.append(RawArticle.model_validate(item))
        except ValidationError:
            continue
        if len(out) == n:
            break
    return out


async def produce(settings: KafkaSettings, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    settings: KafkaSettings,
    topic: str,
    *,
    until: Any = None,
    timeout: float = 60.0,
    isolation_level: str = "read_uncommitted",
) -> list[Any]:
    """Every record of `topic` from the beginning, read until `until(records)` holds or `timeout`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for rs in batch.values():
                records.extend(rs)
            if until is not None and until(records):
                break
    finally:
        await consumer.stop()
    return records
