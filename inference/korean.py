"""Korean analysis: Kiwi tokens shared by keywords, entities and sentiment (one analyser per process).

Korean is a first-class language here, not a fallback: the text is tokenised once (`_analyse`, cached per
text) and the three tasks read the same tokens.

- `sentiment`: news valence. A hand-written news lexicon (`resources/ko_news_lexicon.tsv`: event words,
  good/bad quantities with up/down direction, negation) decides when it fires; otherwise the NSMC review
  polarity model (`artifacts/sentiment_ko_nb`, NB-LR over Kiwi morphemes + character 1-4-grams) gives the sign
  of the score, and the label only when it is confident; else neutral. Reviews are not news: a factual
  headline with no good or bad news in it should be neutral, and the review model alone calls such headlines
  polar at random. Text in an informal, evaluative register (`opinion_cues(text) >= 2`: a review, a comment)
  is the review model's own domain and is labelled by it (`combine`).
- `entities`: no Korean NER model ships, so a gazetteer (`resources/ko_gazetteer.tsv`, English canonical
  names where known so ids are shared with English text) plus rules over Kiwi proper nouns (ORG/LOC suffixes,
  a person's title after the name).
- `keywords`: Kiwi nouns and noun compounds, by frequency then first position.
"""

from __future__ import annotations

import json
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from common.schemas import Entity, Sentiment
from inference.canonical import entity_id
from inference.heads import ARTIFACTS

__all__ = [
    "BUCKETS",
    "FEATURE_VERSION",
    "Gazetteer",
    "Lexicon",
    "build_gazetteer",
    "build_lexicon",
    "combine",
    "opinion_cues",
    "SENTIMENT_ARTIFACT",
    "Tok",
    "entities",
    "gazetteer_entries",
    "keywords",
    "kiwi",
    "lexicon_entries",
    "lexicon_score",
    "load",
    "review_features",
    "review_score",
    "sentiment",
]

BUCKETS = 1 << 20
FEATURE_VERSION = 2  # 2: character n-grams hashed in numpy (1 used crc32 per n-gram)
SENTIMENT_ARTIFACT = "sentiment_ko_nb"
RESOURCES = Path(__file__).parent / "resources"
# The review model's probability must be this far from 0.5 (|2p - 1| >= 0.6, p >= 0.8 or <= 0.2) to label a text
# the lexicon does not fire on: set by reasoning (news headlines are mostly not reviews), not tuned on a check set.
REVIEW_STRONG = 0.6
# The lexicon fires when its summed weight reaches this magnitude (one weak word, weight 0.3-0.5, does not).
LEXICON_FIRES = 0.75
# Opinion text: the review model labels it, with a narrow neutral band (NSMC has no neutral class).
OPINION_BAND = 0.1
_INFORMAL = re.compile(r"[ㄱ-ㅎㅏ-ㅣ]|[!?~♥♡^]|\.\.|;;")
_PLAIN_ENDINGS = frozenset({"다", "어", "아"})  # headline "-어/-아" endings: "늘어", "지켜"
_PERSONAL = frozenset({"나", "내", "저", "제", "너", "니", "우리"})
_INTENSIFIERS = frozenset(
    {"정말", "진짜", "너무", "완전", "참", "꼭", "그냥", "좀", "왜", "넘", "별로", "완전히", "제일"}
)
_NEGATION = re.compile(r"^.{0,6}?(없|않|못|아니|안 돼|안돼)")


@lru_cache(maxsize=1)
def kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi()


class Tok(NamedTuple):
    """One Kiwi token as plain data (Kiwi's own token objects are slow to read attribute by attribute)."""

    form: str
    tag: str
    start: int
    len: int


@lru_cache(maxsize=512)
def _analyse(text: str) -> tuple[Tok, ...]:
    """Kiwi tokens of one text, computed once and shared by sentiment, entities and keywords."""
    return tuple(Tok(t.form, t.tag, t.start, t.len) for t in kiwi().tokenize(text))


# --- review polarity model -----------------------------------------------------------------------------------


_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: top bits of h * golden-ratio constant
_BASE = np.uint64(0x100000001B3)
_SHIFT = np.uint64(64 - BUCKETS.bit_length() + 1)


def _char_buckets(text: str, n_max: int = 4) -> npt.NDArray[np.int64]:
    """Buckets of the character 1..n_max-grams of `heads.char_ngrams`' normalised, space-padded text, by a
    polynomial rolling hash in numpy (uint64 arithmetic wraps, so it is the same on every machine)."""
    norm = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    cps = np.frombuffer(f" {norm} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    h = np.zeros(len(cps), dtype=np.uint64)
    for n in range(1, n_max + 1):
        if len(cps) < n:
            break
        h = h[: len(cps) - n + 1] * _BASE + cps[n - 1 :]
        parts.append(((h + np.uint64(n)) * _MULT) >> _SHIFT)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def review_features(text: str, tokens: Sequence[Any]) -> npt.NDArray[np.int64]:
    """Unique hashed buckets of a text: Kiwi morphemes (form/tag), adjacent morpheme pairs, char 1-4-grams."""
    morphs = [f"{t.form}/{t.tag}" for t in tokens]
    grams = [f"m {m}" for m in morphs]
    grams += [f"b {a} {b}" for a, b in zip(morphs, morphs[1:], strict=False)]
    idx = np.fromiter(map(_bucket, grams), dtype=np.int64, count=len(grams))
    return np.unique(np.concatenate([idx, _char_buckets(text)]))


@lru_cache(maxsize=1 << 17)
def _bucket(gram: str) -> int:
    # Morphemes repeat across articles: a cache hit is cheaper than encoding and hashing again.
    return zlib.crc32(gram.encode("utf-8")) % BUCKETS


@lru_cache(maxsize=1)
def _review_model() -> tuple[npt.NDArray[np.float32], float]:
    card = json.loads((ARTIFACTS / f"{SENTIMENT_ARTIFACT}.json").read_text())
    with np.load(ARTIFACTS / f"{SENTIMENT_ARTIFACT}.npz") as data:
        return data["weights"].astype(np.float32), float(card["bias"])


def review_score(text: str) -> float:
    """Review polarity in -1..1 (2p - 1) from the NSMC model."""
    weights, bias = _review_model()
    idx = review_features(text, _analyse(text))
    z = float(weights[idx].sum()) / max(1.0, float(np.sqrt(len(idx)))) + bias
    return 2.0 / (1.0 + float(np.exp(-z))) - 1.0


# --- news lexicon --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    term: str
    kind: str  # event | good | bad | up | down
    weight: float


Lexicon = tuple[re.Pattern[str], dict[str, _Term]]


def lexicon_entries() -> dict[str, _Term]:
    """term -> entry from `resources/ko_news_lexicon.tsv`."""
    terms: dict[str, _Term] = {}
    for line in (RESOURCES / "ko_news_lexicon.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            term, kind, weight = line.split("\t")
            terms[term] = _Term(term, kind, float(weight))
    return terms


def build_lexicon(terms: dict[str, _Term]) -> Lexicon:
    # One alternation, longest first: the regex engine then takes "구조조정" before "구조", without overlaps.
    return re.compile("|".join(re.escape(t) for t in sorted(terms, key=lambda t: (-len(t), t))) or "(?!)"), terms


@lru_cache(maxsize=1)
def _lexicon() -> Lexicon:
    return build_lexicon(lexicon_entries())


def lexicon_score(text: str, lexicon: Lexicon | None = None) -> tuple[float, list[tuple[str, float]]]:
    """Summed news valence of `text` and the contributing (term, value) pairs (for explaining a label);
    `lexicon` overrides the shipped one (evaluation ablations)."""
    pattern, terms = lexicon or _lexicon()
    total = 0.0
    hits: list[tuple[str, float]] = []
    # The last good/bad quantity: end offset, sign, index in `hits` (or -1) and its own value.
    last_thing: tuple[int, float, int, float] | None = None
    starts = {t.start for t in _analyse(text)}
    for m in pattern.finditer(text):
        if m.start() not in starts:
            continue  # inside a word: "상회" in "정상회의" is no news
        term = terms[m.group(0)]
        value = term.weight
        if term.kind in ("good", "bad"):
            last_thing = (m.end(), 1.0 if term.kind == "good" else -1.0, len(hits) if value else -1, value)
        elif term.kind in ("up", "down") and last_thing is not None and m.start() - last_thing[0] <= 20:
            # "적자 감소" is good news, "물가 상승" bad: the direction takes its sign from the quantity before it.
            value = (1.0 if term.kind == "up" else -1.0) * last_thing[1]
            if last_thing[2] >= 0:  # the direction replaces the quantity's own valence ("적자 감소" is good)
                total -= last_thing[3]
                hits[last_thing[2]] = (hits[last_thing[2]][0], 0.0)
            last_thing = None
        if value and term.kind in ("event", "bad", "good") and _NEGATION.match(text[m.end() : m.end() + 10]):
            value = -0.5 * value  # "인명 피해 없어", "합의하지 못해"
        if value:
            total += value
            hits.append((term.term, value))
    return total, hits


def opinion_cues(text: str) -> int:
    """How many kinds of informal, first-person, evaluative cues a text has (reviews, comments, quotes):
    jamo laughter/crying, !/?/~/.., sentence endings other than the plain -다, interjections, first/second
    person pronouns, intensifying adverbs. News headlines have at most one (written from general knowledge of
    Korean registers; checked for false alarms on the dev half of the check set and NSMC dev rows)."""
    tokens = _analyse(text)
    return (
        bool(_INFORMAL.search(text))
        + any(t.tag == "EF" and t.form not in _PLAIN_ENDINGS for t in tokens)
        + any(t.tag == "IC" for t in tokens)
        + any(t.tag == "NP" and t.form in _PERSONAL for t in tokens)
        + any(t.tag == "MAG" and t.form in _INTENSIFIERS for t in tokens)
    )


def combine(lex: float, review: float, opinion: bool = False) -> tuple[Sentiment, float, float]:
    """The documented decision. Opinion text (`opinion_cues >= 2`: a review, a comment) is the review model's
    own domain: its sign is the label (neutral only within OPINION_BAND). News: the lexicon decides when it
    fires (|sum| >= LEXICON_FIRES); else the review model's label when strong (|2p - 1| >= REVIEW_STRONG); else
    neutral with the review model's weak sign."""
    if opinion:
        label: Sentiment = "neutral" if abs(review) < OPINION_BAND else "positive" if review > 0 else "negative"
        return label, review, abs(review) if label != "neutral" else 1.0 - abs(review)
    if abs(lex) >= LEXICON_FIRES:
        score = float(np.tanh(lex / 1.5))
        # The review model only nudges the score's size; the lexicon owns its sign.
        score = float(np.clip(score + 0.15 * review, -1.0, 1.0)) if score * review > 0 else score
        return ("positive" if lex > 0 else "negative"), score, min(1.0, 0.5 + abs(score) / 2)
    if abs(review) >= REVIEW_STRONG:
        return ("positive" if review > 0 else "negative"), review, abs(review)
    # Neutral, but the score keeps the review model's weak sign (polarity-only readers use it).
    return "neutral", review * 0.5, 1.0 - abs(review)


def sentiment(texts: Sequence[str]) -> list[tuple[Sentiment, float, float]]:
    """(label, score -1..1, confidence 0..1) per text: `combine(lexicon_score(text), review_score(text))`."""
    return [combine(lexicon_score(t)[0], review_score(t), opinion_cues(t) >= 2) for t in texts]


# --- entities ------------------------------------------------------------------------------------------------

_ORG_SUFFIXES = (
    "위원회", "대학교", "대학원", "연구원", "연구소", "재단", "협회", "협의회", "공사", "공단", "은행", "증권",
    "보험", "그룹", "전자", "화학", "건설", "중공업", "항공", "통신", "제약", "바이오", "홀딩스", "엔터테인먼트",
    "지주", "병원", "대학", "법원", "검찰청", "경찰서", "당", "부", "청", "처", "원", "회", "사", "군단",
)  # fmt: skip
_LOC_SUFFIXES = (
    "특별시",
    "광역시",
    "특별자치시",
    "특별자치도",
    "시",
    "도",
    "군",
    "구",
    "읍",
    "면",
    "동",
    "리",
    "섬",
    "산",
    "강",
    "항",
)
_PERSON_TITLES = frozenset(
    "대통령 전대통령 총리 국무총리 장관 차관 의원 대표 위원장 원내대표 당대표 후보 후보자 시장 도지사 지사 구청장 "
    "군수 청장 총장 교수 박사 회장 부회장 사장 대표이사 의장 이사장 감독 선수 코치 배우 가수 작가 씨 판사 검사 "
    "변호사 기자 총재 주석 국가주석 총통 수석 비서실장 실장 여사 왕 국왕 씨는 군 양".split()
)
_SURNAMES = frozenset(
    "김이박최정강조윤장임한오서신권황안송류유홍전고문양손배백허남심노하곽성차주우구민진나엄채원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목형피두감호제"
)


# (surface lengths, longest first; surface -> (type, canonical name, ambiguous)).
Gazetteer = tuple[tuple[int, ...], dict[str, tuple[str, str, bool]]]


def gazetteer_entries() -> dict[str, tuple[str, str, bool]]:
    """surface -> (type, canonical name, ambiguous) from `resources/ko_gazetteer.tsv`."""
    entries: dict[str, tuple[str, str, bool]] = {}
    for line in (RESOURCES / "ko_gazetteer.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split("\t")
            entries[parts[0]] = (parts[1], parts[2], len(parts) > 3 and "nnp" in parts[3])
    return entries


def build_gazetteer(entries: dict[str, tuple[str, str, bool]]) -> Gazetteer:
    """Lookup by prefix at each word start, longest surface first (so "한국은행" wins over "한국")."""
    return tuple(sorted({len(s) for s in entries}, reverse=True)), entries


_WORD_START = re.compile(r"(?<![\w])\w")


def _gazetteer_matches(text: str, gazetteer: Gazetteer) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, surface) of gazetteer names beginning at a word start, longest first."""
    lengths, entries = gazetteer
    out: list[tuple[int, int, str]] = []
    last_end = 0
    for w in _WORD_START.finditer(text):
        start = w.start()
        if start < last_end:
            continue
        for n in lengths:
            if text[start : start + n] in entries:
                out.append((start, start + n, text[start : start + n]))
                last_end = start + n
                break
    return out


@lru_cache(maxsize=1)
def _gazetteer() -> Gazetteer:
    return build_gazetteer(gazetteer_entries())


_NOUN_TAGS = frozenset({"NNP", "NNG", "SL", "XSN"})
# Common-noun compounds that name an organisation by their last part ("국토교통부", "한국소비자원").
_ORG_COMPOUND_SUFFIXES = (
    "위원회", "협회", "연구원", "연구소", "공사", "공단", "은행", "재단", "대학교", "그룹", "조합", "연합회",
    "부", "청", "처",
)  # fmt: skip
_NOT_ORG = frozenset({"정부", "내부", "외부", "일부", "전부", "본부", "간부", "대부", "세부", "지청", "요청", "신청"})


_ORG_LAST = frozenset(x[-1] for x in _ORG_COMPOUND_SUFFIXES)


def _org_compound(surface: str) -> bool:
    if surface[-1] not in _ORG_LAST or surface in _NOT_ORG or not all("가" <= c <= "힣" for c in surface):
        return False
    return any(surface.endswith(x) and len(surface) >= len(x) + 2 for x in _ORG_COMPOUND_SUFFIXES)


@lru_cache(maxsize=4096)
def _entity_id(etype: str, name: str) -> str:
    return entity_id(etype, name)


def _span_tags(tokens: Sequence[Any], start: int, end: int) -> set[str]:
    return {t.tag for t in tokens if t.start < end and t.start + t.len > start}


def _rule_type(name: str, next_form: str | None, next_tag: str | None) -> str | None:
    if next_form in _PERSON_TITLES and 2 <= len(name) <= 4 and all("가" <= c <= "힣" for c in name):
        return "PERSON"
    for suffix in _ORG_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return "ORG"
    for suffix in _LOC_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return "LOC"
    hangul = all("가" <= c <= "힣" for c in name)
    if len(name) == 3 and name[0] in _SURNAMES and hangul and (next_tag or "S").startswith(("J", "S")):
        # A three-syllable proper noun starting with a common surname and followed by a particle or punctuation
        # ("김민재, ...", "한동훈이 ...") is most often a person.
        return "PERSON"
    return None


def entities(text: str, gazetteer_override: Gazetteer | None = None) -> list[Entity]:
    """Typed PERSON / ORG / LOC (MISC for other proper nouns) with canonical id and display name; first
    mention order, one entity per id. `gazetteer_override` is for evaluation (rules with a reduced list)."""
    tokens = _analyse(text)
    gaz = gazetteer_override or _gazetteer()
    gazetteer = gaz[1]
    found: list[tuple[int, Entity]] = []
    covered = bytearray(len(text) + 1)  # 1 where a gazetteer name was found
    by_start = {t.start: t for t in tokens}
    for start, end, surface in _gazetteer_matches(text, gaz):
        etype, name, ambiguous = gazetteer[surface]
        if ambiguous and not _span_tags(tokens, start, end) & {"NNP", "SL"}:
            continue  # "경기" the match, "조국" the homeland: only when Kiwi reads it as a proper noun
        nxt = by_start.get(end)
        if nxt is not None and nxt.tag == "NNG" and len(nxt.form) >= 2:
            continue  # part of a longer name: "부산" in "부산국제영화제"
        found.append((start, Entity(text=surface, type=etype, id=_entity_id(etype, name), name=name)))
        covered[start:end] = b"\x01" * (end - start)
    # Names the gazetteer does not know: runs of adjacent nouns inside one word (Kiwi splits "외교부" into
    # 외교/NNG 부/XSN and "중앙선거관리위원회" into four nouns). A run with a proper noun in it is a name (typed
    # by rules, else MISC); a run of common nouns only when it ends in an organisation suffix.
    i = 0
    while i < len(tokens):
        if tokens[i].tag not in _NOUN_TAGS or tokens[i].tag == "XSN":
            i += 1
            continue
        start, end, j = tokens[i].start, tokens[i].start + tokens[i].len, i + 1
        while j < len(tokens) and tokens[j].tag in _NOUN_TAGS and tokens[j].start == end:
            end = tokens[j].start + tokens[j].len
            j += 1
        tags = {t.tag for t in tokens[i:j]}
        surface = text[start:end]
        i = j
        if len(surface) < 2 or any(covered[start:end]):
            continue
        next_form = tokens[j].form if j < len(tokens) else None
        next_tag = tokens[j].tag if j < len(tokens) else None
        if "NNP" in tags:
            etype = _rule_type(surface, next_form, next_tag) or "MISC"
        elif _org_compound(surface):
            etype = "ORG"
        else:
            continue
        found.append((start, Entity(text=surface, type=etype, id=_entity_id(etype, surface), name=surface)))
    found.sort(key=lambda x: x[0])
    seen: set[str] = set()
    out: list[Entity] = []
    for _, ent in found:
        if ent.id not in seen:
            seen.add(ent.id or "")
            out.append(ent)
    return out


# --- keywords ------------------------------------------------------------------------------------------------

_KO_STOP = frozenset(
    {"기자", "뉴스", "오늘", "이번", "관련", "때문", "내일", "어제", "지난", "다음", "기사", "사진", "제공"}
)


def keywords(text: str, limit: int = 8) -> list[str]:
    """Kiwi nouns, adjacent nouns joined into one compound ("영업이익"); by frequency, then first position;
    a keyword inside a longer chosen one is dropped (no overlapping keywords)."""
    tokens = _analyse(text)
    compounds: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i].tag in ("NNP", "NNG", "SL"):
            parts, end, j = [tokens[i].form], tokens[i].start + tokens[i].len, i + 1
            while j < len(tokens) and tokens[j].tag in ("NNP", "NNG", "SL", "XSN") and tokens[j].start == end:
                parts.append(tokens[j].form)
                end = tokens[j].start + tokens[j].len
                j += 1
            word = "".join(parts)
            if len(word) > 1 and word not in _KO_STOP and not word.isdigit():
                compounds.append(word)
            i = j
        else:
            i += 1
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for pos, word in enumerate(compounds):
        counts[word] = counts.get(word, 0) + 1
        first.setdefault(word, pos)
    ranked = sorted(counts, key=lambda w: (-counts[w], first[w]))
    out: list[str] = []
    for word in ranked:
        if any(word in k or k in word for k in out):
            continue
        out.append(word)
        if len(out) == limit:
            break
    return out


def load() -> None:
    """Load Kiwi, the review model, the lexicon and the gazetteer now (cached, idempotent)."""
    kiwi()
    _review_model()
    _lexicon()
    _gazetteer()
    _analyse("삼성전자 주가 상승")
