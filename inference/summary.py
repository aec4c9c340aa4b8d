"""Local extractive summaries (EN, KO and other space-separated languages): 1-3 sentences of the article itself.

No model: sentences are split by regex and chosen by one rule, so a summary costs a fraction of a millisecond
and the same article always gets the same summary.

The rule:
1. Split the body into sentences (English-like: `.`, `!`, `?` followed by a space and a capital, quote or digit,
   common abbreviations such as "Mr." and "U.S." kept whole; Korean: after `다.`, `요.`, `.`, `?`, `!`). A body that
   starts with the title has it removed, and sentences repeating the title are dropped.
2. None when what is left is under `MIN_CHARS` characters: the text says nothing beyond the title.
3. The lead sentence is always taken (news puts the gist first). Further sentences are ranked by their overlap
   with the title and the lead: the summed IDF of shared content words divided by sqrt(the sentence's content
   words) (Korean: shared Hangul character bigrams), earlier sentences first on ties; they are added while the
   summary stays within `MAX_CHARS`, up to `max_sentences`, and printed in their original order.
"""

from __future__ import annotations

import math
import re

from inference.keywords import DocumentFrequencies, normalise, stop_words

__all__ = ["MAX_CHARS", "MIN_CHARS", "sentences", "summarize"]

MAX_CHARS = 400
MIN_CHARS = 40
_MAX_SENTENCE = 320  # a longer "sentence" is a run-on block (lists, captions): never added after the lead
_ABBREVIATIONS = "".join(
    rf"(?<!\b{a}\.)"
    for a in (
        *("Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "No", "vs", "Gov", "Sen", "Rep", "Gen", "Col", "Lt", "Sgt"),
        *("Prof", "Inc", "Co", "Corp", "Ltd", "Jan", "Feb", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec", "[A-Z]"),
    )
)
_END = r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))"  # a closing quote or bracket stays with its sentence
# The sentence-end test comes first so the abbreviation look-behinds run only after a full stop (10x faster).
_EN_SPLIT = re.compile(_END + _ABBREVIATIONS + r"\s+(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
_KO_SPLIT = re.compile(_END + r"\s+")
_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W_])?")
_HANGUL = re.compile(r"[가-힣]+")


def sentences(language: str, text: str) -> list[str]:
    """The sentences of `text` (regex split; Korean on sentence-final punctuation, which follows 다/요 endings)."""
    splitter = _KO_SPLIT if language == "ko" else _EN_SPLIT
    return [s.strip() for s in splitter.split(text.strip()) if s.strip()]


def _terms(language: str, sentence: str) -> set[str]:
    if language == "ko":
        return {w[i : i + 2] for w in _HANGUL.findall(sentence) for i in range(max(len(w) - 1, 1))}
    stop = stop_words(language)
    return {normalise(language, w) for w in _WORD.findall(sentence) if len(w) > 1 and w.lower() not in stop}


def _same(a: set[str], b: set[str]) -> bool:
    return len(a & b) >= 0.8 * len(a | b)  # Jaccard: a repeat of the title, not a lead that mentions it


def summarize(language: str, title: str, text: str, max_sentences: int = 3) -> str | None:
    """1-`max_sentences` sentences of `text` chosen by the module's rule, in order; None if nothing beyond the title."""
    title = title.strip()
    body = text.strip()
    if title and body.startswith(title):
        body = body[len(title) :].lstrip(" .:-–—|\n")
    title_terms = _terms(language, title)
    parts = [(s, _terms(language, s)) for s in sentences(language, body)]
    parts = [(s, t) for s, t in parts if t and not (title_terms and _same(t, title_terms))]
    if not parts or sum(len(s) for s, _ in parts) < MIN_CHARS or max_sentences < 1:
        return None
    lead, lead_terms = parts[0]
    if len(lead) > MAX_CHARS:
        return _cut(lead)
    df = DocumentFrequencies.shipped(language) if language != "ko" else None
    reference = title_terms | lead_terms

    def weight(term: str) -> float:
        return df.idf(term) if df is not None else 1.0

    ranked: list[tuple[float, int]] = []
    for i, (sentence, terms) in enumerate(parts[1:], start=1):
        if len(sentence) > _MAX_SENTENCE:
            continue
        shared = sum(weight(t) for t in terms & reference)
        ranked.append((-shared / math.sqrt(len(terms)), i))
    ranked.sort()
    chosen = [0]
    length = len(lead)
    for score, i in ranked:
        if len(chosen) >= max_sentences:
            break
        if score >= 0:
            break  # shares nothing with the title or lead: not part of the gist
        if length + 1 + len(parts[i][0]) <= MAX_CHARS:
            chosen.append(i)
            length += 1 + len(parts[i][0])
    return " ".join(parts[i][0] for i in sorted(chosen))


def _cut(sentence: str) -> str:
    """A lead longer than the budget, cut at the last word boundary with an ellipsis."""
    head = sentence[: MAX_CHARS - 1]
    return head[: head.rfind(" ")].rstrip(",;: ") + "…" if " " in head else head + "…"
