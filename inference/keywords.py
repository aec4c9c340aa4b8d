"""Cheap, non-overlapping keywords for space-separated languages: stop-word runs scored by TF x IDF, no model.

YAKE cost about 9 % of the engine's CPU (5-17 ms an article) and returned overlapping phrases ("Senate passes",
"passes bill", "passes"); this module does regex and dict work only (about 0.1-0.2 ms an article) and its output
never repeats a word or a lemma. Korean keywords come from Kiwi nouns (`inference.korean`).

The rule, in order:
1. Tokens are words (start with a letter), numbers and punctuation. Stop words (YAKE's per-language lists, read
   from the installed package), one-letter words, numbers and punctuation end a run of content words.
2. Candidates: every single content word; a 2-3 word sub-run when it repeats in the text or is a capitalised
   name mid-text ("Supreme Court"); and the caller's entity surface forms ("Bank of England").
3. Score: occurrences x (sum of the words' IDF, each capped at 5) / sqrt(words) x a position bonus
   (1 + 2/(1 + first sentence index), so the title/lead counts triple); an entity scores 1.2 x at least as
   much as its best word, so a name keeps its full form.
4. Greedy by score: a candidate sharing a normalised word (lower case, possessive and plural stripped) with a
   higher-ranked keyword is dropped; each keyword keeps the surface form seen most often mid-sentence.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

__all__ = ["DocumentFrequencies", "keywords", "normalise", "stop_words"]

_ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
_STOP_LANGS = frozenset({"en", "de", "fr", "es", "it", "pt", "nl"})
# Words that head nearly every news text but are not in YAKE's list (its list is general English).
_NEWS_STOP = {
    "en": frozenset(
        {
            "mr",
            "mrs",
            "ms",
            "dr",
            "told",
            "added",
            "including",
            "according",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
            "week",
            "weeks",
            "year",
            "years",
            "day",
            "days",
            "time",
            "people",
            "percent",
            "cent",
            "per",
            "million",
            "billion",
            "image",
            "copyright",
            "getty",
            "images",
            "reuters",
            "ap",
            "afp",
        }
    )
}
_TOKEN = re.compile(r"([^\W\d_](?:[\w'’.-]*[^\W_])?)|(\d(?:[\w.,]*\w)?)|([.!?;:,()\"“”\[\]{}|/—–…]|\s[-–]\s)")
_SENTENCE_END = frozenset(".!?…")
# Constants chosen on a dev split of the training rows (python -m training.eval_keywords dev): the
# check was flat around them (P@k + recall within 0.01 for IDF caps 4-7, position bonus 2-5).
_POSITION = 2.0  # bonus b in 1 + b / (1 + sentence index): the first sentence (the title) counts triple
_CAPITAL = 1.0  # a capitalised word mid-sentence: no extra weight measured better; it still admits names as phrases
_ENTITY = 1.2  # the engine's entity spans beat the plain word they contain
_MAX_NGRAM = 3
_IDF_POWER = 1.0
_IDF_CAP = 5.0  # a word seen in under ~1 % of documents (names, typos) weighs no more than any other rare word
_LENGTH_DAMP = 0.5  # a phrase weighs the sum of its words' IDF / size ** 0.5
_POSSESSIVE = re.compile(r"['’]s?$")
_SENTENCES = re.compile(r"[.!?…]\s")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")
_CLAUSE_SPLIT = re.compile(r"[,;:()\"“”\[\]{}|/—–!?…]|\s[-–]\s|\.(?!\w)")
_WORD = re.compile(r"[^\W_](?:[\w'’.-]*[^\W_])?")


@lru_cache(maxsize=16)
def stop_words(language: str) -> frozenset[str]:
    """YAKE's stop-word list for `language` (en when YAKE has none), plus a few news boilerplate words."""
    spec = importlib.util.find_spec("yake")  # located, not imported: only its data files are needed
    lang = language if language in _STOP_LANGS else "en"
    words: set[str] = set()
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "core" / "StopwordsList" / f"stopwords_{lang}.txt"
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            words = {w.strip().lower() for w in text.splitlines() if w.strip()}
    return frozenset(words | _NEWS_STOP.get(lang, frozenset()))


@lru_cache(maxsize=65536)
def _normalise_en(lower: str) -> str:
    if lower.endswith(("'s", "’s")):
        lower = lower[:-2]
    elif lower.endswith(("'", "’")):
        lower = lower[:-1]
    if len(lower) > 4 and lower.endswith("ies"):
        return lower[:-3] + "y"
    if lower.endswith(("sses", "xes", "ches", "shes")):
        return lower[:-2]
    if len(lower) > 3 and lower.endswith("s") and not lower.endswith(("ss", "us", "is", "ous")):
        return lower[:-1]
    return lower


@lru_cache(maxsize=65536)
def _normalise_romance(lower: str) -> str:
    lower = lower.rstrip("'’")
    if len(lower) > 4 and lower.endswith("s") and not lower.endswith("ss"):
        return lower[:-1]
    return lower


def normalise(language: str, word: str) -> str:
    """The dedup key of a word: lower case, possessive and (for en/fr/es/pt/nl) plural stripped."""
    lower = word.lower()
    if language == "en":
        return _normalise_en(lower)
    if language in {"fr", "es", "pt", "nl"}:
        return _normalise_romance(lower)
    return lower.rstrip("'’")


@lru_cache(maxsize=131072)
def _word_key(language: str, word: str) -> str:
    """The key of a content word, or "" for a stop word or a one-letter word (cached: news repeats its words)."""
    if len(word) < 2 or word[0].isdigit():
        return ""
    stop = stop_words(language)
    if word.lower() in stop:
        return ""
    key = normalise(language, word)
    return "" if key in stop else key


def _tokens(language: str, text: str) -> list[tuple[str, str]]:
    """(surface, key) of each content word, with ("", ".") for a sentence end and ("", "") for any other break."""
    out: list[tuple[str, str]] = []
    append = out.append
    for word, _number, punct in _TOKEN.findall(text):
        if word:
            key = _word_key(language, word)
            append((word, key) if key else _BREAK)
        elif punct in _SENTENCE_END:
            append(_STOP)
        else:
            append(_BREAK)
    return out


_BREAK = ("", "")
_STOP = ("", ".")


class DocumentFrequencies:
    """Document frequencies of terms: seeded from the shipped table, updated online by the worker (bounded memory).

    The shipped counts are shared and read-only; `observe` adds to a private table of at most `max_terms` terms.
    When it grows past that, every online count (and the online document count) is halved and counts under one
    are dropped, so recent documents weigh more and memory stays bounded. Deterministic for a given sequence.
    """

    def __init__(self, base: dict[str, int] | None = None, base_docs: int = 0, max_terms: int = 200_000) -> None:
        self._base: dict[str, int] = base if base is not None else {}
        self._base_docs = base_docs
        self._online: dict[str, float] = {}
        self._online_docs = 0.0
        self.max_terms = max_terms

    @classmethod
    def shipped(cls, language: str = "en") -> DocumentFrequencies:
        """A fresh instance over the shipped table of `language` (cached load; empty where none ships)."""
        base, docs = _shipped_table(language)
        return cls(base, docs)

    @property
    def documents(self) -> float:
        return self._base_docs + self._online_docs

    def __len__(self) -> int:
        return len(self._online)

    def df(self, term: str) -> float:
        return self._base.get(term, 0) + self._online.get(term, 0.0)

    def idf(self, term: str) -> float:
        """log((N + 1) / (df + 1)) + 1: unseen terms weigh most, a term in every document weighs 1."""
        return math.log((self.documents + 1.0) / (self.df(term) + 1.0)) + 1.0

    def observe(self, terms: Iterable[str]) -> None:
        """Count one document's distinct terms (pass normalised keys, e.g. from `normalise`)."""
        online = self._online
        for term in set(terms):
            online[term] = online.get(term, 0.0) + 1.0
        self._online_docs += 1.0
        if len(online) > self.max_terms:
            self._online = {t: c / 2 for t, c in online.items() if c >= 2.0}
            self._online_docs /= 2

    def terms(self, text: str, language: str = "en") -> set[str]:
        """The distinct normalised content words of a text, as `observe` wants them."""
        return {key for surface, key in _tokens(language, text) if surface}


@lru_cache(maxsize=8)
def _shipped_table(language: str) -> tuple[dict[str, int], int]:
    path = _ARTIFACTS / f"df_{language}.json.gz"
    if not path.is_file():
        return {}, 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        payload = json.load(f)
    return dict(payload["df"]), int(payload["documents"])


@lru_cache(maxsize=8)
def _default_df(language: str) -> DocumentFrequencies:
    return DocumentFrequencies.shipped(language)


def keywords(
    language: str,
    text: str,
    *,
    entities: Sequence[str] = (),
    df: DocumentFrequencies | None = None,
    limit: int = 8,
) -> list[str]:
    """Up to `limit` keywords of `text` (title first, then lead), best first, no two sharing a word or lemma."""
    if df is None:
        df = _default_df(language)
    idf_cache: dict[str, float] = {}

    def idf(term: str) -> float:
        value = idf_cache.get(term)
        if value is None:
            value = idf_cache[term] = min(df.idf(term), _IDF_CAP) ** _IDF_POWER
        return value

    # Per content token: surface, key, sentence index, "written mid-sentence with a capital" (a name's signal).
    surf: list[str] = []
    keys: list[str] = []
    sent: list[int] = []
    cap: list[bool] = []
    single: dict[str, list[int]] = {}  # key -> indexes of its occurrences
    multi: dict[str, list[int]] = {}  # "key1 key2" -> start indexes of its occurrences
    word_key = _word_key
    sentences = _SENTENCE_SPLIT.split(text)
    title_case = _title_cased(language, sentences[0])
    for sentence, chunk in enumerate(sentences):
        initial = True
        for clause in _CLAUSE_SPLIT.split(chunk):
            words = _WORD.findall(clause)
            if not words:
                continue
            if initial:
                caps_ok = [False, *(w[0].isupper() for w in words[1:])]
                initial = False
            else:
                caps_ok = [w[0].isupper() for w in words]
            if sentence == 0 and title_case:
                caps_ok = [False] * len(words)
            run_start = len(keys)
            for word, upper in zip(words + [""], caps_ok + [False], strict=True):
                key = word_key(language, word) if word else ""
                if key:
                    surf.append(word)
                    keys.append(key)
                    sent.append(sentence)
                    cap.append(upper)
                    continue
                end = len(keys)
                for i in range(run_start, end):
                    key = keys[i]
                    if key in single:
                        single[key].append(i)
                    else:
                        single[key] = [i]
                    for j in range(i + 1, min(i + _MAX_NGRAM, end)):
                        key = f"{key} {keys[j]}"
                        if key in multi:
                            multi[key].append(i)
                        else:
                            multi[key] = [i]
                run_start = end

    weights = [idf(k) for k in keys]
    position = [1.0 + _POSITION / (1.0 + i) for i in range(len(sentences))]
    # Candidates sort best first: (-score, first token, joined key, entity surface or "").
    candidates: list[tuple[float, int, str, str]] = []
    for key, starts in single.items():
        first = starts[0]
        n = len(starts)
        score = n * weights[first] * position[sent[first]]
        if 2 * sum(map(cap.__getitem__, starts)) >= n:
            score *= _CAPITAL
        candidates.append((-score, first, key, ""))
    for key, starts in multi.items():
        first = starts[0]
        size = key.count(" ") + 1
        n = len(starts)
        caps = sum(1 for i in starts if all(cap[i : i + size]))
        if n < 2 and caps == 0:
            continue  # a one-off word sequence is more often a clause than a name ("Senate passes bill")
        score = n * sum(weights[first : first + size]) / size**_LENGTH_DAMP * position[sent[first]]
        if caps * 2 >= n:
            score *= _CAPITAL
        candidates.append((-score, first, key, ""))
    if entities:
        _add_entities(language, text, entities, candidates, idf)

    candidates.sort()
    used: set[str] = set()
    out: list[str] = []
    for _, _, joined, surface in candidates:
        parts = joined.split(" ")
        if used.intersection(parts):
            continue
        used.update(parts)
        if not surface:
            surface = _surface(surf, cap, (single if len(parts) == 1 else multi)[joined], len(parts))
        out.append(surface)
        if len(out) >= limit:
            break
    return out


def _surface(surf: list[str], cap: list[bool], starts: list[int], size: int) -> str:
    """The written form of the best occurrence: the most frequent, mid-sentence forms first, lower case on ties."""
    votes: dict[str, float] = {}
    for i in starts:
        form = _POSSESSIVE.sub("", " ".join(surf[i : i + size]))  # "Trump's" is written "Trump" as a keyword
        mid = cap[i] or form.islower()
        votes[form] = votes.get(form, 0.0) + (1.0 if mid else 0.5)
    return max(votes, key=lambda f: (votes[f], f.islower(), f))


def _add_entities(
    language: str,
    text: str,
    entities: Sequence[str],
    candidates: list[tuple[float, int, str, str]],
    idf: Callable[[str], float],
) -> None:
    """Entity surface forms as candidates, each scoring at least as much as its best single word."""
    lowered = text.lower()
    best_word = {joined: -score for score, _, joined, _ in candidates if " " not in joined}
    for entity in dict.fromkeys(e.strip() for e in entities if e and e.strip()):
        parts = tuple(k for s, k in _tokens(language, entity) if s)
        if not parts:
            continue
        where = lowered.find(entity.lower())
        n = max(lowered.count(entity.lower()), 1)
        sentence = len(_SENTENCES.findall(lowered, 0, where)) if where >= 0 else 3
        weight = sum(idf(k) for k in parts) / len(parts) ** _LENGTH_DAMP
        own = n * weight * (1.0 + _POSITION / (1.0 + sentence))
        score = max(own, *(best_word.get(k, 0.0) for k in parts)) * _ENTITY
        candidates.append((-score, -1, " ".join(parts), entity))


def _title_cased(language: str, sentence: str) -> bool:
    """True when a sentence capitalises most content words (a headline's Title Case hides which words are names)."""
    words = [w for w in _WORD.findall(sentence) if _word_key(language, w)]
    return len(words) >= 3 and sum(1 for w in words if w[0].isupper()) >= 0.8 * len(words)
