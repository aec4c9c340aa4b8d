"""Inference engine benchmark: each tier, single articles and batches, beside two baselines in the same run.

- ours: the engine (`inference.engine.Engine`) with its process pool on every core of the machine:
  `analyze(article)` one at a time ("single") and `analyze_batch` in chunks of 1, 10, 32 (and the other sizes of
  the batch-size sweep); and at batch 32 with one process of one thread, for the 1 -> N cores scaling;
- baseline (a): the same core (`inference.core.Core`, one thread, in this process) called per article, one after
  another, no batching, no concurrency;
- baseline (b): the same core called directly on the whole batch, no engine around it: the engine's overhead and
  its use of the other cores are ours against (b) at the same batch size.

CPU per article counts this process and the engine's child processes. Every configuration sees the same
articles (real NewsArticles rows, after a warm-up on other rows), in interleaved rounds (BENCH_ROUNDS, default 2)
so that other work on a shared machine hits them alike.
Knobs: BENCH_ENGINE_N (standard-tier articles per configuration, default 128), BENCH_FAST_N (640),
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

from bench.common import ROOT, CpuClock, corpus, env_int, latency_summary, quick, rss_mb, save_section
from bench.profiling import collapsed_stacks
from common.schemas import Analysis, RawArticle

__all__ = ["direct", "profile", "run"]

_WARMUP = 32
_REQUIRED_BATCHES = (1, 10, 32)


def direct(tier: str) -> Callable[[Sequence[RawArticle]], list[Analysis]]:
    """The tier's core called directly, synchronously, in this process on one thread: what the engine wraps."""
    from inference.core import Core, CoreSettings, item_of

    core = Core(CoreSettings(tier=tier, threads=1))  # type: ignore[arg-type]
    core.load()
    return lambda batch: core.analyze([item_of(a) for a in batch])


def _row(
    name: str, kind: str, batch: int, articles: int, wall: float, cpu: float, calls: list[float]
) -> dict[str, Any]:
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


async def _measure_async(
    fn: Callable[[Sequence[RawArticle]], Any], data: Sequence[RawArticle], size: int, children: Callable[[], list[int]]
) -> tuple[float, float, list[float]]:
    calls: list[float] = []
    cpu = CpuClock(children)
    start = time.perf_counter()
    for i in range(0, len(data), size):
        t = time.perf_counter()
        await fn(data[i : i + size])
        calls.append(time.perf_counter() - t)
    return time.perf_counter() - start, cpu.elapsed(), calls


def _engine(tier: str, processes: int, threads: int = 1) -> Any:
    from inference.engine import Engine
    from inference.settings import EngineSettings

    settings = EngineSettings(tier=tier, processes=processes, threads=threads)
    return Engine(settings, registry=CollectorRegistry())


async def bench_tier(tier: str, n: int, batches: Sequence[int], log: Callable[[str], None]) -> dict[str, Any]:
    from inference.pool import available_cores

    cores = available_cores()
    articles = corpus()
    warm, data = articles[:_WARMUP], articles[_WARMUP : _WARMUP + n]
    engine = _engine(tier, cores)
    one_core = _engine(tier, 1)
    t = time.perf_counter()
    await engine.start()
    load_s = time.perf_counter() - t
    await one_core.start()
    await engine.analyze_batch(warm)
    await one_core.analyze_batch(warm[:8])
    models = direct(tier)
    models(warm[:8])
    memory = {
        "engine_processes_rss_mb": [rss_mb(pid) for pid in engine.pool.pids()],
        "bench_process_rss_mb": rss_mb(os.getpid()),
        "note": "each engine process holds the tier's models once; a worker's resident memory is its own process "
        "(no models when processes > 1) plus its engine processes",
    }
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

    configs: list[tuple[str, str, int, Callable[[Sequence[RawArticle]], Any], Callable[[], list[int]]]] = [
        ("engine single", "ours", 1, single, engine.pool.pids),
        *((f"engine batch {size}", "ours", size, engine.analyze_batch, engine.pool.pids) for size in batches),
        ("engine batch 32, 1 process x 1 thread", "ours_1core", 32, one_core.analyze_batch, one_core.pool.pids),
        ("baseline (a) per article", "baseline_a", 1, bare, list),
        *((f"baseline (b) direct batch {size}", "baseline_b", size, bare, list) for size in batches if size > 1),
    ]
    # Interleaved rounds: every configuration runs on each slice of the articles in turn, so a burst of
    # other work on a shared machine falls on all of them alike rather than on whichever ran then.
    rounds = max(1, min(env_int("BENCH_ROUNDS", 2), len(data) // max(batches)))
    step = len(data) // rounds
    totals: dict[str, list[Any]] = {name: [0.0, 0.0, []] for name, *_ in configs}
    try:
        for r in range(rounds):
            part = data[r * step : (r + 1) * step]
            for name, _, size, fn, children in configs:
                wall, cpu, calls = await _measure_async(fn, part, size, children)
                totals[name][0] += wall
                totals[name][1] += cpu
                totals[name][2] += calls
        for name, kind, size, _, _ in configs:
            wall, cpu, calls = totals[name]
            add(_row(name, kind, size, step * rounds, wall, cpu, calls))
    finally:
        engine.close()
        one_core.close()
    return {
        "articles": step * rounds,
        "rounds": rounds,
        "warmup_articles": _WARMUP,
        "load_s": round(load_s, 2),
        "cores": cores,
        "processes": engine.pool.processes,
        "memory": memory,
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
    ("encode", "encoder (MiniLM / e5), once per article"),
    ("classify", "sentiment and category heads"),
    ("english_entities", "spaCy NER + canonical entities"),
    ("canonicalize", "spaCy NER + canonical entities"),
    ("entities", "Korean entities"),
    ("keywords", "keywords"),
    ("summarize", "extractive summary"),
    ("polarity_scores", "VADER"),
    ("vader_scores", "VADER"),
    ("detect_language", "language id"),
)


def _frame_name(frame: str) -> str:
    return frame.split(" (")[0].strip().rsplit(".", 1)[-1]


def _group_profile(raw: str) -> dict[str, Any]:
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for frames, samples in collapsed_stacks(raw):
        names = [_frame_name(f) for f in frames]
        if any(n in {"_find_and_load", "load", "corpus", "start"} for n in names):
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
        "how": "py-spy record --rate 50 of the engine core (one process) analysing batches of 32; idle and start-up "
        "excluded",
    }


async def _profile_target(tier: str, n: int) -> None:
    data = corpus()[_WARMUP : _WARMUP + n]
    engine = _engine(tier, 1)  # one process, so that py-spy sees the core's frames
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
    sizes = {"standard": env_int("BENCH_ENGINE_N", 128, 32), "fast": env_int("BENCH_FAST_N", 640, 64)}
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
