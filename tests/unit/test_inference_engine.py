"""The engine on English and Korean fixtures: invariants, typed canonical entities, order, determinism,
the process pool (a killed child costs a retry, not a batch), the fast tier, the device setting."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from common.schemas import CATEGORIES, SENTIMENTS, Analysis, RawArticle
from inference.engine import Engine
from inference.settings import EngineSettings

pytestmark = pytest.mark.unit

EN = [
    ("Earthquake kills 200 in eastern Turkey", "Rescue teams search for survivors after the 7.1 magnitude quake."),
    ("Apple unveils new iPhone with faster chip", "Tim Cook said the device would ship in October."),
    ("Manchester United beat Liverpool 2-1", "Marcus Rashford scored twice at Old Trafford."),
    ("The city council will vote on the budget next week", "The meeting is scheduled for Tuesday at 10 a.m."),
    ("Scientists discover new species of frog in Peru", "The researchers published their findings in Nature."),
    ("Stocks close lower as investors await Fed decision", "The S&P 500 fell 0.3 percent."),
]
KO = [
    ("삼성전자, 평택에 새 반도체 공장 건설 발표", "삼성전자가 평택에 새로운 반도체 공장을 짓는다고 밝혔다."),
    ("서울시, 내년 예산안 국회 제출", "서울시는 내년도 예산안을 시의회에 제출했다고 밝혔다."),
    ("손흥민, 토트넘에서 시즌 10호 골", "손흥민이 리그 경기에서 골을 넣으며 팀의 승리를 이끌었다."),
    ("독감 환자 급증, 보건당국 예방접종 권고", "질병관리청은 고령층의 예방접종을 권고했다."),
]


def _articles(rows: list[tuple[str, str]], prefix: str) -> list[RawArticle]:
    return [
        RawArticle(
            url=f"https://news.example/{prefix}/{i}",
            title=t,
            description=d,
            published_at=datetime(2024, 11, 26, 5, tzinfo=UTC),
            source="Example News",
        )
        for i, (t, d) in enumerate(rows)
    ]


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    # One process: the core runs in a thread of this one, and models are cached per process (lru_cache),
    # so a fresh engine per test costs nothing more.
    eng = Engine(EngineSettings(processes=1, max_batch=8, max_wait_ms=5), registry=CollectorRegistry())
    await eng.start()
    yield eng
    await eng.aclose()


def _check_invariants(analysis: Analysis) -> None:
    assert analysis.sentiment in SENTIMENTS
    assert -1.0 <= analysis.sentiment_score <= 1.0
    assert analysis.category in CATEGORIES
    assert 0.0 <= analysis.importance_score <= 10.0
    folded = [k.casefold() for k in analysis.keywords]
    assert len(folded) == len(set(folded))
    assert len({e.key for e in analysis.entities}) == len(analysis.entities)
    assert all(e.id and e.name for e in analysis.entities)
    assert analysis.engine_version != "0"


async def test_english_and_korean_batch_answers_each_article_once_in_order(engine: Engine) -> None:
    articles = _articles(EN, "en") + _articles(KO, "ko")
    results = await engine.analyze_batch(articles)
    assert len(results) == len(articles)
    for analysis in results:
        _check_invariants(analysis)
    assert [r.language for r in results] == ["en"] * len(EN) + ["ko"] * len(KO)
    # in order: each answer's keywords come from its own article's text (the articles share no topic, so an
    # answer swapped with any other article's fails here, within a language as well as across)
    for article, analysis in zip(articles, results, strict=True):
        text = f"{article.title} {article.description}".casefold()
        assert analysis.keywords, article.title
        assert [k for k in analysis.keywords if k.casefold() not in text] == [], article.title
    for analysis in results[len(EN) :]:
        assert analysis.models["sentiment"] == "sentiment_ko"
        assert analysis.models["category"] == "category_multi"
        assert analysis.summary is None or len(analysis.summary) <= 1_000


async def test_same_article_twice_same_analysis(engine: Engine) -> None:
    articles = _articles(EN + KO, "twice")
    first = await engine.analyze_batch(articles)
    second = await engine.analyze_batch(list(reversed(articles)))
    strip = {"latency_ms"}
    for a, b in zip(first, reversed(second), strict=True):
        assert a.model_dump(exclude=strip) == b.model_dump(exclude=strip)
    single = await engine.analyze(articles[0])
    assert single.model_dump(exclude=strip) == first[0].model_dump(exclude=strip)


async def test_korean_categories_transfer_from_english_training(engine: Engine) -> None:
    _, _, football, flu = await engine.analyze_batch(_articles(KO, "ko-cat"))
    assert football.category == "sports"
    assert flu.category == "health"
    assert "손흥민" in football.keywords


async def test_entities_are_typed_and_canonical_in_both_languages(engine: Engine) -> None:
    apple, samsung = await engine.analyze_batch([_articles(EN, "en")[1], _articles(KO, "ko")[0]])
    assert ("Tim Cook", "PERSON") in {(e.text, e.type) for e in apple.entities}
    assert any(e.type == "ORG" and "삼성" in e.text for e in samsung.entities)
    (trump,) = await engine.analyze_batch(
        _articles([("Donald Trump signs order", "President Trump said on Monday that Trump's plan would work.")], "t")
    )
    people = {e.id for e in trump.entities if e.type == "PERSON"}
    assert people == {"person:donald_trump"}


async def test_categories_and_tone_on_clear_cases(engine: Engine) -> None:
    quake, iphone, football, council, _, stocks = await engine.analyze_batch(_articles(EN, "c"))
    assert quake.sentiment == "negative"
    assert iphone.category == "technology"
    assert football.category == "sports"
    assert stocks.category == "business"
    # A report with no good or bad news in it is neutral; news of a loss or a death is not (DESIGN.md's trap).
    assert council.sentiment == "neutral"
    good, bad = await engine.analyze_batch(
        _articles(
            [
                ("Acme shares rise after record quarterly profit", "Sales grew for a second consecutive quarter."),
                ("Carmaker recalls 500,000 vehicles over brake fault", "Regulators fined the company $20 million."),
            ],
            "valence",
        )
    )
    assert good.sentiment == "positive"
    assert bad.sentiment == "negative"


async def test_batch_order_is_kept_under_concurrency(engine: Engine) -> None:
    rows = [(t, d) for t, d in EN + KO] * 6
    articles = _articles(rows, "order")
    results = await engine.analyze_batch(articles)
    assert len(results) == len(articles)
    # Each answer is the one its own article gets alone, at every position of the batch.
    strip = {"latency_ms"}
    for i in (0, 3, 7, len(articles) - 1):
        (alone,) = await engine.analyze_batch([articles[i]])
        assert results[i].model_dump(exclude=strip) == alone.model_dump(exclude=strip)
    assert [r.language for r in results] == [("ko" if i % 10 >= len(EN) else "en") for i in range(len(rows))]


async def test_event_loop_is_not_blocked_while_models_run(engine: Engine) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await engine.analyze_batch(_articles(EN * 5, "loop"))
    task.cancel()
    assert ticks >= 3


async def test_fast_tier() -> None:
    eng = Engine(EngineSettings(tier="fast", processes=1), registry=CollectorRegistry())
    results = await eng.analyze_batch(_articles(EN, "fast"))
    assert len(results) == len(EN)
    for analysis in results:
        _check_invariants(analysis)
        assert analysis.models["sentiment"] == "vader"
    await eng.aclose()


async def test_process_pool_uses_every_process_and_survives_a_killed_child() -> None:
    eng = Engine(EngineSettings(tier="fast", processes=2), registry=CollectorRegistry())
    try:
        await eng.start()
        pids = eng.pool.pids()
        assert len(pids) == 2 and os.getpid() not in pids
        articles = _articles(EN * 400, "pool")  # long enough to be running when the child dies
        baseline = await eng.analyze_batch(articles[: len(EN)])

        async def kill_soon() -> None:
            await asyncio.sleep(0.3)
            os.kill(pids[0], signal.SIGKILL)

        killer = asyncio.create_task(kill_soon())
        results = await eng.analyze_batch(articles)
        await killer
        assert eng.pool.restarts == 1  # the batch was retried whole on a new pool
        assert len(results) == len(articles)
        strip = {"latency_ms"}
        assert [r.model_dump(exclude=strip) for r in results[: len(EN)]] == [
            r.model_dump(exclude=strip) for r in baseline
        ]
        assert pids[0] not in eng.pool.pids()
    finally:
        await eng.aclose()


def test_cuda_device_is_refused_clearly_without_a_gpu_build() -> None:
    import onnxruntime as ort

    from inference.embeddings import execution_providers

    assert execution_providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert execution_providers("cuda")[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
            execution_providers("cuda")


def test_cuda_path_runs_and_matches_cpu() -> None:
    """On a machine with a GPU and onnxruntime-gpu: the encoder runs on CUDA and agrees with the CPU."""
    import time

    import numpy as np
    import onnxruntime as ort

    from inference.embeddings import minilm_encoder

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("no GPU here: onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu on a GPU machine)")
    texts = [f"{t}. {d}" for t, d in EN] * 64
    cpu, gpu = minilm_encoder("cpu"), minilm_encoder("cuda")
    gpu.encode(texts[:8])
    started = time.perf_counter()
    on_gpu = gpu.encode(texts)
    rate = len(texts) / (time.perf_counter() - started)
    assert np.min(np.sum(on_gpu * cpu.encode(texts), axis=1)) > 0.97  # float on the GPU, int8 on the CPU
    print(f"CUDA encoder: {rate:.0f} texts/s")  # noqa: T201 - the figure the closing note quotes
