"""The importance score (0..10): a documented, additive formula over signals the engine already has.

importance = 1.0                                 base
           + min(3.0, 0.5 * distinct entities)    who and where: more named actors, more consequence
           + 1.0 if the headline has a number      casualties, money, votes, percentages
           + CATEGORY_WEIGHT[category]             hard news weighs more than soft news
           + 1.5 * |sentiment_score|               clearly good or bad news, either way
           + 0.5 if the source is a known outlet
clipped to 0..10, rounded to 2 decimals.

It depends on the article alone, so the same article always scores the same (formula-v1 also weighed novelty
against the articles seen before it, and scored one article 4.50, then 3.82). Coverage (how many sources report
the same story) is the better signal and belongs to the story stage, which sees every article.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["CATEGORY_WEIGHT", "KNOWN_SOURCES", "importance_score"]

CATEGORY_WEIGHT = {
    "world": 1.5,
    "politics": 1.5,
    "business": 1.2,
    "health": 1.2,
    "science": 1.0,
    "technology": 1.0,
    "sports": 0.5,
    "entertainment": 0.3,
    "other": 0.5,
}
KNOWN_SOURCES = (
    "reuters",
    "associated press",
    "ap news",
    "bbc",
    "guardian",
    "new york times",
    "nytimes",
    "washington post",
    "financial times",
    "bloomberg",
    "al jazeera",
    "aljazeera",
    "cnn",
    "npr",
    "dw",
    "yonhap",
    "연합뉴스",
    "kbs",
    "abc news",
    "rte",
    "tass",
    "afp",
)
_NUMBER = re.compile(r"\d")


def importance_score(*, entities: int, headline: str, category: str, sentiment_score: float, source: str) -> float:
    source_known = any(name in source.casefold() for name in KNOWN_SOURCES)
    score = (
        1.0
        + min(3.0, 0.5 * entities)
        + (1.0 if _NUMBER.search(headline) else 0.0)
        + CATEGORY_WEIGHT.get(category, 0.5)
        + 1.5 * abs(sentiment_score)
        + (0.5 if source_known else 0.0)
    )
    return round(float(np.clip(score, 0.0, 10.0)), 2)
