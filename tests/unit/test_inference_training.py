"""The training pieces: softmax regression, artefact round trips, character n-grams, URL-section labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.heads import LinearHead, char_ngrams, fit_softmax
from training.data import in_eval_split, url_section_label
from training.evaluate import accuracy, macro_f1

pytestmark = pytest.mark.unit


def test_softmax_regression_separates_clusters_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centers = np.eye(3, 8, dtype=np.float32) * 4
    y = rng.integers(0, 3, 300)
    x = (centers[y] + rng.normal(0, 1, (300, 8))).astype(np.float32)
    w, b = fit_softmax(x, y, 3, steps=300)
    head = LinearHead("toy", ("a", "b", "c"), w, b, {"task": "toy"})
    assert (head.predict_proba(x).argmax(1) == y).mean() > 0.95
    head.save(tmp_path)
    loaded = LinearHead.load("toy", tmp_path)
    assert loaded.classes == ("a", "b", "c")
    np.testing.assert_allclose(loaded.predict_proba(x), head.predict_proba(x), rtol=1e-5)


def test_char_ngrams_mark_word_edges_and_normalise() -> None:
    grams = char_ngrams("최고  ＡＢ", 1, 3)
    assert " 최" in grams and "고 " in grams
    assert "ab" in grams  # NFKC folds full-width letters, then lower case


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("http://www.cnn.com/2017/02/07/politics/betsy-devos-senate-vote/index.html", "politics"),
        ("http://www.cnn.com/2017/02/07/europe/louvre-attack/index.html", "world"),
        ("http://www.bbc.co.uk/news/world-us-canada-38897507", "world"),
        ("http://www.bbc.co.uk/news/science-environment-38899343", "science"),
        ("http://www.bbc.co.uk/sport/football/38893753", "sports"),
        ("http://tass.com/economy/929603", "business"),
        ("http://abcnews.go.com/Health/wireStory/flu-45327337", "health"),
        ("http://www.rte.ie/news/world/2017/0207/850865-trump/", "world"),
        ("http://www.cnn.com/2017/02/05/opinions/devos-opinion/index.html", None),
        ("http://www.aljazeera.com/news/2017/02/haiti-170207161155899.html", "world"),
        ("http://www.aljazeera.com/indepth/opinion/2017/02/x.html", None),
    ],
)
def test_url_section_labels(url: str, label: str | None) -> None:
    assert url_section_label(url) == label


def test_eval_split_is_stable_and_about_the_right_size() -> None:
    texts = [f"headline number {i}" for i in range(2_000)]
    held = [t for t in texts if in_eval_split(t, 30)]
    assert 0.25 < len(held) / len(texts) < 0.35
    assert held == [t for t in texts if in_eval_split(t.upper(), 30)]  # case-insensitive, so stable


def test_metrics() -> None:
    gold = ["a", "a", "b", "b"]
    assert accuracy(gold, ["a", "b", "b", "b"]) == 0.75
    assert macro_f1(gold, gold, ["a", "b"]) == 1.0
