"""Korean section of the evaluation report: review polarity (NSMC), news valence, entities, category.

    python -m training.eval_korean [--limit N]

Every figure is on data the models never trained on: the NSMC held-out 20% (crc32 split), and the hand-written
Korean news check set `checks/ko_news.tsv` (see `checks/README_ko_news.md`). The check set has two halves: the
dev half was looked at while writing the lexicon and rules, the test half was not; the test half is the
reported figure.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Sequence

import numpy as np

from inference import korean
from inference.heads import ARTIFACTS
from training import korean as ko_train

__all__ = ["korean_section", "main"]

_SENT = ("negative", "neutral", "positive")


def _prf(gold: Sequence[str], pred: Sequence[str], label: str) -> tuple[float, float, float, int]:
    tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
    np_ = sum(p == label for p in pred)
    ng = sum(g == label for g in gold)
    p = tp / np_ if np_ else 0.0
    r = tp / ng if ng else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), ng


def _acc(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))


def _macro(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    return float(np.mean([_prf(gold, pred, label)[2] for label in labels]))


def _nsmc_lines(limit: int | None) -> list[str]:
    held = ko_train.nsmc_split("eval")[:limit]
    train = ko_train.nsmc_split("train")
    gold = [label for _, label in held]
    baseline = ko_train.baseline_char_tfidf(train, held)
    scores = [korean.review_score(t) for t, _ in held]
    model_acc = float(np.mean([(s > 0) == (g == 1) for s, g in zip(scores, gold, strict=True)]))
    full = korean.sentiment([t for t, _ in held])
    sign_acc = float(np.mean([(s > 0) == (g == 1) for (_, s, _), g in zip(full, gold, strict=True)]))
    labelled = [(lab, g) for (lab, _, _), g in zip(full, gold, strict=True) if lab != "neutral"]
    label_acc = float(np.mean([(lab == "positive") == (g == 1) for lab, g in labelled])) if labelled else 0.0
    return [
        "### Korean review polarity (NSMC held-out)",
        "",
        f"{len(held)} NSMC reviews (held-out {ko_train.EVAL_PERCENT}% by crc32(text), never trained on or used for "
        f"choosing settings); {len(train)} training rows.",
        "",
        "| model | accuracy |",
        "|---|---|",
        f"| baseline: char 1-3-gram TF-IDF + logistic regression (same rows, same solver) | {baseline:.3f} |",
        f"| `{korean.SENTIMENT_ARTIFACT}`: NB-LR over Kiwi morphemes + bigrams + char 1-4-grams | {model_acc:.3f} |",
        f"| `korean.sentiment()` (lexicon + review model), sign of the score | {sign_acc:.3f} |",
        f"| `korean.sentiment()` label, on the {len(labelled)} it does not call neutral | {label_acc:.3f} |",
        "",
    ]


def _reduced_lexicon() -> korean.Lexicon:
    """The lexicon less every term found in exactly one check-set headline: the same person wrote both, so
    such rare terms may have been written with that headline in mind; this bounds the leakage."""
    texts = [r.text for r in ko_train.news_checks()]
    terms = korean.lexicon_entries()
    keep = {t: e for t, e in terms.items() if sum(t in x for x in texts) != 1}
    return korean.build_lexicon(keep)


def _news_lines() -> list[str]:
    lines = ["### Korean news valence (hand-written check set, 3 classes)", ""]
    for half in ("test", "dev"):
        rows = ko_train.news_checks(half)
        gold = [r.sentiment for r in rows]
        pred = [label for label, _, _ in korean.sentiment([r.text for r in rows])]
        review = ["positive" if s >= 0.2 else "negative" if s <= -0.2 else "neutral"
                  for s in (korean.review_score(r.text) for r in rows)]  # fmt: skip
        note = "reported; never looked at while building" if half == "test" else "looked at while building the lexicon"
        lines += [
            f"**{half} half** ({len(rows)} headlines, {note}):",
            "",
            "| predictor | accuracy | macro-F1 |",
            "|---|---|---|",
            f"| `korean.sentiment()` (news lexicon, then review model when strong) | {_acc(gold, pred):.3f} | "
            f"{_macro(gold, pred, _SENT):.3f} |",
            f"| review model alone (neutral band 0.2) | {_acc(gold, review):.3f} | {_macro(gold, review, _SENT):.3f} |",
        ]
        reduced = _reduced_lexicon()
        abl = [korean.combine(korean.lexicon_score(r.text, reduced)[0], korean.review_score(r.text))[0] for r in rows]
        always = ["neutral"] * len(gold)
        lines += [
            f"| same, lexicon without the {len(korean.lexicon_entries()) - len(reduced[1])} terms that occur in only "
            f"one check-set headline (leakage check) | {_acc(gold, abl):.3f} | {_macro(gold, abl, _SENT):.3f} |",
            f"| always neutral | {_acc(gold, always):.3f} | {_macro(gold, always, _SENT):.3f} |",
            "",
        ]
        lines += ["| class | precision | recall | F1 | n |", "|---|---|---|---|---|"]
        for label in _SENT:
            p, r, f, n = _prf(gold, pred, label)
            lines.append(f"| {label} | {p:.2f} | {r:.2f} | {f:.2f} | {n} |")
        lines.append("")
    return lines


def _entity_lines() -> list[str]:
    lines = ["### Korean entities (gazetteer + rules over Kiwi proper nouns)", ""]
    texts = [r.text for r in ko_train.news_checks()]
    # The gazetteer was written after the check set, by the same person: it knows every name in it. The
    # "unseen names" run drops every gazetteer entry found in any check-set headline, so the rules (suffixes,
    # titles, surnames over Kiwi NNP) and the rest of the list do the work, as on names nobody listed.
    unseen = korean.build_gazetteer(
        {s: e for s, e in korean.gazetteer_entries().items() if not any(s in x for x in texts)}
    )
    for half, gaz in (("test", None), ("dev", None), ("test, unseen names", unseen), ("dev, unseen names", unseen)):
        rows = [r for r in ko_train.news_checks(half.split(",")[0]) if r.entities_labelled]
        tp = n_pred = n_gold = untyped_tp = 0
        for r in rows:
            gold = set(r.entities)
            found = korean.entities(r.text, gaz)
            pred = {(e.text, e.type) for e in found if e.type in ("PERSON", "ORG", "LOC")}
            tp += len(gold & pred)
            untyped_tp += len({s for s, _ in gold} & {s for s, _ in pred})
            n_pred += len(pred)
            n_gold += len(gold)
        p, rec = tp / max(1, n_pred), tp / max(1, n_gold)
        lines.append(
            f"- {half} half: {len(rows)} headlines, {n_gold} gold PERSON/ORG/LOC mentions, {n_pred} predicted: "
            f"typed precision {p:.3f}, recall {rec:.3f}, F1 {2 * p * rec / max(1e-9, p + rec):.3f} "
            f"(span only, any type: recall {untyped_tp / max(1, n_gold):.3f}). Exact surface match."
        )
    lines.append("")
    return lines


def _category_lines() -> list[str]:
    from inference.embeddings import e5_encoder
    from inference.heads import LinearHead

    head = LinearHead.load("category_multi")
    version = zlib.crc32((ARTIFACTS / "category_multi.npz").read_bytes())
    rows = [r for r in ko_train.news_checks() if r.category != "-"]
    x = e5_encoder().encode([r.text for r in rows]).astype(np.float32)
    pred = [head.classes[i] for i in head.predict_proba(x).argmax(axis=1)]
    gold = [r.category for r in rows]
    labels = sorted(set(gold))
    lines = [
        "### Category on Korean text (`category_multi` over multilingual-e5-small)",
        "",
        f"Head as committed (category_multi.npz crc32 {version:08x}): {head.card.get('data', '?')[:120]}... "
        f"({head.card.get('features', '?')[:80]}). "
        f"{len(rows)} check-set headlines with a category (both halves: the head was not built on them).",
        f"Accuracy {_acc(gold, pred):.3f}, macro-F1 {_macro(gold, pred, labels):.3f}; most frequent class "
        f"{max(labels, key=gold.count)} alone: {gold.count(max(labels, key=gold.count)) / len(gold):.3f}.",
        "",
        "| class | precision | recall | F1 | n |",
        "|---|---|---|---|---|",
    ]
    for label in labels:
        p, r, f, n = _prf(gold, pred, label)
        lines.append(f"| {label} | {p:.2f} | {r:.2f} | {f:.2f} | {n} |")
    lines.append("")
    return lines


def korean_section(limit: int | None) -> list[str]:
    """Markdown lines: NSMC held-out with the char n-gram baseline, KO news 3-class, entity P/R, KO category."""
    korean.load()
    return ["## Korean", "", *_nsmc_lines(limit), *_news_lines(), *_entity_lines(), *_category_lines()]


def main(argv: Sequence[str]) -> int:
    limit = int(argv[argv.index("--limit") + 1]) if "--limit" in argv else None
    print("\n".join(korean_section(limit)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
