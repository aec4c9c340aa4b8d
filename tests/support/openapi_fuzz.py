"""Run schemathesis against a running service's own OpenAPI document, as a subprocess, and read its figures.

Every check (`--checks all`): no 5xx, every status and body as documented, schema-valid requests accepted and
schema-invalid ones refused. Used by the integration tests (a fixed seed, bounded) and `make chaos` (longer)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from dataclasses import asdict, dataclass

from harness.infra import ROOT

__all__ = ["FuzzRun", "fuzz"]


@dataclass
class FuzzRun:
    service: str
    seed: int
    max_examples: int
    operations: int
    cases: int
    failures: int
    returncode: int
    command: str
    output: str

    def figures(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "output"}


async def fuzz(
    service: str, port: int, *, seed: int, max_examples: int, max_time: int, timeout: float, workers: int = 1
) -> FuzzRun:
    argv = [
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        str(workers),
        "--max-time",
        str(max_time),
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", *argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode(errors="replace")
    tested = re.search(r"Tested:\s+(\d+)", text)
    cases = re.search(r"(\d+) generated", text)
    failures = re.search(r"found (\d+) unique failures", text)
    return FuzzRun(
        service=service,
        seed=seed,
        max_examples=max_examples,
        operations=int(tested.group(1)) if tested else 0,
        cases=int(cases.group(1)) if cases else 0,
        failures=int(failures.group(1)) if failures else 0,
        returncode=proc.returncode if proc.returncode is not None else -1,
        command="schemathesis " + " ".join(argv).replace(f"127.0.0.1:{port}", "127.0.0.1:<port>"),
        output=text,
    )
