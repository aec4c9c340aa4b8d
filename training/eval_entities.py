"""Evaluation of the English entities (`inference.entities`), with the stock spaCy model beside it.

Why a module of its own: entity quality has three parts that no single score shows, and `make eval` reports all:

1. CoNLL-2003 *test* (never trained or tuned on; the model is selected on *valid*), exact span + type, per type,
   for the model alone and for the stock `en_core_web_sm` NER with its labels mapped to CoNLL's.
2. Junk rate of the engine's *final* output on 1,000 held-out NewsArticles texts (title + lead), judged by
   `junk_reason`, a checker written apart from the runtime filter and stricter in places: it also asks the stock
   model's part-of-speech tagger, in context, whether the span holds a verb, auxiliary or pronoun.
3. Canonicalisation: how many distinct keys the same real-world entity gets, before (today's engine: stock model,
   type + case-folded text) and after (canonical ids).

Plus CPU ms per article for NER + post-processing (process time, so other load on the machine does not count).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from common.schemas import Entity
from inference import entities
from training import data, ner

__all__ = ["conll_scores", "entities_section", "junk_reason", "main"]

_STOCK_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]
_TYPES = ("PER", "ORG", "LOC", "MISC")
# What engine v1 (inference/local.py, removed) kept and read.
_OLD_TYPES = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "EVENT", "PRODUCT", "FAC", "WORK_OF_ART", "LAW"})
_OLD_CHARS = 1000


def _stock(full: bool = False) -> Any:
    import spacy

    return spacy.load(ner.STOCK_MODEL, exclude=[] if full else _STOCK_EXCLUDE)


def conll_scores(model: Any, mapping: dict[str, str] | None, limit: int | None) -> dict[str, tuple[int, int, int]]:
    """(true positives, predicted, gold) per CoNLL type on CoNLL-2003 test; `mapping` maps the model's labels."""
    from spacy.tokens import Doc
    from spacy.training import biluo_tags_to_spans, iob_to_biluo

    sentences = list(data.conll2003("test"))[:limit]
    gold_docs, pred_docs = [], []
    for sentence in sentences:
        words = [w for w, _ in sentence]
        gold = Doc(model.vocab, words=words)
        gold.ents = biluo_tags_to_spans(gold, iob_to_biluo([t for _, t in sentence]))
        gold_docs.append(gold)
        pred_docs.append(Doc(model.vocab, words=words))
    counts = {t: [0, 0, 0] for t in _TYPES}
    for gold, pred in zip(gold_docs, model.pipe(pred_docs, batch_size=256), strict=True):
        g = {(e.start, e.end, e.label_) for e in gold.ents}
        p = set()
        for e in pred.ents:
            label = mapping.get(e.label_) if mapping is not None else e.label_
            if label in counts:
                p.add((e.start, e.end, label))
        for kind in _TYPES:
            gk = {x for x in g if x[2] == kind}
            pk = {x for x in p if x[2] == kind}
            counts[kind][0] += len(gk & pk)
            counts[kind][1] += len(pk)
            counts[kind][2] += len(gk)
    return {k: (v[0], v[1], v[2]) for k, v in counts.items()}


def _prf(tp: int, pred: int, gold: int) -> tuple[float, float, float]:
    p = tp / pred if pred else 0.0
    r = tp / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _sum(scores: dict[str, tuple[int, int, int]], kinds: Sequence[str]) -> tuple[int, int, int]:
    return (
        sum(scores[k][0] for k in kinds),
        sum(scores[k][1] for k in kinds),
        sum(scores[k][2] for k in kinds),
    )


_QUOTE_BRACKET = re.compile(r"[\"“”«»‘()\[\]{}<>?!,;|]")
_LEADING = re.compile(r"^[^\w]")
_TRAILING = re.compile(r"[^\w.]$|[-–—]$")


def junk_reason(span: str, pos_tags: Sequence[str] = ()) -> str | None:
    """Why a final entity span counts as junk in this evaluation, or None. Independent of `entities.is_junk`:
    contains a quote, bracket, `?`, `!`, `,`, `;` or `|`; more than 5 words; starts with punctuation or ends with
    punctuation other than a period, or with a hyphen; no upper-case letter at all; a single character; digits
    only; or, where the tagger's tags of the span in context are given, a VERB, AUX or PRON among them."""
    text = span.strip()
    if len(text) < 2:
        return "single character"
    if text.replace(" ", "").isdigit():
        return "number"
    if _QUOTE_BRACKET.search(text):
        return "quote/bracket/punctuation inside"
    if len(text.split()) > 5:
        return "more than 5 words"
    if _LEADING.search(text) or _TRAILING.search(text):
        return "starts/ends with punctuation or hyphen"
    if not any(c.isupper() for c in text) and re.search(r"[A-Za-z]", text):
        return "all lower-case"
    if any(tag in {"VERB", "AUX", "PRON"} for tag in pos_tags):
        return "verb/auxiliary/pronoun"
    return None


def _pos_in_context(doc: Any, surface: str) -> list[str]:
    start = doc.text.find(surface)
    if start < 0:
        return []
    span = doc.char_span(start, start + len(surface), alignment_mode="expand")
    return [t.pos_ for t in span] if span is not None else []


def _old_engine(stock: Any, texts: Sequence[str]) -> tuple[list[list[Entity]], float]:
    """Today's engine: stock tok2vec-less NER on 1,000 chars, OntoNotes types, case-folded dedupe."""
    start = time.process_time()
    out = []
    for doc in stock.pipe([t[:_OLD_CHARS] for t in texts], batch_size=32):
        seen: dict[str, Entity] = {}
        for e in doc.ents:
            if e.label_ in _OLD_TYPES and e.text.strip():
                seen.setdefault(e.text.casefold(), Entity(text=e.text, type=e.label_))
        out.append(list(seen.values())[:25])
    return out, (time.process_time() - start) * 1000 / max(len(texts), 1)


def _junk_table(tagger: Any, texts: Sequence[str], results: Sequence[Sequence[Entity]]) -> tuple[int, Counter[str]]:
    reasons: Counter[str] = Counter()
    total = 0
    for doc, found in zip(tagger.pipe(list(texts), batch_size=32), results, strict=True):
        for e in found:
            total += 1
            reason = junk_reason(e.text, _pos_in_context(doc, e.text))
            if reason:
                reasons[reason] += 1
    return total, reasons


_PROBES = ("trump", "obama", "putin", "united states")


def _probe_keys(results: Sequence[Sequence[Entity]], probe: str, canonical: bool) -> set[str]:
    keys = set()
    for found in results:
        for e in found:
            if canonical:
                if probe in (e.name or e.text).casefold().split() or probe == (e.name or "").casefold():
                    keys.add(e.key)
            elif probe in e.text.casefold():
                keys.add(e.key)
    return keys


def entities_section(limit: int | None = None) -> list[str]:
    """Markdown lines for docs/EVALUATION.md. `limit` caps CoNLL test sentences and NewsArticles texts (None: all
    3,453 sentences and 1,000 held-out articles)."""
    entities.load()
    stock = _stock()
    ours = entities._ner().nlp
    mapped = dict(ner._STOCK_TO_CONLL)
    ours_scores = conll_scores(ours, None, limit)
    stock_scores = conll_scores(stock, mapped, limit)
    lines = [
        "## Entities (English)",
        "",
        f"CoNLL-2003 test ({sum(v[2] for v in ours_scores.values())} gold spans), exact span and type. Model: "
        "`inference/artifacts/ner_en` (trained on CoNLL train + silver NewsArticles leads, selected on valid). "
        "Stock: `en_core_web_sm` NER, GPE/LOC/FAC -> LOC, NORP/EVENT/PRODUCT/LAW/WORK_OF_ART/LANGUAGE -> MISC.",
        "",
        "| type | P | R | F1 | stock P | stock R | stock F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    rows: list[tuple[str, Sequence[str]]] = [(k, (k,)) for k in _TYPES]
    rows += [("PER+LOC+ORG", ("PER", "LOC", "ORG")), ("all four", _TYPES)]
    for label, kinds in rows:
        a = _prf(*_sum(ours_scores, kinds))
        b = _prf(*_sum(stock_scores, kinds))
        lines.append(f"| {label} | {a[0]:.3f} | {a[1]:.3f} | {a[2]:.3f} | {b[0]:.3f} | {b[1]:.3f} | {b[2]:.3f} |")

    texts = ner.junk_eval_articles(1000 if limit is None else limit)
    # Cost: NER + post-processing as the engine calls it, CPU time of this process.
    entities.english_entities(texts[:32])
    start = time.process_time()
    final = entities.english_entities(texts)
    ms_new = (time.process_time() - start) * 1000 / max(len(texts), 1)
    old, ms_old = _old_engine(stock, texts)
    tagger = _stock(full=True)
    total_new, junk_new = _junk_table(tagger, [entities._bounded(t) for t in texts], final)
    total_old, junk_old = _junk_table(tagger, [t[:_OLD_CHARS] for t in texts], old)
    lines += [
        "",
        f"Junk entity spans in the final output for {len(texts)} held-out NewsArticles texts (title + lead; rule: "
        "`eval_entities.junk_reason`, a checker apart from the runtime filter: quote/bracket/`?`/`!`/`,`/`;` "
        "inside, more than 5 words, starts or ends with punctuation or a hyphen, no capital letter, a single "
        "character, a number, or a VERB/AUX/PRON token by the stock tagger in context).",
        "",
        "| engine | entities | junk | junk rate | top reasons |",
        "|---|---|---|---|---|",
    ]
    for label, total, reasons in (("this", total_new, junk_new), ("before (stock, 1,000 chars)", total_old, junk_old)):
        junk = sum(reasons.values())
        top = "; ".join(f"{r} {n}" for r, n in reasons.most_common(3)) or "-"
        lines.append(f"| {label} | {total} | {junk} | {junk / max(total, 1):.2%} | {top} |")

    lines += [
        "",
        "Canonicalisation: distinct keys an entity gets across these articles (before: today's type + case-folded "
        "surface, for surfaces containing the name; after: canonical ids whose name contains it).",
        "",
        "| entity | before | after | after ids |",
        "|---|---|---|---|",
    ]
    for probe in _PROBES:
        before = _probe_keys(old, probe, canonical=False)
        after = _probe_keys(final, probe, canonical=True)
        shown = ", ".join(sorted(after)[:6])
        lines.append(f"| {probe} | {len(before)} | {len(after)} | {shown} |")
    lines += [
        "",
        f"Cost, CPU ms per article (one process, NER + post-processing): this {ms_new:.1f} ms on "
        f"{entities.ENTITY_CHARS} chars; before {ms_old:.1f} ms on {_OLD_CHARS} chars (stock NER without tok2vec).",
        "",
    ]
    return lines


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="English entity evaluation (markdown to stdout)")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    print("\n".join(entities_section(args.limit)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
