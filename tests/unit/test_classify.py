"""inference.classify: news sentiment and category heads over the shared embedding (real heads, real encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from inference import classify as clf
from inference.embeddings import minilm_encoder
from inference.features import article_text, event_hits


def _en(texts: list[str]) -> list[clf.HeadResult]:
    return clf.classify("en", texts, minilm_encoder().encode(texts))


GOOD_NEWS = [
    "Rolls-Royce wins £100m contract extension with the Navy",
    "Tesco shares rise as sales growth beats forecasts",
    "Scientists develop cure for rare childhood blindness",
    "Miners rescued alive after three days underground",
]
BAD_NEWS = [
    "20 dead in market blast in northern city",
    "Carmaker recalls one million vehicles over faulty brakes",
    "Bank fined $2bn for money laundering failures",
    "Factory closure puts 900 jobs at risk",
]


@pytest.mark.parametrize("title", GOOD_NEWS)
def test_good_news_is_positive(title: str) -> None:
    result = _en([title])[0]
    assert result.sentiment == "positive"
    assert result.sentiment_score > 0
    assert result.sentiment_model == "sentiment_en"


@pytest.mark.parametrize("title", BAD_NEWS)
def test_bad_news_is_negative(title: str) -> None:
    result = _en([title])[0]
    assert result.sentiment == "negative"
    assert result.sentiment_score < 0


def test_good_news_scores_above_bad_news() -> None:
    results = _en(GOOD_NEWS + BAD_NEWS)
    good = [r.sentiment_score for r in results[: len(GOOD_NEWS)]]
    bad = [r.sentiment_score for r in results[len(GOOD_NEWS) :]]
    assert min(good) > max(bad)


def test_scores_are_calibrated_probabilities() -> None:
    for r in _en(GOOD_NEWS + BAD_NEWS + ["The committee will meet on Tuesday."]):
        assert -1.0 <= r.sentiment_score <= 1.0
        assert 1 / 3 <= r.sentiment_confidence <= 1.0
        assert 1 / 8 <= r.category_confidence <= 1.0
        assert r.category in clf.CATEGORY_LABELS


@pytest.mark.parametrize(
    ("title", "description", "category"),
    [
        ("Arsenal beat Chelsea 2-1", "A late goal settles the Premier League derby at the Emirates.", "sports"),
        ("Oil prices slide as OPEC output climbs", "Brent crude fell 3% as producers pumped more barrels.", "business"),
        ("Apple unveils faster iPhone chip", "The new processor targets mobile gaming.", "technology"),
        ("Rebels seize town as ceasefire collapses", "UN envoys urged both armies to return to talks.", "world"),
    ],
)
def test_categories(title: str, description: str, category: str) -> None:
    result = _en([article_text(title, description)])[0]
    assert result.category == category
    assert result.category_model == "category_en"


def test_deterministic_and_batch_independent() -> None:
    texts = GOOD_NEWS + BAD_NEWS
    vectors = minilm_encoder().encode(texts)
    first = clf.classify("en", texts, vectors)
    again = clf.classify("en", texts, vectors)
    alone = clf.classify("en", texts[:1], vectors[:1])
    assert first == again
    # Alone or in a batch: the same labels, and scores equal up to floating-point summation order.
    assert (alone[0].sentiment, alone[0].category) == (first[0].sentiment, first[0].category)
    assert alone[0].sentiment_score == pytest.approx(first[0].sentiment_score, abs=1e-3)
    assert alone[0].category_confidence == pytest.approx(first[0].category_confidence, abs=1e-3)


def test_shapes_and_empty_batch() -> None:
    assert clf.classify("en", [], np.zeros((0, 384), dtype=np.float32)) == []
    with pytest.raises(ValueError, match="texts"):
        clf.classify("en", ["one", "two"], np.zeros((1, 384), dtype=np.float32))


def test_other_languages_use_the_multilingual_category_head() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    results = clf.classify("fr", ["un", "deux", "trois"], vectors)
    assert len(results) == 3
    assert {r.category_model for r in results} == {"category_multi"}
    assert {r.sentiment_model for r in results} <= {"none", "sentiment_multi"}
    for r in results:
        if r.sentiment_model == "none":
            assert (r.sentiment, r.sentiment_score, r.sentiment_confidence) == ("neutral", 0.0, 0.0)


def test_event_lexicon_counts_negation() -> None:
    assert event_hits("Shares rise after record profit") == (2, 0)
    assert event_hits("Talks fail to reach a deal")[1] >= 1
    assert event_hits("Not guilty") == (1, 0)


def test_load_is_idempotent() -> None:
    clf.load()
    clf.load()
