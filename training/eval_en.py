"""English sentiment and category sections of docs/EVALUATION.md, measured through `inference.classify.classify`.

Every figure is computed on the shared embedding the engine serves (`minilm_encoder().encode(article_text(...))`)
and on labelled data the heads never saw: the evaluation splits (crc32 of the text or title) of the corpora they
train on, corpora they never train on (Kotzias, rotten tomatoes) and a hand-labelled headline check set
(`inference/resources/en_headline_check.tsv`). Baselines sit beside each model row.

    python -m training.eval_en [--limit N]     # prints both sections
"""

from __future__ import annotations

import argparse
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import inference
from inference.classify import CATEGORY_LABELS, classify
from inference.embeddings import minilm_encoder
from inference.features import article_text, vader_scores
from training import data, weak
from training.evaluate import accuracy, macro_f1, per_class
from training.train import EVAL_PERCENT, SENTIMENT_LABELS, category_items

__all__ = ["category_section", "headline_check", "sentiment_section"]

CHECK_SET = Path(inference.__file__).resolve().parent / "resources" / "en_headline_check.tsv"
# The outside check scores four coarse classes (AG News style); our eight fold into them like this.
COARSE = {
    "world": "world",
    "politics": "world",
    "business": "business",
    "technology": "sci/tech",
    "science": "sci/tech",
    "health": "sci/tech",
    "sports": "sports",
    "entertainment": "entertainment",
}


def _row(data_set: str, model: str, gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> str:
    acc, f1 = accuracy(gold, pred), macro_f1(gold, pred, labels)
    return f"| {data_set} | {model} | {len(gold)} | {acc:.3f} | {f1:.3f} |"


def _class_table(rows: Sequence[tuple[str, Sequence[str], Sequence[str]]], labels: Sequence[str]) -> list[str]:
    """Per-class P/R/F1 with one column group per (model, gold, pred)."""
    header = "| class | support | " + " | ".join(f"{name} P / R / F1" for name, _, _ in rows) + " |"
    out = [header, "|---|---|" + "---|" * len(rows)]
    tables = [per_class(gold, pred, labels) for _, gold, pred in rows]
    for label in labels:
        cells = [f"{t[label][0]:.2f} / {t[label][1]:.2f} / {t[label][2]:.2f}" for t in tables]
        out.append(f"| {label} | {int(tables[0][label][3])} | " + " | ".join(cells) + " |")
    return out


def _model_sentiment(texts: Sequence[str]) -> list[str]:
    if not texts:
        return []
    return [r.sentiment for r in classify("en", texts, minilm_encoder().encode(texts))]


def _vader(texts: Sequence[str], band: float = 0.05) -> list[str]:
    compound = vader_scores(texts)[:, 3] if texts else np.zeros(0)
    return ["positive" if c >= band else "negative" if c <= -band else "neutral" for c in compound]


def _weak(texts: Sequence[str]) -> list[str]:
    # The weak-labelling recipe as a classifier: "neutral" where it is unsure.
    return [weak.weak_label(t) or "neutral" for t in texts]


def _cap(items: list[tuple[str, str]], limit: int | None) -> list[tuple[str, str]]:
    return items if limit is None else items[:limit]


def headline_check() -> list[tuple[str, str]]:
    """(title, label) of the hand-labelled check set, titles read from the NewsArticles corpus by crc32."""
    wanted: dict[str, str] = {}
    for line in CHECK_SET.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", "title_crc32")):
            key, label = line.split("\t")
            wanted[key] = label
    found: dict[str, str] = {}
    for item in data.news_articles():
        key = f"{zlib.crc32(item.title.encode('utf-8')):08x}"
        if key in wanted and key not in found:
            found[key] = item.title
    return [(found[k], wanted[k]) for k in wanted if k in found]


def sentiment_section(limit: int | None) -> list[str]:
    """Markdown lines: English news sentiment against VADER and the weak-label recipe, per data set and class."""
    nyt = [
        (t, data.rating_label(r))
        for t, r in data.hutto("nytEditorialSnippets")
        if data.in_eval_split(t, EVAL_PERCENT["nyt"])
    ]
    sets: list[tuple[str, list[tuple[str, str]], tuple[str, ...]]] = [
        ("news headlines, hand-labelled check set (3 classes)", _cap(headline_check(), limit), SENTIMENT_LABELS),
        ("NYT editorial snippets, held out (3 classes, mean rating +-0.5)", _cap(nyt, limit), SENTIMENT_LABELS),
        (
            "Rotten Tomatoes (fresh/rotten/plot)",
            _cap([(x.text, x.label) for x in data.rotten_tomatoes()], limit),
            SENTIMENT_LABELS,
        ),
        (
            "Kotzias amazon/imdb/yelp (binary; 3-class prediction)",
            _cap([(x.text, x.label) for x in data.kotzias()], limit),
            ("negative", "positive"),
        ),
    ]
    out = [
        "## Sentiment (English news)",
        "",
        "Model: `sentiment_en`, softmax regression over the shared int8 MiniLM embedding of `article_text` plus "
        "VADER's four scores and three news-event lexicon scores (`inference/features.py`), trained on Hutto & "
        "Gilbert's NYT (training split) and tweets plus real headlines and leads weakly labelled by "
        "`training/weak.py`. Baselines: VADER alone (compound >= 0.05 positive, <= -0.05 negative) and "
        "the weak-label recipe itself used as a classifier (unsure -> neutral). The headline check set is 130 real "
        "NewsArticles headlines from the evaluation split, labelled by hand before any model output was seen; "
        "Kotzias and rotten tomatoes were never trained on.",
        "",
        "| data set | model | n | accuracy | macro-F1 |",
        "|---|---|---|---|---|",
    ]
    details: list[str] = []
    for name, items, labels in sets:
        texts, gold = [t for t, _ in items], [g for _, g in items]
        predictions = {"sentiment_en": _model_sentiment(texts), "VADER": _vader(texts), "weak recipe": _weak(texts)}
        for model, pred in predictions.items():
            out.append(_row(name, model, gold, pred, labels))
        details += ["", f"Per class, {name}:", ""]
        details += _class_table([(m, gold, p) for m, p in predictions.items()], labels)
    out += details
    headlines = [n.title for n in data.news_articles() if data.in_eval_split(n.title, 30)]
    leads = [article_text(n.title, None, n.lead) for n in data.news_articles() if data.in_eval_split(n.title, 30)]
    if limit is not None:
        headlines, leads = headlines[:limit], leads[:limit]
    out += ["", "Predicted class distribution on real held-out news (NewsArticles evaluation split):", ""]
    out += ["| text | model | n | negative | neutral | positive |", "|---|---|---|---|---|---|"]
    for shape, texts in (("title", headlines), ("title + lead", leads)):
        for model, pred in (("sentiment_en", _model_sentiment(texts)), ("VADER", _vader(texts))):
            counts = Counter(pred)
            shares = " | ".join(f"{counts[c] / max(1, len(pred)):.0%}" for c in SENTIMENT_LABELS)
            out.append(f"| {shape} | {model} | {len(pred)} | {shares} |")
    return out


def _category_eval(limit: int | None) -> list[tuple[str, str, str, str]]:
    """(title, body, label, source) of every held-out category item (the complement of the training split)."""
    items: list[tuple[str, str, str, str]] = []
    for x in data.bbc_news():
        if data.in_eval_split(x.title, EVAL_PERCENT["bbc"]):
            items.append((x.title, x.body, x.label, "BBC"))
    for x in data.url_labelled_news():
        if data.in_eval_split(x.title, EVAL_PERCENT["url_news"]):
            items.append((x.title, x.body, x.label, "NewsArticles by URL section"))
    for r in data.reuters():
        if data.in_eval_split(r.title, EVAL_PERCENT["reuters"]):
            items.append((r.title, r.lead, "business", "Reuters-21578"))
    train_titles = {title for title, _, _, _ in category_items()}
    items = [i for i in items if i[0] not in train_titles]
    if limit is not None:
        by_source: dict[str, list[tuple[str, str, str, str]]] = {}
        for item in items:
            by_source.setdefault(item[3], []).append(item)
        items = [i for group in by_source.values() for i in group[:limit]]
    return items


def category_section(limit: int | None) -> list[str]:
    """Markdown lines: category accuracy and per-class F1 on held-out news, in two text shapes, with baselines."""
    items = _category_eval(limit)
    gold = [label for _, _, label, _ in items]
    majority = Counter(gold).most_common(1)[0][0] if gold else "world"
    shapes = {
        "title + lead (article_text)": [article_text(t, None, b) for t, b, _, _ in items],
        "title + first sentence (like title + description)": [
            article_text(t, weak.first_sentence(b)) for t, b, _, _ in items
        ],
    }
    out = [
        "## Category (English)",
        "",
        "Model: `category_en`, softmax regression over the shared int8 MiniLM embedding. Training: BBC, "
        "NewsArticles by URL section, Reuters-21578 (business, capped) and keyword-labelled NewsArticles for "
        "science / health / technology (`training/weak.py`). Held out: "
        f"{EVAL_PERCENT['bbc']}% of BBC, {EVAL_PERCENT['url_news']}% of URL-labelled NewsArticles, "
        f"{EVAL_PERCENT['reuters']}% of Reuters by crc32(title). Baseline: the majority class. The coarse rows fold "
        "the eight classes into AG-News-style world (+politics) / business / sci-tech (technology, science, "
        "health) / sports, keeping entertainment apart.",
        "",
        "| data set | text | model | n | accuracy | macro-F1 |",
        "|---|---|---|---|---|---|",
    ]
    details: list[str] = []
    for shape, texts in shapes.items():
        pred = [r.category for r in classify("en", texts, minilm_encoder().encode(texts))] if texts else []
        for source in ("BBC", "NewsArticles by URL section", "Reuters-21578", "all"):
            idx = [i for i, item in enumerate(items) if source in ("all", item[3])]
            g, p = [gold[i] for i in idx], [pred[i] for i in idx]
            acc, f1 = accuracy(g, p), macro_f1(g, p, CATEGORY_LABELS)
            out.append(f"| {source} | {shape} | category_en | {len(g)} | {acc:.3f} | {f1:.3f} |")
        base = [majority] * len(gold)
        out.append(
            f"| all | {shape} | majority ({majority}) | {len(gold)} | {accuracy(gold, base):.3f} | "
            f"{macro_f1(gold, base, CATEGORY_LABELS):.3f} |"
        )
        coarse_gold, coarse_pred = [COARSE[x] for x in gold], [COARSE[x] for x in pred]
        coarse_labels = sorted(set(COARSE.values()))
        acc, f1 = accuracy(coarse_gold, coarse_pred), macro_f1(coarse_gold, coarse_pred, coarse_labels)
        out.append(f"| all, coarse 4+1 classes | {shape} | category_en | {len(gold)} | {acc:.3f} | {f1:.3f} |")
        details += ["", f"Per class, all held-out items, {shape}:", ""]
        details += _class_table([("category_en", gold, pred)], CATEGORY_LABELS)
    return out + details


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    print("\n".join(sentiment_section(args.limit) + [""] + category_section(args.limit)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
