"""Remote providers against local servers that speak the OpenAI and Hugging Face (Inference Providers router) wire
formats: good answers, 429 with Retry-After, 5xx, the router's 401/402/404/410, malformed JSON, slow answers;
fallback to local, breaker, cascade, and each task credited to the model that answered it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr, ValidationError

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


async def test_huggingface_router_wire_format_and_credit(
    hf_server: FakeServer, make_engine: Callable[..., Any]
) -> None:
    engine, registry = make_engine(hf_server.url, "huggingface")
    result = await engine.analyze(ARTICLES[1])
    hf = HuggingFaceSettings()
    assert result.providers["sentiment"] == result.providers["summary"] == "huggingface"
    assert (result.sentiment, result.category) == ("negative", "world")
    assert result.summary == "A summary from the fake Hugging Face model."
    # each task is credited to the model that answered it, not to one model for the whole provider
    assert {t: result.models[t] for t in ("sentiment", "category", "summary")} == {
        "sentiment": hf.sentiment_model,
        "category": hf.category_model,
        "summary": hf.summary_model,
    }
    assert len({hf.sentiment_model, hf.category_model, hf.summary_model}) == 3, "the check above could not tell"
    pipelines = [r for r in hf_server.requests if r["route"] == "pipeline"]
    assert {(r["provider"], r["model"]) for r in pipelines} == {
        ("hf-inference", hf.sentiment_model),
        ("hf-inference", hf.category_model),
    }
    zero_shot = next(r for r in pipelines if "candidate_labels" in r.get("parameters", {}))
    assert "health" in zero_shot["parameters"]["candidate_labels"]
    (chat,) = (r for r in hf_server.requests if r["route"] == "chat")
    assert chat["model"] == hf.summary_model and chat["messages"][-1]["role"] == "user"
    assert _value(registry, "inference_llm_tokens_total", provider="huggingface", kind="prompt") == 90


def test_the_retired_serverless_endpoint_is_refused_at_start() -> None:
    assert HuggingFaceSettings().base_url == "https://router.huggingface.co"
    with pytest.raises(ValidationError, match="router.huggingface.co"):
        HuggingFaceSettings(base_url="https://api-inference.huggingface.co", token=SecretStr("hf_x"))


@pytest.mark.parametrize(("mode", "says"), [("402", "credits"), ("404", "no provider serves"), ("401", "TOKEN")])
async def test_huggingface_refusals_are_not_retried_and_say_why(
    hf_server: FakeServer, make_engine: Callable[..., Any], caplog: pytest.LogCaptureFixture, mode: str, says: str
) -> None:
    hf_server.mode = mode
    engine, registry = make_engine(hf_server.url, "huggingface", attempts=3, breaker=100, tasks=("sentiment",))
    result = await engine.analyze(ARTICLES[0])
    assert result.providers["sentiment"] == "local" and result.providers["sentiment_fallback_from"] == "huggingface"
    assert hf_server.calls <= 1, "a refusal is final: not retried"
    assert _value(registry, "inference_failures_total", provider="huggingface", reason="bad_answer") == 1
    assert says in caplog.text


async def test_the_retired_route_answers_410(hf_server: FakeServer) -> None:
    """The fake keeps the serverless route's real answer, so a client still using it fails loudly."""
    import httpx

    async with httpx.AsyncClient(base_url=hf_server.url) as client:
        response = await client.post("/models/facebook/bart-large-mnli", json={"inputs": "x"})
    assert response.status_code == 410 and "router.huggingface.co" in response.json()["error"]


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
