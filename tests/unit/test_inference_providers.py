"""Remote providers against local servers that speak the OpenAI and Hugging Face wire formats:
good answers, 429 with Retry-After, 5xx, malformed JSON, slow answers; fallback to local, breaker, cascade."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from common.schemas import RawArticle
from inference.engine import Engine
from inference.settings import EngineSettings, HuggingFaceSettings, OpenAISettings, ResilienceSettings
from tests.support.fake_llm import FakeServer, fake_huggingface, fake_openai

pytestmark = pytest.mark.unit

ARTICLES = [
    RawArticle(
        url=f"https://news.example/p/{i}",
        title=title,
        description=desc,
        published_at=datetime(2024, 11, 26, 5, tzinfo=UTC),
    )
    for i, (title, desc) in enumerate(
        [
            ("Plane crash kills 40 in Nepal", "Officials said the aircraft went down shortly after take-off."),
            ("Central bank holds interest rates", "The decision was expected by most economists."),
            ("New museum opens in Lisbon", "The building was designed by a local architect."),
        ]
    )
]


@pytest.fixture
def openai_server() -> Iterator[FakeServer]:
    with fake_openai() as server:
        yield server


@pytest.fixture
def hf_server() -> Iterator[FakeServer]:
    with fake_huggingface() as server:
        yield server


@pytest.fixture
async def make_engine() -> AsyncIterator[Callable[..., tuple[Engine, CollectorRegistry]]]:
    engines: list[Engine] = []

    def factory(*args: Any, **kwargs: Any) -> tuple[Engine, CollectorRegistry]:
        engine, registry = _engine(*args, **kwargs)
        engines.append(engine)
        return engine, registry

    yield factory
    for engine in engines:
        await engine.aclose()


def _engine(
    url: str,
    provider: str = "openai",
    *,
    tier: str = "fast",
    timeout: float = 5.0,
    attempts: int = 3,
    breaker: int = 5,
    cascade: bool = False,
    threshold: float = 0.6,
    tasks: tuple[str, ...] = ("sentiment", "category", "summary"),
) -> tuple[Engine, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = EngineSettings(
        tier=tier,
        processes=1,  # the core in this process: no child processes to start for each test
        providers=dict.fromkeys(tasks, provider),
        cascade=cascade,
        cascade_threshold=threshold,
        openai=OpenAISettings(
            base_url=f"{url}/v1", api_key=SecretStr("sk-test"), model="fake-model", timeout_s=timeout
        ),
        huggingface=HuggingFaceSettings(base_url=url, token=SecretStr("hf_test"), timeout_s=timeout),
        resilience=ResilienceSettings(
            attempts=attempts, backoff_initial_s=0.01, backoff_max_s=0.05, breaker_failures=breaker, breaker_reset_s=60
        ),
    )
    return Engine(settings, registry=registry), registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_openai_answers_are_validated_and_attributed(
    openai_server: FakeServer, make_engine: Callable[..., Any]
) -> None:
    engine, registry = make_engine(openai_server.url)
    results = await engine.analyze_batch(ARTICLES)
    assert [r.providers["summary"] for r in results] == ["openai"] * 3
    crash = results[0]
    assert (crash.sentiment, crash.sentiment_score, crash.category) == ("negative", -0.7, "world")
    assert crash.models["sentiment"] == "fake-model"
    assert crash.summary == "A short summary from the fake LLM."
    assert openai_server.requests[0]["response_format"] == {"type": "json_object"}
    assert _value(registry, "inference_llm_tokens_total", provider="openai", kind="prompt") == 360


async def test_openai_429_honours_retry_after_then_succeeds(
    openai_server: FakeServer, make_engine: Callable[..., Any]
) -> None:
    openai_server.mode, openai_server.fail_times, openai_server.retry_after = "429", 1, "0.4"
    engine, _ = make_engine(openai_server.url)
    started = time.perf_counter()
    result = await engine.analyze(ARTICLES[0])
    assert time.perf_counter() - started >= 0.4
    assert result.providers["sentiment"] == "openai"
    assert openai_server.calls == 2


async def test_openai_500_falls_back_to_local_after_retries(
    openai_server: FakeServer, make_engine: Callable[..., Any]
) -> None:
    openai_server.mode = "500"
    engine, registry = make_engine(openai_server.url, attempts=3, breaker=100)
    results = await engine.analyze_batch(ARTICLES)
    assert len(results) == 3
    for result in results:
        assert result.providers["sentiment"] == "local"
        assert result.providers["sentiment_fallback_from"] == "openai"
        assert result.summary is None
    assert openai_server.calls == 9
    assert _value(registry, "inference_failures_total", provider="openai", reason="unavailable") == 3


async def test_openai_malformed_json_is_not_retried_and_falls_back(
    openai_server: FakeServer, make_engine: Callable[..., Any]
) -> None:
    openai_server.mode = "malformed"
    engine, registry = make_engine(openai_server.url)
    result = await engine.analyze(ARTICLES[1])
    assert result.providers["category"] == "local"
    assert openai_server.calls == 1
    assert _value(registry, "inference_failures_total", provider="openai", reason="bad_answer") == 1


async def test_slow_answer_times_out_and_falls_back(openai_server: FakeServer, make_engine: Callable[..., Any]) -> None:
    openai_server.mode, openai_server.slow_s = "slow", 1.0
    engine, registry = make_engine(openai_server.url, timeout=0.3, attempts=1)
    started = time.perf_counter()
    result = await engine.analyze(ARTICLES[2])
    assert time.perf_counter() - started < 2.0
    assert result.providers["sentiment_fallback_from"] == "openai"
    assert _value(registry, "inference_failures_total", provider="openai", reason="timeout") == 1


async def test_circuit_opens_and_stops_calling_the_provider(
    openai_server: FakeServer, make_engine: Callable[..., Any]
) -> None:
    openai_server.mode = "500"
    engine, registry = make_engine(openai_server.url, attempts=1, breaker=2)
    for article in ARTICLES:
        await engine.analyze(article)
    assert openai_server.calls == 2  # the third article never reached the server
    assert _value(registry, "inference_circuit_open", provider="openai") == 1
    assert _value(registry, "inference_failures_total", provider="openai", reason="circuit_open") == 1
    assert engine.describe()["remote"]["openai"]["circuit"] == "open"


async def test_huggingface_wire_format(hf_server: FakeServer, make_engine: Callable[..., Any]) -> None:
    engine, _ = make_engine(hf_server.url, "huggingface")
    result = await engine.analyze(ARTICLES[1])
    assert result.providers["sentiment"] == "huggingface"
    assert (result.sentiment, result.category) == ("negative", "world")
    assert result.summary == "A summary from the fake Hugging Face model."
    zero_shot = next(r for r in hf_server.requests if "parameters" in r and "candidate_labels" in r["parameters"])
    assert "health" in zero_shot["parameters"]["candidate_labels"]


async def test_huggingface_503_while_loading_falls_back(hf_server: FakeServer, make_engine: Callable[..., Any]) -> None:
    hf_server.mode = "500"
    engine, _ = make_engine(hf_server.url, "huggingface", attempts=2)
    results = await engine.analyze_batch(ARTICLES)
    assert [r.providers["sentiment"] for r in results] == ["local"] * 3


async def test_cascade_escalates_only_unsure_articles(
    openai_server: FakeServer, make_engine: Callable[..., Any]
) -> None:
    sure, _ = make_engine(openai_server.url, tier="standard", cascade=True, threshold=0.0, tasks=("sentiment",))
    await sure.analyze_batch(ARTICLES)
    assert openai_server.calls == 0
    unsure, registry = make_engine(
        openai_server.url, tier="standard", cascade=True, threshold=1.0, tasks=("sentiment",)
    )
    results = await unsure.analyze_batch(ARTICLES)
    assert openai_server.calls == 3
    assert [r.providers["sentiment"] for r in results] == ["openai"] * 3
    assert _value(registry, "inference_escalations_total", provider="openai") == 3
