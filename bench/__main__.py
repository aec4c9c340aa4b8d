"""`python -m bench [engine|pipeline|serving|report|all]` (see mk/bench.mk and docs/BENCHMARKS.md)."""

from __future__ import annotations

import resource
import signal
import sys
import time


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
        stages = ["engine", "pipeline", "serving", "report"]
    for stage in stages:
        started = time.monotonic()
        _log(f"== {stage}")
        if stage == "engine":
            from bench import engine

            engine.run(_log)
        elif stage == "pipeline":
            from bench import pipeline

            pipeline.run(_log)
        elif stage == "serving":
            from bench import serving

            serving.run(_log)
        elif stage == "report":
            from bench import report

            report.write(_log)
        else:
            print(f"unknown stage {stage!r}: engine, pipeline, serving, report or all", file=sys.stderr)
            return 2
        _log(f"== {stage} done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
