"""Fault-injection helpers: dedicated Kafka/Redis that a test may stop, what a client sees, and the report rows.

Every chaos test measures the same things and writes them as one JSON file under
`test-artifacts/chaos/` (see `Outcome`); `tests/support/chaos_report.py` turns those files into the
table of docs/RELIABILITY.md (`make chaos`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from common.schemas import Analysis, AnalyzedArticle, RawArticle
from harness.infra import ROOT, free_port, port_open

__all__ = [
    "ARTIFACTS",
    "DedicatedKafka",
    "DedicatedRedis",
    "Outcome",
    "WsWatcher",
    "analyzed",
    "rss_mb",
    "stored_ids",
    "wait_until",
]

ARTIFACTS = ROOT / "test-artifacts" / "chaos"


@dataclass
class Outcome:
    """One row of the reliability table: what went in, what a client can see afterwards, how fast."""

    case: str
    fault: str
    articles_in: int
    stored: int = 0  # distinct expected ids the REST API returns
    lost: int = 0
    duplicates_rest: int = 0  # ids the REST listing returns more than once
    duplicates_ws: int = 0  # extra `new_analysis` deliveries of an id to one WebSocket client
    recovery_s: float | None = None  # end of the fault -> every article visible (or the service healthy)
    slow: bool = False
    notes: list[str] = field(default_factory=list)
    measured_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def count(self, expected: Iterable[str], listed: list[str]) -> None:
        want = set(expected)
        seen = Counter(listed)
        self.stored = len(want & seen.keys())
        self.lost = len(want - seen.keys())
        self.duplicates_rest = sum(n - 1 for n in seen.values() if n > 1)

    def write(self) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.case}.json"
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")
        return path


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.25) -> float:
    """Poll `check` until it holds; return the seconds it took (TimeoutError naming `what` otherwise)."""
    started = time.monotonic()
    while True:
        try:
            if await check():
                return time.monotonic() - started
        except (httpx.HTTPError, OSError):
            pass  # the service is down or restarting: that is what is being waited out
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(every)


async def stored_ids(base: str, headers: dict[str, str] | None = None) -> list[str]:
    """Every id `/news/recent` lists, following `X-Next-Cursor` to the end (repeats kept, to count them)."""
    ids: list[str] = []
    cursor: str | None = None
    async with httpx.AsyncClient(base_url=base, headers=headers or {}, timeout=10) as client:
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/news/recent", params=params)
            response.raise_for_status()
            ids.extend(a["id"] for a in response.json())
            cursor = response.headers.get("x-next-cursor")
            if not cursor:
                return ids


def analyzed(article: RawArticle, n: int = 0) -> AnalyzedArticle:
    """A stored-ready article, as the worker would produce it (the analysis itself is not under test here)."""
    analysis = Analysis(sentiment="neutral", sentiment_score=0.0, keywords=[f"k{n % 7}"], importance_score=5.0)
    return AnalyzedArticle.from_raw(article, analysis)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB (Linux /proc; psutil is not a dependency of the suite)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")


class WsWatcher:
    """A well-behaved dashboard: stays connected to `/ws`, reconnects with `?since=<last cursor>` when the
    connection drops, and counts every article delivered (live or in a resume's `initial_data`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.deliveries: Counter[str] = Counter()
        self.cursor: str | None = None
        self.reconnects = 0
        self.resumed: list[bool] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.deliveries.values() if n > 1)

    async def start(self) -> WsWatcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), 20)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        first = True
        while True:
            url = self.url if self.cursor is None else f"{self.url}{'&' if '?' in self.url else '?'}since={self.cursor}"
            try:
                async with websockets.connect(url, open_timeout=5, max_size=None) as ws:
                    async for raw in ws:
                        message = json.loads(raw)
                        kind = message.get("type")
                        if kind == "initial_data":
                            self._connected.set()
                            if not first:
                                self.resumed.append(bool(message.get("resumed")))
                                for article in message["data"]:
                                    self.deliveries[article["id"]] += 1
                            first = False
                        elif kind == "new_analysis":
                            self.deliveries[message["data"]["id"]] += 1
                        if message.get("cursor"):
                            self.cursor = message["cursor"]
            except (OSError, websockets.WebSocketException, TimeoutError):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.3)


def _script(name: str, action: str, env: dict[str, str]) -> None:
    subprocess.run([str(ROOT / "scripts" / f"{name}.sh"), action], check=True, env={**os.environ, **env}, timeout=180)


class DedicatedKafka:
    """A Kafka broker of this test alone (own ports and data dir), so stopping it disturbs nobody else."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.env = {
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_DATA_DIR": str(data_dir),
            "KAFKA_HEAP": "-Xms128m -Xmx512m",
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        _script("kafka", "start", self.env)

    def stop(self) -> None:
        _script("kafka", "stop", self.env)
        assert not port_open(self.port)


class DedicatedRedis:
    """A Redis of this test alone, AOF on (scripts/redis.sh), so stopping it disturbs nobody else."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.env = {"REDIS_PORT": str(self.port), "REDIS_DATA_DIR": str(data_dir)}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        _script("redis", "start", self.env)

    def stop(self) -> None:
        _script("redis", "stop", self.env)
        assert not port_open(self.port)
