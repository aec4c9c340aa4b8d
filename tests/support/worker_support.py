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

from common.schemas import Analysis, AnalyzedArticle, RawArticle
from common.settings import KafkaSettings
from tests.support.fake_llm import FakeServer

__all__ = ["analysed_with_embeddings", "fake_inference", "produce", "read_topic", "real_articles", "story_reference"]


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


def analysed_with_embeddings(n: int, *, copies_every: int = 7, seed: int = 5) -> list[AnalyzedArticle]:
    """`n` analysed real articles for the story stage, as the feed sends them: embeddings drawn around a few
    dozen topics (so stories have several articles from several sources), and every `copies_every`-th one a
    re-post of an earlier article's text under a new URL (a near-duplicate). Deterministic for a seed."""
    import numpy as np

    from common.vectors import pack
    from stream_worker.processing import story_input_copy

    raws = real_articles(max(1, n))
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(3, n // 6), 384)).astype(np.float32)
    out: list[AnalyzedArticle] = []
    for i in range(n):
        raw = raws[i]
        topic = int(rng.integers(0, len(centres)))
        if copies_every and i % copies_every == copies_every - 1 and i > 0:
            earlier = raws[int(rng.integers(0, i))]
            raw = earlier.model_copy(update={"url": f"{earlier.url}?repost={i}", "source": f"Repost {i % 3}"})
            raw = RawArticle.model_validate(raw.model_dump(exclude={"id"}))
        vector = centres[topic] + 0.5 * rng.standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        analysis = Analysis(
            sentiment="neutral",
            sentiment_score=0.0,
            language="en",
            models={"embedding": "minilm"},
            embedding=pack(vector),
        )
        out.append(story_input_copy(AnalyzedArticle.from_raw(raw, analysis)))
    return out


async def story_reference(articles: list[AnalyzedArticle], topics: Any) -> list[Any]:
    """The story updates the stage's batch function gives for these articles in this order, in one process."""
    from prometheus_client import CollectorRegistry

    from common.metrics import StoryMetrics
    from stream_worker.story_stage import StoryRecord, StoryStage, process_story_batch

    stage = StoryStage(topics=topics, redis=None, key_prefix="ref:", metrics=StoryMetrics.create(CollectorRegistry()))
    sent: list[bytes] = []

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        if topic == topics.stories.name:
            sent.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def replay(partition: int, start: int, end: int) -> list[Any]:
        return []

    records = [
        StoryRecord(0, i, a.published_at.timestamp(), b"en", topics.story_input.encode(a).value)
        for i, a in enumerate(articles)
    ]
    await process_story_batch(stage, records, send=send, replay=replay)
    return [topics.stories.decode(v) for v in sent]
