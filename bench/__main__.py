"""`python -m bench [STAGE ...|report|all]` (stages in STAGES below; see mk/bench.mk and docs/BENCHMARKS.md)."""

from __future__ import annotations

import importlib
import os
import resource
import signal
import sys
import time

# One BLAS thread in this process, as in the services (the worker sets it; the engine's processes set their own):
# spinning BLAS threads beside single-threaded code inflate the CPU time the stages measure. Before numpy loads.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# Each stage is a module with `run(log)` that saves its section of bench/results/latest.json; `all` runs ALL,
# then renders the report.
STAGES = {
    "engine": "bench.engine",
    "pipeline": "bench.pipeline",
    "serving": "bench.serving",
    "websocket": "bench.websocket",
    "stream_layer": "bench.stream_layer",
    "story_stage": "bench.story_stage",
    "indexing": "bench.indexing",
    "search": "bench.search",
}
ALL = list(STAGES)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _on_term(signum: int, _frame: object) -> None:
    # `timeout` (mk/bench.mk) sends SIGTERM: unwind like Ctrl-C so every stage stops what it started.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _on_term)
    # 1,000 WebSocket clients and the consumer serving them (a child: it inherits this) need the descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, cap), hard))
    stages = argv or ["all"]
    if stages == ["all"]:
        stages = [*ALL, "report"]
    for stage in stages:
        if stage not in STAGES and stage != "report":
            print(f"unknown stage {stage!r}: {', '.join(STAGES)}, report or all", file=sys.stderr)
            return 2
    for stage in stages:
        started = time.monotonic()
        _log(f"== {stage}")
        if stage == "report":
            from bench import report

            report.write(_log)
        else:
            importlib.import_module(STAGES[stage]).run(_log)
        _log(f"== {stage} done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
