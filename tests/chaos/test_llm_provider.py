"""The LLM provider (the local OpenAI-compatible server) fails in every way it can, then recovers.

Expected: every article is analysed and stored all along (the local answer stands, with
`providers["sentiment_fallback_from"] == "openai"`), and once the provider is healthy again the
circuit closes and answers come from it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from common.schemas import RawArticle
from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from tests.support.chaos import Outcome, WsWatcher, stored_ids, wait_until
from tests.support.fake_llm import fake_openai
from tests.support.worker_support import produce, real_articles

PHASES = ["ok", "429", "500", "malformed", "slow", "ok"]
PER_PHASE = 8


def _worker_env(url: str) -> dict[str, str]:
    return {
        "INFERENCE__TIER": "fast",
        "INFERENCE__PROVIDERS__SENTIMENT": "openai",
        "INFERENCE__OPENAI__BASE_URL": f"{url}/v1",
        "INFERENCE__OPENAI__API_KEY": "sk-chaos-test",
        "INFERENCE__OPENAI__TIMEOUT_S": "1",  # "slow" answers after 3 s: silence, as far as we wait
        "INFERENCE__RESILIENCE__ATTEMPTS": "2",
        "INFERENCE__RESILIENCE__BACKOFF_INITIAL_S": "0.01",
        "INFERENCE__RESILIENCE__RETRY_AFTER_MAX_S": "0.2",
        "INFERENCE__RESILIENCE__BREAKER_FAILURES": "3",
        "INFERENCE__RESILIENCE__BREAKER_RESET_S": "2",
        "WORKER__BATCH_SIZE": "4",
        "WORKER__BATCH_TIMEOUT": "0.2",
    }


def _circuit_open(worker: ServiceProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{worker.port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('inference_circuit_open{provider="openai"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("inference_circuit_open{provider=openai} is not exported")


async def test_llm_provider_failures_fall_back_and_circuit_recloses(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    articles = real_articles(PER_PHASE * len(PHASES) + 40)
    topic = kafka_settings.topics.raw_topic
    answered: dict[str, list[str]] = {}  # phase -> who answered sentiment, per article
    with fake_openai() as llm:
        llm.slow_s = 3.0
        consumer = spawn("consumer")
        base = f"http://127.0.0.1:{consumer.port}"
        watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()
        worker = spawn("worker", env=_worker_env(llm.url))
        sent: list[RawArticle] = []

        async def run(batch: list[RawArticle]) -> list[dict[str, str]]:
            sent.extend(batch)
            await produce(kafka_settings, topic, [(a.id.encode(), a.model_dump_json().encode()) for a in batch])
            ids = {a.id for a in batch}
            await wait_until(lambda: _have(base, ids), 90, "the phase's articles stored")
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                return [(await client.get(f"/news/{i}")).json()["analysis"]["providers"] for i in ids]

        pool = iter(articles)
        recovered_after: float | None = None
        for index, mode in enumerate(PHASES):
            llm.mode = mode
            batch = [next(pool) for _ in range(PER_PHASE)]
            if index == len(PHASES) - 1:  # recovery: until the circuit lets a call through and it succeeds
                healthy = time.monotonic()
                providers = await run(batch)
                while not any(p["sentiment"] == "openai" for p in providers):
                    providers = await run([next(pool) for _ in range(4)])
                recovered_after = time.monotonic() - healthy
            else:
                providers = await run(batch)
            answered[f"{index}:{mode}"] = [
                p["sentiment"] + ("*" if "sentiment_fallback_from" in p else "") for p in providers
            ]
        circuit_open_at_end = _circuit_open(worker)
        listed = await stored_ids(base)
        await watcher.stop()
        calls = llm.calls

    expected = {a.id for a in sent}
    outcome = Outcome("llm-provider", "LLM answers 429, 500, malformed JSON, silence; then recovers", len(sent))
    outcome.recovery_s = round(recovered_after or -1, 1)
    outcome.count(expected, listed)
    outcome.duplicates_ws = watcher.duplicates
    fallbacks = sum(a.endswith("*") for phase in list(answered.values())[1:-1] for a in phase)
    failing = PER_PHASE * (len(PHASES) - 2)
    outcome.notes.append(
        f"{fallbacks} of {failing} articles analysed while the provider failed kept the local answer "
        f"(providers.sentiment_fallback_from=openai); {calls} calls reached the fake LLM; circuit open at the end: "
        f"{circuit_open_at_end:.0f}; recovery = provider healthy -> first LLM answer again (breaker reset 2 s)"
    )
    outcome.write()
    assert outcome.lost == 0 and outcome.duplicates_rest == 0 and outcome.duplicates_ws == 0
    assert all(a == "openai" for a in answered["0:ok"]), answered
    for phase, who in list(answered.items())[1:-1]:
        assert all(a == "local*" for a in who), (phase, who)
    assert circuit_open_at_end == 0
    assert recovered_after is not None and recovered_after < 30


async def _have(base: str, ids: set[str]) -> bool:
    return ids <= set(await stored_ids(base))
