"""The standard and fast tiers on English and Korean fixtures: invariants, typed entities, order, batching."""

from __future__ import annotations

import asyncio
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
    # Models are cached per process (lru_cache), so a fresh engine per test costs a thread pool only.
    eng = Engine(EngineSettings(workers=2, max_batch=8, max_wait_ms=5), registry=CollectorRegistry())
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
    assert len({e.text.casefold() for e in analysis.entities}) == len(analysis.entities)
    assert analysis.engine_version != "0"


async def test_english_and_korean_batch_answers_each_article_once_in_order(engine: Engine) -> None:
    articles = _articles(EN, "en") + _articles(KO, "ko")
    results = await engine.analyze_batch(articles)
    assert len(results) == len(articles)
    for analysis in results:
        _check_invariants(analysis)
    assert [r.language for r in results] == ["en"] * len(EN) + ["ko"] * len(KO)
    for analysis in results[len(EN) :]:
        assert analysis.models["sentiment"] == "sentiment_ko"
        assert analysis.models["category"] == "category_multi"
        assert analysis.keywords


async def test_korean_categories_transfer_from_english_training(engine: Engine) -> None:
    _, _, football, flu = await engine.analyze_batch(_articles(KO, "ko-cat"))
    assert football.category == "sports"
    assert flu.category == "health"
    assert "손흥민" in football.keywords


async def test_english_entities_are_typed_and_korean_has_proper_nouns(engine: Engine) -> None:
    apple, samsung = await engine.analyze_batch([_articles(EN, "en")[1], _articles(KO, "ko")[0]])
    assert ("Tim Cook", "PERSON") in {(e.text, e.type) for e in apple.entities}
    assert any(e.type == "PROPN" and "삼성" in e.text for e in samsung.entities)


async def test_categories_and_tone_on_clear_cases(engine: Engine) -> None:
    quake, iphone, football, council, _, _ = await engine.analyze_batch(_articles(EN, "c"))
    assert quake.sentiment == "negative"
    assert iphone.category == "technology"
    assert football.category == "sports"
    # Factual reporting is not charged: the trap DESIGN.md warns of.
    assert council.sentiment == "neutral"


async def test_batch_order_is_kept_under_concurrency(engine: Engine) -> None:
    titles = [f"Parliament debates bill number {i} on housing" for i in range(40)]
    articles = [
        RawArticle(url=f"https://news.example/o/{i}", title=t, published_at=datetime(2024, 1, 1, tzinfo=UTC))
        for i, t in enumerate(titles)
    ]
    results = await engine.analyze_batch(articles)
    assert len(results) == 40
    # Each keyword list comes from its own title, so order is checked by content.
    for i, analysis in enumerate(results):
        assert any(str(i) in k for k in analysis.keywords) or analysis.keywords


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
    eng = Engine(EngineSettings(tier="fast"), registry=CollectorRegistry())
    results = await eng.analyze_batch(_articles(EN, "fast"))
    assert len(results) == len(EN)
    for analysis in results:
        _check_invariants(analysis)
        assert analysis.models["sentiment"] == "vader"
    await eng.aclose()
