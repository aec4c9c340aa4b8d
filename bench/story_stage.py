"""`python -m bench.story_stage [N]`: CPU per article and resident memory of the story stage's batch
function over N articles (real corpus texts, synthetic clustered 384-d embeddings; no Kafka, no Redis write
except one checkpoint at the end, timed apart). Run with OPENBLAS_NUM_THREADS=1 (the stage is one thread)."""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Sequence
from datetime import timedelta

import numpy as np
from prometheus_client import CollectorRegistry

from common.metrics import StoryMetrics
from common.schemas import Analysis, AnalyzedArticle, RawArticle
from common.settings import TopicNames
from common.topics import Topics
from common.vectors import pack
from stream_worker.processing import story_input_copy
from stream_worker.story_stage import StageConfig, StoryRecord, StoryStage, process_story_batch

__all__ = ["main"]


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def _ack(_topic: str, _key: bytes | None, _value: bytes) -> Awaitable[object]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def _no_replay(_partition: int, _start: int, _end: int) -> Sequence[StoryRecord]:
    return []


async def main(n: int) -> None:
    from producer.corpus import read_corpus

    raws: list[RawArticle] = []
    for item in read_corpus():
        try:
            raws.append(RawArticle.model_validate(item))
        except ValueError:
            continue
        if len(raws) == 2_000:
            break
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((4_000, 384)).astype(np.float32)
    topics = Topics.of(TopicNames(prefix="bench."))
    stage = StoryStage(
        topics=topics,
        redis=None,
        key_prefix="bench:",
        metrics=StoryMetrics.create(CollectorRegistry()),
        config=StageConfig(),
    )
    base = raws[0].published_at
    records = []
    for i in range(n):
        raw = raws[i % len(raws)]
        vector = centres[int(rng.integers(0, len(centres)))] + 0.6 * rng.standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        article = AnalyzedArticle.from_raw(
            raw.model_copy(update={"url": f"{raw.url}?n={i}", "published_at": base + timedelta(seconds=20 * i)}),
            Analysis(
                sentiment="neutral",
                sentiment_score=0.0,
                language="en",
                models={"embedding": "minilm"},
                embedding=pack(vector),
            ),
        )
        # Each article gets its own id (its URL): copies of corpus texts become near-duplicates, as in a feed.
        article = article.model_copy(update={"id": f"{i:032x}"})
        article = story_input_copy(article)  # as the feed sends it
        records.append(
            StoryRecord(0, i, article.published_at.timestamp(), b"en", topics.story_input.encode(article).value)
        )
    rss0 = _rss_mib()
    cpu0 = time.process_time()
    marks = []
    for start in range(0, n, 50):
        await process_story_batch(stage, records[start : start + 50], send=_ack, replay=_no_replay)
        if (start // 50) % max(1, n // 500) == 0:
            marks.append((start + 50, _rss_mib()))
    cpu = time.process_time() - cpu0
    state = stage.language(0, "en")
    if state is None:
        raise SystemExit("no state: nothing was assigned")
    t0 = time.process_time()
    size = len(str(state.to_dict()))
    snap = time.process_time() - t0
    print(f"articles {n}: {1000 * cpu / n:.3f} ms CPU/article (decode, dedup, assign, encode updates)")
    print(
        f"working set: {len(state.clusterer)} stories, {len(state.dedup)} signatures; "
        f"checkpoint {size / 2**20:.1f} MiB "
        f"serialised in {snap * 1000:.0f} ms CPU (every {stage.config.checkpoint_records} records: "
        f"{1000 * snap / stage.config.checkpoint_records:.3f} ms/article)"
    )
    print(f"RSS MiB: start {rss0:.0f}; " + ", ".join(f"{k}: {v:.0f}" for k, v in marks[:: max(1, len(marks) // 10)]))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
