"""Inference engine benchmark: each tier, single articles and batches, beside two baselines in the same run.

- ours: `Engine.analyze(article)` one at a time ("single") and `Engine.analyze_batch` in chunks of 1, 10, 32
  (and the other sizes of the batch-size sweep);
- baseline (a): the same models called per article, one after another, no batching, no concurrency;
- baseline (b): the same models called directly on the whole batch (their batch APIs), no engine around them:
  the engine's overhead is ours against (b) at the same batch size.

Every configuration sees the same articles (real NewsArticles rows, after a warm-up on other rows), in
interleaved rounds (BENCH_ROUNDS, default 2) so that other work on a shared machine hits them alike.
Knobs: BENCH_ENGINE_N (standard-tier articles per configuration, default 64), BENCH_FAST_N (160),
BENCH_TIERS (fast,standard), BENCH_BATCHES (1,4,10,32), BENCH_PROFILE (1: py-spy profile of batch 32).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.common import ROOT, CpuClock, corpus, env_int, latency_summary, quick, save_section
from bench.profiling import collapsed_stacks
from common.schemas import Analysis, RawArticle

__all__ = ["direct", "profile", "run"]

_WARMUP = 32
_REQUIRED_BATCHES = (1, 10, 32)


def direct(tier: str) -> Callable[[Sequence[RawArticle]], list[Analysis]]:
    """The tier's models called directly, synchronously, on a list of articles: what the engine wraps."""
    if tier == "fast":
        from inference.fast import analyze_fast

        return lambda batch: [analyze_fast(a) for a in batch]

    from inference import local
    from inference.engine import _BODY_CHARS, _LOCAL_TASKS
    from inference.features import category_text, headline_text
    from inference.importance import NoveltyTracker, importance_score

    local.load_all()
    novelty = NoveltyTracker(512)

    def run(batch: Sequence[RawArticle]) -> list[Analysis]:
        heads = [headline_text(a.title, a.description) for a in batch]
        bodies = [f"{h} {a.content or ''}"[:_BODY_CHARS] for h, a in zip(heads, batch, strict=True)]
        langs = [
            (a.language_hint or local.detect_language(h)).split("-")[0].lower()
            for a, h in zip(batch, heads, strict=True)
        ]
        results = local.encode_and_classify(
            [
                (lang, h, category_text(a.title, a.description, a.content))
                for lang, h, a in zip(langs, heads, batch, strict=True)
            ]
        )
        entities = local.entities_batch(list(zip(langs, bodies, strict=True)))
        keywords = [local.keywords(lang, b) for lang, b in zip(langs, bodies, strict=True)]
        out = []
        for a, lang, r, ents, kws in zip(batch, langs, results, entities, keywords, strict=True):
            importance = importance_score(
                entities=len(ents),
                headline=a.title,
                category=r.category,
                sentiment_score=r.sentiment_score,
                novelty=novelty.observe(r.embedding),
                source=a.source,
            )
            out.append(
                Analysis(
                    sentiment=r.sentiment,
                    sentiment_score=r.sentiment_score,
                    keywords=kws,
                    entities=ents,
                    category=r.category,
                    language=lang if 2 <= len(lang) <= 16 else "und",
                    importance_score=importance,
                    providers=dict.fromkeys(_LOCAL_TASKS, "local"),
                )
            )
        return out

    return run


def _row(name: str, kind: str, batch: int, articles: int, wall: float, cpu: float, calls: list[float]) -> dict:
    return {
        "name": name,
        "kind": kind,
        "batch": batch,
        "articles": articles,
        "throughput": round(articles / wall, 2),
        "cpu_ms_per_article": round(cpu / articles * 1000, 1),
        "latency_per_call": latency_summary(calls),
        "wall_s": round(wall, 2),
    }


async def _measure_async(fn: Callable[[Sequence[RawArticle]], Any], data: Sequence[RawArticle], size: int):
    calls: list[float] = []
    cpu = CpuClock()
    start = time.perf_counter()
    for i in range(0, len(data), size):
        t = time.perf_counter()
        await fn(data[i : i + size])
        calls.append(time.perf_counter() - t)
    return time.perf_counter() - start, cpu.elapsed(), calls


async def bench_tier(tier: str, n: int, batches: Sequence[int], log: Callable[[str], None]) -> dict[str, Any]:
    from inference.engine import Engine
    from inference.settings import EngineSettings

    articles = corpus()
    warm, data = articles[:_WARMUP], articles[_WARMUP : _WARMUP + n]
    engine = Engine(EngineSettings(tier=tier), registry=CollectorRegistry())
    t = time.perf_counter()
    await engine.start()
    load_s = time.perf_counter() - t
    await engine.analyze_batch(warm)
    models = direct(tier)
    models(warm[:8])
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        lat = row["latency_per_call"]
        log(
            f"  {tier:8} {row['name']:34} {row['throughput']:8.1f} art/s  p50 {lat['p50_ms']:8.1f} ms"
            f"  p99 {lat['p99_ms']:8.1f} ms  cpu {row['cpu_ms_per_article']:6.1f} ms/art"
        )

    async def single(batch: Sequence[RawArticle]) -> None:
        await engine.analyze(batch[0])

    async def bare(batch: Sequence[RawArticle]) -> None:
        models(batch)

    configs: list[tuple[str, str, int, Callable[[Sequence[RawArticle]], Any]]] = [
        ("engine single", "ours", 1, single),
        *((f"engine batch {size}", "ours", size, engine.analyze_batch) for size in batches),
        ("baseline (a) per article", "baseline_a", 1, bare),
        *((f"baseline (b) direct batch {size}", "baseline_b", size, bare) for size in batches if size > 1),
    ]
    # Interleaved rounds: every configuration runs on each slice of the articles in turn, so a burst of
    # other work on a shared machine falls on all of them alike rather than on whichever ran then.
    rounds = max(1, min(env_int("BENCH_ROUNDS", 2), len(data) // max(batches)))
    step = len(data) // rounds
    totals: dict[str, list[Any]] = {name: [0.0, 0.0, []] for name, *_ in configs}
    try:
        for r in range(rounds):
            part = data[r * step : (r + 1) * step]
            for name, _, size, fn in configs:
                wall, cpu, calls = await _measure_async(fn, part, size)
                totals[name][0] += wall
                totals[name][1] += cpu
                totals[name][2] += calls
        for name, kind, size, _ in configs:
            wall, cpu, calls = totals[name]
            add(_row(name, kind, size, step * rounds, wall, cpu, calls))
    finally:
        engine.close()
    return {
        "articles": step * rounds,
        "rounds": rounds,
        "warmup_articles": _WARMUP,
        "load_s": round(load_s, 2),
        "rows": rows,
    }


def profile(tier: str, n: int, log: Callable[[str], None]) -> dict[str, Any] | None:
    """py-spy samples of the engine at batch 32, grouped by the model each sample was inside."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("  py-spy not installed: no profile (make bench-tools installs it)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        cmd = [spy, "record", "--format", "raw", "--rate", "50", "--output", str(out), "--"]
        cmd += [sys.executable, "-m", "bench.engine", "--profile-target", tier, str(n)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not out.exists():
            log(f"  py-spy failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
            return None
        return _group_profile(out.read_text())


_COMPONENTS = (
    ("encode_and_classify", "MiniLM/e5 encoder + sentiment/category heads"),
    ("entities_batch", "spaCy NER"),
    ("keywords", "YAKE keywords"),
    ("extract_keywords", "YAKE keywords"),
    ("polarity_scores", "VADER"),
    ("detect_language", "language id"),
    ("_language", "language id"),
)


def _frame_name(frame: str) -> str:
    return frame.split(" (")[0].strip().rsplit(".", 1)[-1]


def _group_profile(raw: str) -> dict[str, Any]:
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for frames, samples in collapsed_stacks(raw):
        names = [_frame_name(f) for f in frames]
        if any(n in {"_find_and_load", "load_all", "corpus", "start"} for n in names):
            continue  # start-up: imports, model loading, reading the corpus
        total += samples
        found = next((label for n in reversed(names) for fn, label in _COMPONENTS if n == fn), None)
        if found is None:
            found = "other (event loop, asyncio, thread pool, pydantic, interpreter)"
            leaves[frames[-1].split(" (")[0]] += samples
        groups[found] += samples
    return {
        "samples": total,
        "share": {k: round(v / total * 100, 1) for k, v in groups.most_common()} if total else {},
        "other_top": {k: round(v / total * 100, 1) for k, v in leaves.most_common(5)} if total else {},
        "how": "py-spy record --rate 50 of the engine analysing batches of 32; all threads, idle and start-up excluded",
    }


async def _profile_target(tier: str, n: int) -> None:
    from inference.engine import Engine
    from inference.settings import EngineSettings

    data = corpus()[_WARMUP : _WARMUP + n]
    engine = Engine(EngineSettings(tier=tier), registry=CollectorRegistry())
    await engine.start()
    for i in range(0, len(data), 32):
        await engine.analyze_batch(data[i : i + 32])
    engine.close()


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    tiers = [t.strip() for t in os.environ.get("BENCH_TIERS", "fast,standard").split(",") if t.strip()]
    batches = sorted(
        {int(b) for b in os.environ.get("BENCH_BATCHES", "1,10,32" if quick() else "1,4,10,32").split(",") if b}
        | set(_REQUIRED_BATCHES)
    )
    sizes = {"standard": env_int("BENCH_ENGINE_N", 64, 16), "fast": env_int("BENCH_FAST_N", 160, 32)}
    load = os.getloadavg()
    section: dict[str, Any] = {"load_avg_start": [round(x, 2) for x in load], "tiers": {}}
    log(f"engine: {len(corpus())} valid corpus articles; tiers {tiers}; batches {batches}")
    for tier in tiers:
        section["tiers"][tier] = asyncio.run(bench_tier(tier, sizes[tier], batches, log))
    if os.environ.get("BENCH_PROFILE", "0" if quick() else "1") == "1":
        for tier in tiers:
            log(f"  profiling {tier} (py-spy)")
            section.setdefault("profile", {})[tier] = profile(tier, sizes[tier], log)
    save_section("engine", section, command="make bench-engine", started=started)
    return section


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--profile-target":
        asyncio.run(_profile_target(sys.argv[2], int(sys.argv[3])))
    else:
        run()
