"""The story stage's cost: CPU per article and resident memory over many articles (`python -m bench story_stage`).

What is measured is the stage's batch function (`process_story_batch`: decode, near-duplicate signature and
lookup, online clustering, story updates encoded), one thread, no Kafka and no Redis: the sends are acknowledged
at once. The checkpoint (every `checkpoint_records` records in the service) is serialised once at the end, timed
apart, and added per article. Inputs: real NewsArticles texts, each article's headline paired with another
article's body (so that 100,000 articles give 100,000 distinct texts for the shingles rather than 26 copies of the
corpus), every tenth article a re-send of one five before it (a near-duplicate, as wire copy is); embeddings are
SYNTHETIC (384-d, drawn around 4,000 topic centres; the engine is not part of this cost). Articles are built per
batch outside the CPU clock, so the resident memory is the stage's own.

Targets (issue 15): at most 2 ms of CPU per article; resident memory flat once the working set is full (the
bounded near-duplicate set and clusterer): `rss_growth_second_half_mib`, the growth over the second half of the
run, is expected within 10 MiB. Run with OPENBLAS_NUM_THREADS=1 (the stage is one thread).
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from bench.common import env_int, save_section
from common.metrics import StoryMetrics
from common.schemas import Analysis, AnalyzedArticle, RawArticle
from common.settings import TopicNames
from common.topics import Topics
from common.vectors import pack
from stream_worker.processing import story_input_copy
from stream_worker.story_stage import StageConfig, StoryRecord, StoryStage, process_story_batch

__all__ = ["TARGETS", "main", "measure", "run"]

TARGETS = {"cpu_ms_per_article": 2.0, "rss_growth_second_half_mib": 10.0, "articles": 100_000}
BATCH = 50


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def _ack(_topic: str, _key: bytes | None, _value: bytes) -> Awaitable[object]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def _no_replay(_partition: int, _start: int, _end: int) -> Sequence[StoryRecord]:
    return []


def _corpus() -> list[RawArticle]:
    from producer.corpus import read_corpus

    raws: list[RawArticle] = []
    for item in read_corpus():
        try:
            raws.append(RawArticle.model_validate(item))
        except ValueError:
            continue
    return raws


async def measure(n: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    raws = _corpus()
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
    stride = 7_919  # a prime: headline i meets body i * stride, a pairing that repeats only after len(raws)**2

    def record(i: int) -> StoryRecord:
        source = i - 5 if i % 10 == 9 else i  # a re-send of an article five before
        head, body = raws[source % len(raws)], raws[(source * stride) % len(raws)]
        vector = centres[int(rng.integers(0, len(centres)))] + 0.6 * rng.standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        raw = head.model_copy(
            update={
                "url": f"{head.url}?n={i}",
                "content": body.content,
                "published_at": base + timedelta(seconds=20 * i),
            }
        )
        article = AnalyzedArticle.from_raw(
            raw,
            Analysis(
                sentiment="neutral",
                sentiment_score=0.0,
                language="en",
                models={"embedding": "minilm"},
                embedding=pack(vector),
            ),
        )
        article = story_input_copy(article.model_copy(update={"id": f"{i:032x}"}))  # as the feed sends it
        value = topics.story_input.encode(article).value
        return StoryRecord(0, i, article.published_at.timestamp(), b"en", value)

    samples: list[list[float]] = []  # [articles, cpu ms per article over the last window, rss MiB]
    rss0 = _rss_mib()
    cpu = 0.0
    window_cpu, window_n = 0.0, 0
    every = max(BATCH, n // 50 // BATCH * BATCH)
    for start in range(0, n, BATCH):
        records = [record(i) for i in range(start, min(n, start + BATCH))]
        t0 = time.process_time()
        await process_story_batch(stage, records, send=_ack, replay=_no_replay)
        spent = time.process_time() - t0
        cpu += spent
        window_cpu += spent
        window_n += len(records)
        done = start + len(records)
        if done % every == 0 or done == n:
            samples.append([done, round(1000 * window_cpu / window_n, 3), round(_rss_mib(), 1)])
            window_cpu, window_n = 0.0, 0
            if len(samples) % 10 == 0:
                log(f"  {done} articles: {samples[-1][1]:.3f} ms CPU/article, RSS {samples[-1][2]:.0f} MiB")
    state = stage.language(0, "en")
    if state is None:
        raise SystemExit("no state: nothing was assigned")
    t0 = time.process_time()
    size = len(str(state.to_dict()))
    snap = time.process_time() - t0
    half = [s for s in samples if s[0] >= n // 2]
    section: dict[str, Any] = {
        "articles": n,
        "cpu_ms_per_article": round(1000 * cpu / n, 3),
        "checkpoint_ms": round(1000 * snap, 1),
        "checkpoint_mib": round(size / 2**20, 1),
        "checkpoint_every_records": stage.config.checkpoint_records,
        "cpu_ms_per_article_with_checkpoint": round(1000 * cpu / n + 1000 * snap / stage.config.checkpoint_records, 3),
        "working_set": {"stories": len(state.clusterer), "signatures": len(state.dedup)},
        "rss_start_mib": round(rss0, 1),
        "rss_end_mib": samples[-1][2],
        "rss_growth_second_half_mib": round(half[-1][2] - half[0][2], 1) if half else None,
        "samples": samples,
        "inputs": "real NewsArticles texts (headline i with body i*7919), every 10th a re-send; synthetic embeddings",
        "targets": TARGETS,
    }
    log(
        f"story stage: {n} articles, {section['cpu_ms_per_article']:.3f} ms CPU/article "
        f"({section['cpu_ms_per_article_with_checkpoint']:.3f} with the checkpoint); RSS {rss0:.0f} -> "
        f"{section['rss_end_mib']:.0f} MiB, {section['rss_growth_second_half_mib']} MiB over the second half; "
        f"working set {section['working_set']}"
    )
    return section


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    """`python -m bench story_stage`: BENCH_STORY_ARTICLES articles (default 100,000, about 3 minutes; 5,000 with
    BENCH_QUICK=1); saves the `story_stage` section."""
    started = time.monotonic()
    n = env_int("BENCH_STORY_ARTICLES", 100_000, 5_000)
    section = asyncio.run(measure(n, log))
    save_section(
        "story_stage", section, command=f"BENCH_STORY_ARTICLES={n} python -m bench story_stage", started=started
    )
    return section


def main() -> None:
    run()


if __name__ == "__main__":
    main()
