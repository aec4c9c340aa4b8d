"""Every core a worker is given: the engine core in child processes, one share of each batch per process.

The models are CPU-bound Python and native code behind one GIL, so threads cannot use a second core. A
`CorePool` starts `processes` children (spawned, never forked from a process with threads), each loading the
core once with its ONNX / OpenMP / BLAS threads pinned to `threads_per_process`, so that processes x threads
never exceeds the cores (no oversubscription). A batch is cut into one contiguous share per process and the
shares run at once: one hop per batch, not per article. With `processes=1` the core runs in one thread of this
process instead (no pickling).

A child that dies (OOM killer, SIGKILL, a native crash) breaks the executor: the pool starts a new one and runs
the whole batch again, once. If the retry breaks it too, the batch itself is the likely cause, and
`EngineCrashed` is raised: not a `ProviderError`, so the stream worker narrows the batch down to the article at
fault and dead-letters it instead of waiting out an "outage" forever.

This module imports no model library, so a child's thread settings are in place before numpy or onnxruntime load.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from common.errors import NewsSuiteError

if TYPE_CHECKING:
    from inference.core import Core, CoreResult, CoreSettings, Item

__all__ = ["CorePool", "EngineCrashed", "available_cores"]

log = logging.getLogger(__name__)
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_core: Core | None = None  # the core of this child process


class EngineCrashed(NewsSuiteError):
    """A child process of the engine died twice on the same batch."""


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, bounded by a cgroup v2 CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()  # noqa: SIM115 - one small read
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _init_child(settings: CoreSettings) -> None:
    global _core
    for name in _THREAD_VARS:
        os.environ[name] = str(settings.threads)
    from inference.core import Core

    _core = Core(settings)
    _core.load()


def _run_child(items: Sequence[Item]) -> list[CoreResult]:
    if _core is None:  # pragma: no cover - the initializer always ran first
        raise RuntimeError("engine child not initialised")
    return _core.run(items)


def _pid() -> int:
    return os.getpid()


class CorePool:
    """`await pool.analyze(items)` runs the core over `items` on every process of the pool, in input order."""

    def __init__(self, settings: CoreSettings, processes: int = 1) -> None:
        self.settings = settings
        self.processes = max(1, processes)
        self._executor: Executor | None = None
        self._local: Core | None = None
        self._restarts = 0

    @property
    def restarts(self) -> int:
        """How many times a broken process pool was replaced."""
        return self._restarts

    def _make_executor(self) -> Executor:
        if self.processes == 1:
            from inference.core import Core

            self._local = self._local or Core(self.settings)
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_child,
            initargs=(self.settings,),
        )

    async def start(self) -> None:
        """Start every process and load the models in each (seconds), so the first batch pays nothing."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = self._make_executor()
        if self._local is not None:
            await loop.run_in_executor(self._executor, self._local.load)
            return
        # One call per process: each new child runs the initializer (model load) before its first task.
        await asyncio.gather(*(loop.run_in_executor(self._executor, _pid) for _ in range(self.processes)))

    def pids(self) -> list[int]:
        """The child processes' ids (empty when the core runs in this process)."""
        processes: dict[int, Any] = getattr(self._executor, "_processes", None) or {}
        return sorted(processes)

    def _shares(self, items: Sequence[Item]) -> list[Sequence[Item]]:
        n = min(self.processes, len(items))
        size, extra = divmod(len(items), n)
        shares, start = [], 0
        for k in range(n):
            end = start + size + (1 if k < extra else 0)
            shares.append(items[start:end])
            start = end
        return shares

    async def _once(self, items: Sequence[Item]) -> list[CoreResult]:
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = self._make_executor()
        if self._local is not None:
            return await loop.run_in_executor(self._executor, self._local.run, items)
        parts = await asyncio.gather(
            *(loop.run_in_executor(self._executor, _run_child, share) for share in self._shares(items))
        )
        return [result for part in parts for result in part]

    async def analyze(self, items: Sequence[Item]) -> list[CoreResult]:
        if not items:
            return []
        try:
            return await self._once(items)
        except BrokenProcessPool as exc:
            log.warning(
                "an engine process died (%s); restarting the pool and retrying the batch of %d", exc, len(items)
            )
            self._replace()
        try:
            return await self._once(items)
        except BrokenProcessPool as exc:
            self._replace()
            raise EngineCrashed(f"an engine process died twice on a batch of {len(items)}: {exc}") from exc

    def _replace(self) -> None:
        self._restarts += 1
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._make_executor()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
