"""The inference service as a real process: analyze one, a batch (order kept, 413 above the cap), bad input
(422), /v1/models, /readyz and /metrics; and a remote provider outage that degrades to local."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from harness.processes import ServiceProcess
from tests.support.fake_llm import fake_openai
from tests.support.openapi_fuzz import fuzz

pytestmark = pytest.mark.integration


def _article(i: int, title: str = "Government unveils plan to cut emissions by 40 percent") -> dict[str, object]:
    return {
        "url": f"https://news.example/svc/{i}",
        "title": title,
        "description": "Ministers met in Brussels.",
        "published_at": "2024-11-26T05:00:00Z",
        "source": "Reuters",
    }


def test_service_endpoints(spawn: Callable[..., ServiceProcess]) -> None:
    proc = spawn("inference", env={"MAX_BATCH_REQUEST": "8"})
    base = f"http://127.0.0.1:{proc.port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        assert client.get("/readyz").json()["checks"] == {"models_loaded": True}
        one = client.post("/v1/analyze", json=_article(1))
        assert one.status_code == 200, one.text
        assert one.json()["analysis"]["language"] == "en"
        assert one.json()["analysis"]["providers"]["sentiment"] == "local"

        korean = _article(2, "삼성전자, 평택에 새 반도체 공장 건설 발표")
        batch = client.post("/v1/analyze/batch", json={"articles": [_article(3), korean, _article(4)]})
        assert batch.status_code == 200, batch.text
        results = batch.json()["results"]
        assert [r["analysis"]["language"] for r in results] == ["en", "ko", "en"]
        assert len({r["id"] for r in results}) == 3

        # NewsAPI's own article object (source as {"id", "name"}, publishedAt) and no date at all are accepted.
        newsapi = {
            "source": {"id": "bbc-news", "name": "BBC News"},
            "author": None,
            "title": "Acme wins contract to build new bridge",
            "description": "The deal is worth 100 million pounds.",
            "url": "https://www.bbc.co.uk/news/business-1",
            "urlToImage": None,
            "publishedAt": "2024-11-26T05:00:00Z",
            "content": "The company said on Monday... [+2829 chars]",
        }
        undated = {"title": "Council approves budget", "url": "https://news.example/undated", "source": "Local"}
        both = client.post("/v1/analyze/batch", json={"articles": [newsapi, undated]})
        assert both.status_code == 200, both.text
        assert len(both.json()["results"]) == 2

        # The NewsAPI object's content loses its truncation marker; blank text and no source mean "unknown".
        alone = client.post("/v1/analyze", json={**newsapi, "source": " ", "content": "Short. [+120 chars]"})
        assert alone.status_code == 200, alone.text
        assert alone.json()["id"] == both.json()["results"][0]["id"]

        # A batch is all or nothing: one bad article refuses it with 422 naming the article and its field.
        mixed = client.post("/v1/analyze/batch", json={"articles": [_article(5), {"url": "ftp://x", "title": "t"}]})
        assert mixed.status_code == 422, mixed.text
        assert [e["loc"] for e in mixed.json()["detail"]] == [["body", "articles", 1, "url"]]

        too_many = client.post("/v1/analyze/batch", json={"articles": [_article(i) for i in range(9)]})
        assert too_many.status_code == 413
        bad = client.post("/v1/analyze", json={"url": "ftp://x", "title": "", "published_at": "never"})
        assert bad.status_code == 422
        assert {tuple(e["loc"])[:2] for e in bad.json()["detail"]} >= {("body", "url"), ("body", "title")}
        assert client.post("/v1/analyze/batch", json={"articles": []}).status_code == 422

        models = client.get("/v1/models").json()
        assert models["tier"] == "standard" and models["ready"] is True
        metrics = client.get("/metrics").text
        assert 'inference_requests_total{provider="local",task="analyze"} 7.0' in metrics
        assert "inference_batch_size_bucket" in metrics


def test_remote_outage_degrades_to_local_without_losing_articles(spawn: Callable[..., ServiceProcess]) -> None:
    with fake_openai() as llm:
        llm.mode = "500"
        proc = spawn(
            "inference",
            env={
                "INFERENCE__TIER": "fast",
                "INFERENCE__PROVIDERS__SENTIMENT": "openai",
                "INFERENCE__PROVIDERS__SUMMARY": "openai",
                "INFERENCE__OPENAI__BASE_URL": f"{llm.url}/v1",
                "INFERENCE__OPENAI__API_KEY": "sk-test",
                "INFERENCE__RESILIENCE__ATTEMPTS": "2",
                "INFERENCE__RESILIENCE__BACKOFF_INITIAL_S": "0.01",
                "INFERENCE__RESILIENCE__BREAKER_FAILURES": "3",
            },
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{proc.port}", timeout=60) as client:
            articles = [_article(i, f"Story number {i} about the economy") for i in range(10)]
            results = client.post("/v1/analyze/batch", json={"articles": articles}).json()["results"]
            assert len(results) == 10
            assert all(r["analysis"]["providers"]["sentiment"] == "local" for r in results)
            assert all(r["analysis"]["providers"]["sentiment_fallback_from"] == "openai" for r in results)
            # All ten went out at once (first attempts); the breaker opened after 3 failures, so retries stopped.
            assert llm.calls < 20
            calls = llm.calls
            assert client.post("/v1/analyze", json=_article(50)).json()["analysis"]["providers"]["sentiment"] == "local"
            assert llm.calls == calls  # open circuit: not called at all
            assert client.get("/v1/models").json()["remote"]["openai"]["circuit"] == "open"
            assert 'inference_circuit_open{provider="openai"} 1.0' in client.get("/metrics").text

            llm.mode = "ok"  # the provider recovers, but the breaker is still open: local answers go on
            again = client.post("/v1/analyze", json=_article(99)).json()
            assert again["analysis"]["providers"]["sentiment"] == "local"


async def test_schemathesis_finds_nothing_against_the_document(spawn: Callable[..., ServiceProcess]) -> None:
    """Every check schemathesis has, a fixed seed and a bounded number of cases (the longer, random run is
    tests/chaos/test_openapi_fuzz.py)."""
    proc = spawn("inference", env={"INFERENCE__TIER": "fast", "MAX_BATCH_REQUEST": "64"})
    run = await fuzz("inference", proc.port, seed=21, max_examples=25, max_time=45, timeout=80)
    assert run.returncode == 0 and run.failures == 0, run.output[-8000:]
    assert run.operations == 6 and run.cases > 100, run.figures()
