"""`make eval`: score each local task on labelled data its model never saw, and write docs/EVALUATION.md.

python -m training.evaluate [--out docs/EVALUATION.md] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from common.schemas import RawArticle
from training import data

__all__ = ["accuracy", "macro_f1", "main", "per_class", "per_class_table"]

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT_ARTICLES = 200


def per_class(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, tuple[float, float, float, int]]:
    out = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if p == label and g != label)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = (precision, recall, f1, tp + fn)
    return out


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(1 for g, p in zip(gold, pred, strict=True) if g == p) / max(1, len(gold))


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    present = [label for label in labels if label in set(gold)]
    table = per_class(gold, pred, present)
    return float(np.mean([table[label][2] for label in present])) if present else 0.0


def per_class_table(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Markdown rows: precision, recall, F1 and support of each class."""
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, (p, r, f, n) in per_class(gold, pred, labels).items():
        lines.append(f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {n} |")
    return lines


def _trimmed(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _articles(n: int) -> list[RawArticle]:
    items = list(data.url_labelled_news())[:n]
    return [
        RawArticle(
            url=f"https://eval.example/{i}",
            title=x.title,
            content=x.body,
            published_at=datetime(2017, 2, 1, tzinfo=UTC),
            source=x.source,
        )
        for i, x in enumerate(items)
    ]


async def _throughput(n: int) -> tuple[float, float, int]:
    from inference.engine import Engine
    from inference.settings import EngineSettings

    articles = _articles(n)
    engine = Engine(EngineSettings(), registry=CollectorRegistry())
    await engine.start()
    await engine.analyze_batch(articles[:8])
    started = time.perf_counter()
    results = await engine.analyze_batch(articles)
    elapsed = time.perf_counter() - started
    await engine.aclose()
    return len(results) / elapsed, float(np.median([r.latency_ms for r in results])), engine.pool.processes


def determinism_section(n: int) -> list[str]:
    """The same article twice (in other batches, in another order) must get the same analysis."""
    from inference.core import Core, CoreSettings, item_of

    core = Core(CoreSettings())
    items = [item_of(a) for a in _articles(n)]
    first = [a.model_dump() for a in core.analyze(items)]
    second = [a.model_dump() for a in reversed(core.analyze(list(reversed(items))))]
    singles = [a.model_dump() for item in items[:20] for a in core.analyze([item])]
    same = sum(1 for a, b in zip(first, second, strict=True) if a == b)
    same_single = sum(1 for a, b in zip(first[:20], singles, strict=True) if a == b)
    return [
        "## Determinism",
        "",
        f"The same {n} real articles analysed twice, the second time in reverse order (so in other batches): "
        f"**{same} of {n}** analyses identical field by field; the first 20 analysed one at a time: "
        f"**{same_single} of 20** identical to their batched analysis.",
        "",
    ]


def _stories_section() -> list[str]:
    from training import eval_stories

    result = eval_stories.evaluate()
    config = result["config"]
    return [
        "## Story clustering",
        "",
        "578 real articles of the replay corpus (NewsArticles, 27 Feb - 9 Mar 2017, nine outlets) labelled into "
        "stories by reading (who labelled them and how: `training/stories/README_clusters.md`). The thresholds were "
        "chosen on the dev split (27 Feb - 1 Mar); scored here on the eval split (2 - 9 Mar), replayed in "
        "publication order through `stream_worker/stories/cluster.py` with the engine's embeddings and entities. "
        f"Rule: cosine to the story's centroid >= {config['join_similarity']}, or >= {config['entity_similarity']} "
        f"with {config['min_shared_entities']} shared canonical entity; a story is open within "
        f"{config['idle_hours']} h. B-cubed (`python -m training.eval_stories`):",
        "",
        *result["markdown"].splitlines(),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "EVALUATION.md")
    parser.add_argument("--limit", type=int, default=None, help="cap each data set (quick runs)")
    args = parser.parse_args(argv)
    data.fetch()
    from training import eval_dedup, eval_en, eval_entities, eval_keywords, eval_korean

    started = time.perf_counter()
    sections = [
        eval_en.sentiment_section(args.limit),
        eval_korean.korean_section(args.limit),
        eval_en.category_section(args.limit),
        eval_entities.entities_section(args.limit),
        eval_keywords.keywords_section(args.limit),
        eval_keywords.summary_section(args.limit),
        eval_dedup.markdown(eval_dedup.evaluate()),
        _stories_section(),
        determinism_section(min(200, args.limit or 200)),
    ]
    rate, median, processes = asyncio.run(_throughput(THROUGHPUT_ARTICLES))
    load = os.getloadavg()[0]
    header = [
        "# Evaluation of the local models",
        "",
        f"Written by `make eval` (`python -m training.evaluate`) on {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.machine()}, Python {platform.python_version()}; {time.perf_counter() - started:.0f} s. "
        "Every figure comes from data the scored model was not trained or tuned on; each section says which and "
        "where it comes from. The data are read from the packages they ship in (see DESIGN.md), downloaded to "
        "`~/.cache/news-suite/data` (`NEWS_SUITE_DATA`), never committed. Training: `make train` "
        "(`training/train.py`); each head's recipe is in `inference/artifacts/<head>.json`.",
        "",
        f"Rough throughput of the standard tier, whole engine ({processes} processes), {THROUGHPUT_ARTICLES} real "
        f"articles (title + full text) in one batch on this {os.cpu_count()}-core machine, 1-minute load average "
        f"{load:.1f} while it ran (a load "
        "above the core count means other work shared the CPUs, so the figure is a lower bound): "
        f"**{rate:.0f} articles/s**, median per-article latency {median:.0f} ms inside a batch "
        "(the proper benchmark is `make bench`).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Each section ends with one blank line, whatever its module left at its end.
    body = [line for section in sections for line in [*_trimmed(section), ""]]
    args.out.write_text("\n".join(header + body))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
