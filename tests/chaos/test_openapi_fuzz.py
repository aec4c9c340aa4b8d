"""The longer, randomised schemathesis run against all three HTTP services (issue 21), part of `make chaos`.

The integration tests run the same checks with a fixed seed and few cases; here each service gets a fresh
seed (`FUZZ_SEED` to repeat one) and more cases, with real data flowing: articles pushed to the producer are
analysed by a stream worker and stored by the consumer before its read routes are fuzzed. The figures of
each run (operations, cases, failures, seed, the command) go to test-artifacts/fuzz/<service>.json, and
docs/RELIABILITY.md records them.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable

import httpx
import pytest

from harness.infra import ROOT
from harness.processes import ServiceProcess
from tests.support.chaos import stored_ids, wait_until
from tests.support.openapi_fuzz import FuzzRun, fuzz

ARTIFACTS = ROOT / "test-artifacts" / "fuzz"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
SECONDS = int(os.environ.get("FUZZ_SECONDS", "120"))
pytestmark = pytest.mark.timeout(SECONDS + 240)  # the run, plus starting (and for the consumer, feeding) services

WORKER = {"INFERENCE__TIER": "fast", "WORKER__BATCH_SIZE": "5", "WORKER__BATCH_TIMEOUT": "0.2"}


def _seed() -> int:
    return int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(1, 2**31))


def _record(run: FuzzRun) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{run.service}.json").write_text(json.dumps(run.figures(), indent=2) + "\n")
    (ARTIFACTS / f"{run.service}.log").write_text(run.output)


async def _feed(spawn: Callable[..., ServiceProcess], consumer: ServiceProcess) -> None:
    """Real data for the consumer's read routes: NewsAPI-shaped articles through producer and worker."""
    spawn("worker", env=WORKER)
    producer = spawn("producer", env={"PRODUCER__POLLING": "false"})
    articles = [
        {
            "source": {"id": None, "name": f"Outlet {i % 3}"},
            "title": f"Company {i} reports record profits as markets rally",
            "description": "Shares rose in Seoul and London.",
            "url": f"https://fuzz.example.org/{i}",
            "publishedAt": "2024-11-26T05:00:00Z",
            "content": "The company said... [+1200 chars]",
        }
        for i in range(10)
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=60) as client:
        assert (await client.post("/articles", json={"articles": articles})).json()["accepted"] == 10
    base = f"http://127.0.0.1:{consumer.port}"

    async def stored() -> bool:
        return len(await stored_ids(base)) >= 10

    await wait_until(stored, 120, "the pushed articles stored by the consumer")


@pytest.mark.parametrize("service", ["producer", "inference", "consumer"])
async def test_randomised_schemathesis_run_finds_nothing(
    service: str, spawn: Callable[..., ServiceProcess], search_env: dict[str, str]
) -> None:
    # The consumer with its OpenSearch (search and the archive behind /news/{id}), as the suite runs it.
    env = {"consumer": search_env, "producer": {"PRODUCER__POLLING": "false"}, "inference": {"INFERENCE__TIER": "fast"}}
    target = spawn(service, env=env[service])
    if service == "consumer":
        await _feed(spawn, target)
    run = await fuzz(service, target.port, seed=_seed(), max_examples=EXAMPLES, max_time=SECONDS, timeout=SECONDS + 60)
    _record(run)
    assert run.returncode == 0 and run.failures == 0, run.output[-12000:]
    assert run.operations > 0 and run.cases > 0, run.figures()
