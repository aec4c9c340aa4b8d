"""The importance score (0..10): a documented, additive formula over signals the engine already has.

importance = 1.0                                 base
           + min(3.0, 0.5 * distinct entities)    who and where: more named actors, more consequence
           + 1.0 if the headline has a number      casualties, money, votes, percentages
           + CATEGORY_WEIGHT[category]             hard news weighs more than soft news
           + 2.0 * |sentiment_score|               strongly charged stories
           + 1.5 * novelty                         1 - max cosine similarity to the recent stories seen
           + 0.5 if the source is a known outlet
clipped to 0..10, rounded to 2 decimals.
"""

from __future__ import annotations

import re
import threading
from collections import deque

import numpy as np
import numpy.typing as npt

__all__ = ["CATEGORY_WEIGHT", "KNOWN_SOURCES", "NoveltyTracker", "importance_score"]

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


class NoveltyTracker:
    """Remembers the last `window` embeddings; novelty of a new one is 1 - its nearest cosine similarity."""

    def __init__(self, window: int = 512) -> None:
        self._recent: deque[npt.NDArray[np.float32]] = deque(maxlen=max(window, 1))
        self._lock = threading.Lock()
        self._enabled = window > 0

    def observe(self, vector: npt.NDArray[np.float32]) -> float:
        if not self._enabled:
            return 0.0
        with self._lock:
            novelty = 1.0
            if self._recent:
                sims = np.stack(list(self._recent)) @ vector
                novelty = float(np.clip(1.0 - sims.max(), 0.0, 1.0))
            self._recent.append(vector)
        return novelty


def importance_score(
    *, entities: int, headline: str, category: str, sentiment_score: float, novelty: float, source: str
) -> float:
    source_known = any(name in source.casefold() for name in KNOWN_SOURCES)
    score = (
        1.0
        + min(3.0, 0.5 * entities)
        + (1.0 if _NUMBER.search(headline) else 0.0)
        + CATEGORY_WEIGHT.get(category, 0.5)
        + 2.0 * abs(sentiment_score)
        + 1.5 * novelty
        + (0.5 if source_known else 0.0)
    )
    return round(float(np.clip(score, 0.0, 10.0)), 2)
