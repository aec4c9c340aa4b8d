"""py-spy helpers: sample a running process for a few seconds and say which functions the time was spent in."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["collapsed_stacks", "plumbing", "py_spy", "record_pid", "top_inclusive"]

# Framework layers every request or event passes through (routing, middleware): on every stack, no news.
_GENERIC = ("__call__", ".handle", "._handle_selected", ".app", "_run", ".run", "wrapped_app", ".main")
_PLUMBING = (
    "asyncio/",
    "threading.py",
    "<frozen",
    "concurrent/",
    "runpy",
    "uvicorn/",
    "mode/",
    "click/",
    "starlette/middleware",
    "venusian/",
    "faust/cli/",
)


def plumbing(name: str) -> bool:
    """`func (path)` of the event loop, threads, start-up or framework layers: on every stack, says nothing."""
    func, _, path = name.rpartition(" (")
    path = path.rstrip(")")
    return func == "<module>" or path.startswith(_PLUMBING) or func.endswith(_GENERIC) or "<locals>" in func


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


async def record_pid(pid: int, seconds: float, rate: int = 50) -> str | None:
    """Raw (collapsed) stacks of `pid` over `seconds`; None when py-spy is missing or cannot attach."""
    spy = py_spy()
    if spy is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        proc = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
            "--format", "raw", "--output", str(out), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await proc.wait()
        return out.read_text() if out.exists() else None


def collapsed_stacks(raw: str) -> Iterator[tuple[list[str], int]]:
    """py-spy's collapsed format, one `frame;frame;... count` per line, as (frames, samples)."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            yield stack.split(";"), int(count)


def top_inclusive(raw: str | None, n: int = 10) -> dict[str, Any] | None:
    """Share of samples (%) in which each function was on the stack; the first few, biggest first."""
    if not raw:
        return None
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, samples in collapsed_stacks(raw):
        total += samples
        leaf, _, where = frames[-1].partition(" (")
        own[f"{leaf.strip()} ({where.split(':')[0]})"] += samples
        names = set()
        for frame in frames:
            func, _, where = frame.partition(" (")
            path = where.split(":")[0]
            name = f"{func.strip()} ({path})"
            if not plumbing(name):
                names.add(name)
        for name in names:
            inclusive[name] += samples
    top = inclusive.most_common(n)
    return {
        "samples": total,
        "top_inclusive_pct": {k: round(v / total * 100, 1) for k, v in top},
        "top_self_pct": {k: round(v / total * 100, 1) for k, v in own.most_common(n)},
    }
