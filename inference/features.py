"""What text each model sees, and the sentiment feature vector: one definition for training and serving."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["LEAD_CHARS", "article_text", "category_text", "headline_text", "sentiment_features", "vader_scores"]

_LEAD_CHARS = 400
# The one text per article that the shared encoder reads (its token budget is `embeddings.TOKEN_BUDGET`):
# title, standfirst and the opening of the body, cut at a word boundary near LEAD_CHARS characters.
LEAD_CHARS = 600


def article_text(title: str, description: str | None = None, content: str | None = None) -> str:
    """Title + lead: what every head (sentiment, category) and the story clustering read, encoded once."""
    text = title if not description else f"{title}. {description}"
    if content and len(text) < LEAD_CHARS:
        lead = content[: LEAD_CHARS - len(text)]
        if len(lead) < len(content) and " " in lead:
            lead = lead.rsplit(" ", 1)[0]
        text = f"{text} {lead}"
    return text


def headline_text(title: str, description: str | None = None) -> str:
    """Title and standfirst: what a reader's sentiment judgement of a story rests on."""
    return title if not description else f"{title}. {description}"


def category_text(title: str, description: str | None = None, content: str | None = None) -> str:
    """Title, standfirst and the start of the body (topic needs more context than tone)."""
    head = headline_text(title, description)
    if content and len(head) < _LEAD_CHARS:
        head = f"{head} {content[: _LEAD_CHARS - len(head)]}"
    return head


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_scores(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """VADER's neg, neu, pos and compound for each text (a lexicon signal the learned head weighs)."""
    analyzer = _vader()
    rows = [analyzer.polarity_scores(t) for t in texts]
    return np.array([[r["neg"], r["neu"], r["pos"], r["compound"]] for r in rows], dtype=np.float32).reshape(-1, 4)


def sentiment_features(embeddings: npt.NDArray[np.float32], texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """English sentiment features: the sentence embedding next to the VADER scores."""
    return np.hstack([embeddings, vader_scores(texts)]).astype(np.float32)
