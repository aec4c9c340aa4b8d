"""Sentiment and category for a batch of articles in one language, from the one shared embedding per article.

The engine encodes each article's `features.article_text` once (int8 MiniLM for English, multilingual e5 for the
other languages) and hands the vectors here; every head below is a small softmax regression over that vector
(plus, for English sentiment, cheap lexicon scores), so classifying costs well under a millisecond per article.
Heads are trained by `python -m training.train` and loaded from `inference/artifacts/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import numpy as np
import numpy.typing as npt

from common.schemas import Sentiment
from inference.features import sentiment_features
from inference.heads import LinearHead

__all__ = ["CATEGORY_LABELS", "HeadResult", "classify", "load"]

CATEGORY_LABELS = ("world", "politics", "business", "technology", "science", "health", "sports", "entertainment")
_SENTIMENT_EN = "sentiment_en"
_CATEGORY_EN = "category_en"
_CATEGORY_MULTI = "category_multi"


@dataclass(frozen=True)
class HeadResult:
    """One article's sentiment and category, with the head that produced each."""

    sentiment: Sentiment
    sentiment_score: float  # p(positive) - p(negative), -1..1
    sentiment_confidence: float  # probability of the chosen label, 0..1
    sentiment_model: str
    category: str
    category_confidence: float
    category_model: str


@lru_cache(maxsize=8)
def _head(name: str) -> LinearHead:
    return LinearHead.load(name)


def load() -> None:
    """Load every head now (cached, so later calls and `classify` reuse them)."""
    for name in (_SENTIMENT_EN, _CATEGORY_EN, _CATEGORY_MULTI):
        _head(name)


def _sentiment_rows(head: LinearHead, proba: npt.NDArray[np.float64]) -> list[tuple[Sentiment, float, float, str]]:
    pos, neg = head.classes.index("positive"), head.classes.index("negative")
    out: list[tuple[Sentiment, float, float, str]] = []
    for row in proba:
        best = int(row.argmax())
        out.append(
            (
                cast(Sentiment, head.classes[best]),
                round(float(row[pos] - row[neg]), 4),
                round(float(row[best]), 4),
                head.name,
            )
        )
    return out


def _korean_sentiment(texts: Sequence[str]) -> list[tuple[Sentiment, float, float, str]]:
    from inference import korean  # Kiwi loads on the first Korean article

    return [(label, float(score), float(conf), "sentiment_ko") for label, score, conf in korean.sentiment(texts)]


def classify(language: str, texts: Sequence[str], embeddings: npt.NDArray[np.float32]) -> list[HeadResult]:
    """Sentiment and category of articles in one `language`; `embeddings[i]` is the shared vector of `texts[i]`
    (MiniLM for "en", e5 otherwise). Deterministic: the same inputs always give the same results."""
    if len(texts) != len(embeddings):
        raise ValueError(f"{len(texts)} texts but {len(embeddings)} embeddings")
    if not texts:
        return []
    vectors = np.asarray(embeddings, dtype=np.float32)
    sentiments: list[tuple[Sentiment, float, float, str]]
    if language == "en":
        head = _head(_SENTIMENT_EN)
        sentiments = _sentiment_rows(head, head.predict_proba(sentiment_features(vectors, texts)))
        category = _head(_CATEGORY_EN)
    else:
        if language == "ko":
            sentiments = _korean_sentiment(texts)
        else:  # no sentiment model for this language: neutral, with no confidence
            sentiments = [("neutral", 0.0, 0.0, "none")] * len(texts)
        category = _head(_CATEGORY_MULTI)
    cp = category.predict_proba(vectors)
    return [
        HeadResult(
            label,
            score,
            confidence,
            model,
            category.classes[int(cp[i].argmax())],
            round(float(cp[i].max()), 4),
            category.name,
        )
        for i, (label, score, confidence, model) in enumerate(sentiments)
    ]
