"""Korean analysis: news valence, typed entities, keywords, determinism (inference.korean)."""

from __future__ import annotations

import pytest

from inference import korean

pytestmark = pytest.mark.unit


def _label(text: str) -> str:
    return korean.sentiment([text])[0][0]


def test_earnings_beating_forecasts_is_positive() -> None:
    assert _label("삼성전자 3분기 영업이익 시장 전망치 상회") == "positive"


def test_fatal_accident_is_negative() -> None:
    assert _label("고속도로 25중 추돌 사고…1명 숨지고 30명 부상") == "negative"


def test_schedule_notice_is_neutral() -> None:
    assert _label("한국은행, 기준금리 연 3.50%로 동결") == "neutral"


def test_direction_takes_the_sign_of_the_quantity() -> None:
    assert _label("반도체 업황 회복에 영업손실 감소") == "positive"
    assert _label("반도체 수출 감소") == "negative"


def test_negation_flips_a_bad_event() -> None:
    score, _ = korean.lexicon_score("폭발 사고 있었으나 인명 피해 없어")
    assert score > korean.lexicon_score("폭발 사고로 인명 피해")[0]


def test_score_and_confidence_ranges() -> None:
    for label, score, confidence in korean.sentiment(["정말 최고의 영화였다", "지루하고 최악", "내일 회의 개최"]):
        assert label in ("positive", "neutral", "negative")
        assert -1.0 <= score <= 1.0 and 0.0 <= confidence <= 1.0


def test_review_model_reads_reviews() -> None:
    assert korean.review_score("배우들 연기가 정말 훌륭하고 감동적인 영화") > 0
    assert korean.review_score("시간 아깝다 돈 주고 본 게 후회된다") < 0


def test_entities_are_typed_with_shared_ids() -> None:
    ents = {e.text: e for e in korean.entities("윤석열 대통령은 서울시에서 현대자동차 정의선 회장을 만났다")}
    assert ents["윤석열"].type == "PERSON" and ents["윤석열"].id == "person:yoon_suk_yeol"
    assert ents["서울시"].type == "LOC"
    assert ents["현대자동차"].type == "ORG" and ents["현대자동차"].id == "org:hyundai_motor"
    assert ents["정의선"].type == "PERSON"


def test_rules_type_unknown_names() -> None:
    ents = {e.text: e.type for e in korean.entities("홍길순 장관은 미래전략위원회 회의에서 발언했다")}
    assert ents.get("홍길순") == "PERSON"


def test_ambiguous_gazetteer_word_needs_a_proper_noun_reading() -> None:
    assert not any(e.text == "경기" for e in korean.entities("어젯밤 축구 경기에서 역전승을 거뒀다"))


def test_keywords_are_nouns_without_overlap() -> None:
    kws = korean.keywords("삼성전자 3분기 영업이익 시장 전망치 상회. 삼성전자 주가 상승", limit=5)
    assert kws[0] == "삼성전자"
    assert len(kws) <= 5
    assert all(a == b or (a not in b and b not in a) for a in kws for b in kws)


def test_deterministic() -> None:
    text = "카카오 창업자 김범수 구속…시세 조종 혐의"
    first = (korean.sentiment([text]), korean.entities(text), korean.keywords(text))
    korean._analyse.cache_clear()
    assert (korean.sentiment([text]), korean.entities(text), korean.keywords(text)) == first
