"""Near-duplicate articles (copies, syndicated wire stories, re-posts with a changed headline) by MinHash/LSH.

Each article is reduced to a set of shingles of its normalised text (title + description + lead): word 3-grams
for space-delimited languages, character 3-grams (spaces removed, so that spacing differences between outlets do
not matter) for Korean, Chinese, Japanese and Thai. (Character 5-grams for English were tried: best on the dev
pairs, but unrelated reports on one topic share so many fragments of common words that their Jaccard rises
towards the duplicates', and a signature cost 20 times more CPU; see README_dedup.md.) A MinHash of 128 permutations
with a fixed seed makes the signature a pure function of the text, identical in every process and after every
restart, so the stream stage can store the bytes and rebuild its index from them.

`NearDuplicates` is the working set: `check_and_add` links an article to the FIRST-seen article it duplicates,
transitively (a copy of a copy links to the original, because every entry records its original). The LSH index
only proposes candidates; each is confirmed by the rule below, so a larger LSH candidate set costs time, never
precision.

The rule (training/stories/README_dedup.md; chosen on the development split of training/stories/dedup_pairs.tsv,
never on the evaluation split: `python -m training.eval_dedup --choose`):

1. Text: the Jaccard of the two shingle sets reaches `THRESHOLD`, or the share of the smaller set found in the
   larger (a cut copy, a headline flash and its full item) reaches `CONTAINMENT`. Both are computed from a
   bottom-k sketch (the `MAX_SHINGLES` smallest shingle hashes; exact for texts with fewer shingles), not from
   the 128-value MinHash estimate, whose standard error is about 0.044 at 0.5.
2. Figures: copies of a report keep its numbers (a corrected or fuller re-send adds a few), templated items (a
   dividend notice of another fund, the Fed's operation on another day) REPLACE them. Above `NUMBER_CONFLICT`
   replaced/(replaced + shared) the pair is not a duplicate.
3. Names: a copy is about the same companies and people. The pair is not a duplicate when both texts carry stock
   tickers (`<XON>`, `(NYSE: XOM)`, `$XOM`) and none is shared, or when each headline names someone the other
   article never mentions (a SUBSTITUTED name: Franklin *Puerto Rico* vs *Insured* Tax-Free fund, Raytheon vs
   General Electric). A headline word is a name when the article's own body writes it capitalised inside a
   sentence; a text with no lower-case letter at all (a wire flash) counts all its headline words. A name only
   ADDED on one side (a fuller headline) is no conflict. Scripts without case (Korean) get the ticker and figure
   tests only.

Limits, stated: only articles in the working set are found. Once an article is `remove`d (aged out), a later copy
of it is not linked to it (unless another copy of it is still in the set, which links to the same original).
Signatures of earlier formats (1: bare MinHash, 2: word 3-gram shingles) are still read, so a stored working set
loads; they are compared without the name test (format 1 also without figures, by the MinHash estimate).
"""

from __future__ import annotations

import re
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

__all__ = [
    "CHAR_SHINGLE_LANGUAGES",
    "CJK_SHINGLE_SIZE",
    "CONTAINMENT",
    "ENTITY_VETO",
    "FORMAT",
    "LEAD_CHARS",
    "MAX_SHINGLES",
    "NUMBER_CONFLICT",
    "NUM_PERM",
    "SEED",
    "SHINGLE_SIZE",
    "THRESHOLD",
    "NearDuplicates",
    "Signature",
    "article_text",
    "headline_names",
    "normalise",
    "shingles",
    "signature",
    "tickers",
]

NUM_PERM = 128
SEED = 20170101  # fixed: signatures must be equal across processes and restarts
SCHEME = "affine32"  # datasketch 2.0's 32-bit permutations: hash values fit in uint32
SHINGLE_SIZE = 3  # words, space-delimited scripts
CJK_SHINGLE_SIZE = 3  # characters, CJK/Thai
LEAD_CHARS = 1000  # how much of the body is the lead: enough to outweigh a replaced headline
# The rule, chosen together on the dev split (python -m training.eval_dedup --choose; README_dedup.md).
THRESHOLD = 0.32
CONTAINMENT: float | None = None
NUMBER_CONFLICT: float | None = 0.40
ENTITY_VETO = True
FORMAT = 3  # the Signature bytes format written now (1: bare MinHash, 2: word 3-grams; both still read)
# Bottom-k sketch size: the smallest MAX_SHINGLES shingle hashes are kept (a lead of LEAD_CHARS has a few hundred
# word 3-grams, so texts are almost always kept whole); it bounds an article's memory whatever the text's length.
MAX_SHINGLES = 1024
MAX_WORDS = 4096  # distinct words kept for the name test (a LEAD_CHARS text has a few hundred)
# LSH bands x rows, fixed rather than re-derived by datasketch so the index layout never changes under us. 64 bands
# of 2 rows find a pair at the threshold's Jaccard 0.32 with probability 1-(1-0.32^2)^64 = 0.999 (42 x 3, chosen for
# 0.40, found it with 0.75); unrelated articles (Jaccard near 0) are rarely proposed, and a candidate only costs one
# exact comparison. Recall is measured through the index, so what LSH misses is in the figures.
LSH_BANDS, LSH_ROWS = 64, 2
CHAR_SHINGLE_LANGUAGES = frozenset({"ko", "ja", "zh", "th", "lo", "km", "my"})

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Hangul, Hiragana/Katakana, CJK ideographs and Thai: text in these scripts is shingled by character whatever the
# language tag says (a missing or wrong tag must not turn a Korean article into one giant "word").
_CJK = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
# CRC-32 hashes each shingle to 32 bits (the affine32 scheme mixes the bits before permuting): stable across
# processes and platforms, unlike Python's salted hash(), and several times cheaper than datasketch's default SHA-1.
_HEAD_2 = struct.Struct("<BHH")
_HEAD_3 = struct.Struct("<BHHHHHH")  # format, shingle set size, kept, numbers, tickers, names, words
# A figure as written: digits with inner separators ("1,358,000", "6.5", "6-3/16", "2017-03-14") are one number.
_NUMBER = re.compile(r"\d+(?:[.,/:-]\d+)*", re.ASCII)
# Stock tickers as agencies write them: Reuters' <XON> / <MOB.N>, "(NYSE: XOM)", "$XOM".
_TICKER = re.compile(
    r"<([A-Z][A-Z0-9]{0,6}(?:\.[A-Z]{1,2})?)>"
    r"|\((?:NYSE|NASDAQ|Nasdaq|AMEX|LSE|TSX|ASX|HKEX|KRX|KOSDAQ|TSE)\s*:\s*([A-Z0-9]{1,8}(?:\.[A-Z]{1,2})?)\)"
    r"|(?<![\w$])\$([A-Z]{1,5})\b"
)
_SENTENCE = re.compile(r"(?<=[.!?:;\n])\s+")
# Headline words that are never a subject, for wire flashes (no lower case at all, so every word is a candidate).
_FLASH_STOP = frozenset(
    "a an and as at by for from in into is it of on or over the to up vs with says said say inc co corp ltd plc".split()
)
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME, hashfunc=zlib.crc32)  # permutations made once
_EMPTY = np.zeros(0, dtype=np.uint32)


def _hashes(items: Iterable[str]) -> np.ndarray:
    encoded = [s.encode("utf-8") for s in items]
    return np.unique(np.fromiter((zlib.crc32(e) for e in encoded), dtype=np.uint32, count=len(encoded)))


@dataclass(frozen=True)
class Signature:
    """One article's comparison data.

    - `hashvalues`: the MinHash (NUM_PERM uint32 values), for the LSH index only;
    - `shingle_hashes`: the bottom-k sketch of the shingle set (sorted, at most MAX_SHINGLES) and `shingle_count`,
      the set's true size: Jaccard and containment without the MinHash's sampling error;
    - `number_hashes`, `ticker_hashes`, `name_hashes` (headline names), `word_hashes` (every distinct word): the
      figure and name tests. Absent (None) for the formats that did not carry them.

    Bytes, little-endian: format 1 is the bare MinHash (4 * NUM_PERM bytes); format 2 the byte 2, two uint16 counts
    (shingles, numbers), the MinHash, the shingle and number hashes; format 3 the byte 3, six uint16 counts (shingle
    set size, shingles kept, numbers, tickers, names, words), the MinHash, then the five hash arrays in
    that order. Formats 1 and 2 are still read.
    """

    hashvalues: np.ndarray = field(repr=False)
    shingle_hashes: np.ndarray | None = field(default=None, repr=False)
    number_hashes: np.ndarray | None = field(default=None, repr=False)
    shingle_count: int = 0  # the shingle set's true size (0: len(shingle_hashes), formats 1 and 2)
    ticker_hashes: np.ndarray | None = field(default=None, repr=False)
    name_hashes: np.ndarray | None = field(default=None, repr=False)
    word_hashes: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.hashvalues.shape != (NUM_PERM,):
            raise ValueError(f"a signature has {NUM_PERM} hash values, not {self.hashvalues.shape}")
        if (self.shingle_hashes is None) != (self.number_hashes is None):
            raise ValueError("a signature carries both its shingle and its number hashes, or neither")
        names = (self.ticker_hashes, self.name_hashes, self.word_hashes)
        if any(h is None for h in names) != all(h is None for h in names):
            raise ValueError("a signature carries its ticker, name and word hashes together, or none")
        if self.word_hashes is not None and self.shingle_hashes is None:
            raise ValueError("a signature with name hashes carries its shingles too")

    @property
    def format(self) -> int:
        return 1 if self.shingle_hashes is None else 2 if self.word_hashes is None else FORMAT

    @property
    def size(self) -> int:
        """The shingle set's true size (formats 2 and 3)."""
        return self.shingle_count or (0 if self.shingle_hashes is None else len(self.shingle_hashes))

    def to_bytes(self) -> bytes:
        values = self.hashvalues.astype("<u4", copy=False).tobytes()
        if self.shingle_hashes is None or self.number_hashes is None:
            return values
        if self.ticker_hashes is None or self.name_hashes is None or self.word_hashes is None:
            head = _HEAD_2.pack(2, len(self.shingle_hashes), len(self.number_hashes))
            arrays: tuple[np.ndarray, ...] = (self.shingle_hashes, self.number_hashes)
        else:
            arrays = (self.shingle_hashes, self.number_hashes, self.ticker_hashes, self.name_hashes, self.word_hashes)
            head = _HEAD_3.pack(FORMAT, min(self.size, 0xFFFF), *(len(a) for a in arrays))
        return b"".join((head, values, *(a.astype("<u4").tobytes() for a in arrays)))

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        if len(data) == 4 * NUM_PERM:  # format 1: the bare MinHash
            return cls(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        if not data or data[0] not in (2, FORMAT):
            raise ValueError(
                f"a signature is {4 * NUM_PERM} bytes (format 1) or starts with format byte 2 or {FORMAT}; "
                f"got {len(data)} bytes"
            )
        head = _HEAD_2 if data[0] == 2 else _HEAD_3
        if len(data) < head.size:
            raise ValueError(f"a format {data[0]} signature is at least {head.size} bytes, not {len(data)}")
        _, *counts = head.unpack_from(data)
        count = 0
        if data[0] == FORMAT:
            count, *counts = counts
        expected = head.size + 4 * (NUM_PERM + sum(counts))
        if len(data) != expected:
            raise ValueError(f"a format {data[0]} signature with these counts is {expected} bytes, not {len(data)}")
        flat = np.frombuffer(data, dtype="<u4", offset=head.size).astype(np.uint32)
        bounds = np.cumsum([NUM_PERM, *counts])
        parts = np.split(flat, bounds[:-1])
        if data[0] == 2:
            return cls(parts[0], parts[1], parts[2])
        return cls(parts[0], parts[1], parts[2], count, parts[3], parts[4], parts[5])

    def minhash(self) -> LeanMinHash:
        return LeanMinHash(seed=SEED, hashvalues=self.hashvalues, scheme=SCHEME)

    def _overlap(self, other: Signature) -> float | None:
        """Jaccard from the two bottom-k sketches: the k smallest hashes of the union are the union's own bottom-k,
        and the share of them both sets hold estimates the Jaccard (exact when both sets are whole)."""
        if self.shingle_hashes is None or other.shingle_hashes is None:
            return None
        union = np.union1d(self.shingle_hashes, other.shingle_hashes)[:MAX_SHINGLES]
        if not len(union):
            return 0.0
        both = np.intersect1d(self.shingle_hashes, other.shingle_hashes, assume_unique=True)
        return int(np.count_nonzero(both <= union[-1])) / len(union)

    def jaccard(self, other: Signature) -> float:
        """Jaccard similarity of the two shingle sets: from the sketches when both carry them, else estimated from
        the MinHash (share of equal values)."""
        overlap = self._overlap(other)
        if overlap is not None:
            return overlap
        return float(np.count_nonzero(self.hashvalues == other.hashvalues)) / NUM_PERM

    def containment(self, other: Signature) -> float | None:
        """Share of the smaller shingle set found in the larger (a copy with a paragraph added or cut); None when
        either signature is format 1. |A n B| = J (|A| + |B|) / (1 + J)."""
        jaccard = self._overlap(other)
        if jaccard is None:
            return None
        smaller = min(self.size, other.size)
        return min(1.0, jaccard * (self.size + other.size) / (1 + jaccard) / smaller) if smaller else 0.0

    def number_conflict(self, other: Signature) -> float | None:
        """How much the figures of the two texts disagree, in [0, 1]: the numbers REPLACED (min of the numbers only
        one side has, per side), over those plus the numbers both have. A copy keeps its figures (0; a number only
        added on one side is not a conflict); a templated item about another fund or day replaces them. None when
        either signature is format 1."""
        if self.number_hashes is None or other.number_hashes is None:
            return None
        agree = _common(self.number_hashes, other.number_hashes)
        replaced = min(len(self.number_hashes), len(other.number_hashes)) - agree
        return replaced / (replaced + agree) if replaced else 0.0

    def name_conflict(self, other: Signature) -> bool | None:
        """True when the two are about different companies or people: both carry tickers and share none, or each
        headline names someone the other article never mentions. None when either signature predates format 3."""
        if self.ticker_hashes is None or other.ticker_hashes is None:
            return None
        if (
            len(self.ticker_hashes)
            and len(other.ticker_hashes)
            and not _common(self.ticker_hashes, other.ticker_hashes)
        ):
            return True
        assert self.name_hashes is not None and other.name_hashes is not None  # noqa: S101 (set with the tickers)
        assert self.word_hashes is not None and other.word_hashes is not None  # noqa: S101
        mine_only = len(np.setdiff1d(self.name_hashes, other.word_hashes, assume_unique=True))
        theirs_only = len(np.setdiff1d(other.name_hashes, self.word_hashes, assume_unique=True))
        return bool(mine_only and theirs_only)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signature) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())


def _common(a: np.ndarray, b: np.ndarray) -> int:
    return len(np.intersect1d(a, b, assume_unique=True))


def article_text(title: str, description: str | None = None, content: str | None = None) -> str:
    """The text an article is compared by: title, description and the first LEAD_CHARS characters of the body."""
    lead = (content or "")[:LEAD_CHARS]
    return " ".join(part for part in (title, description or "", lead) if part)


def normalise(text: str) -> str:
    """NFKC, lower case, punctuation and whitespace collapsed to single spaces."""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def _by_cjk(text: str, language: str | None) -> bool:
    if language and language.split("-")[0].lower() in CHAR_SHINGLE_LANGUAGES:
        return True
    letters = len(text) - text.count(" ")  # `text` is normalised: single spaces only
    return len(_CJK.findall(text)) * 2 > letters


def shingles(text: str, language: str | None) -> set[str]:
    """Word SHINGLE_SIZE-grams, or character CJK_SHINGLE_SIZE-grams (spaces removed) for CJK/Thai text; a text
    shorter than one shingle is one shingle."""
    norm = normalise(text)
    if not norm:
        return set()
    if _by_cjk(norm, language):
        chars = norm.replace(" ", "")
        return {chars[i : i + CJK_SHINGLE_SIZE] for i in range(max(1, len(chars) - CJK_SHINGLE_SIZE + 1))}
    words = norm.split(" ")
    return {" ".join(words[i : i + SHINGLE_SIZE]) for i in range(max(1, len(words) - SHINGLE_SIZE + 1))}


def tickers(text: str) -> set[str]:
    """Stock tickers the text writes: Reuters' <XON>, "(NYSE: XOM)", "$XOM"."""
    return {next(g for g in match.groups() if g) for match in _TICKER.finditer(text)}


def headline_names(title: str, text: str) -> set[str]:
    """The headline's words that name someone (lower case): those the text writes capitalised inside a sentence
    (not as its first word); for a text with no lower-case letter (a wire flash), every headline word but a few
    function words and company suffixes."""
    words = [w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", title))]
    if not any(c.islower() for c in text):
        return {w for w in words if w not in _FLASH_STOP and not w.isdigit()}
    capitalised: set[str] = set()
    for sentence in _SENTENCE.split(unicodedata.normalize("NFKC", text)):
        capitalised.update(w.lower() for w in _WORD.findall(sentence)[1:] if w[0].isupper())
    return {w for w in words if w in capitalised and not w.isdigit()}


def signature(text: str, language: str | None, *, title: str | None = None) -> Signature:
    """The article's signature; `text` is usually `article_text(title, ...)` and `title` its headline (the name
    test needs to know which words are the headline's; without it, no headline names are recorded).

    Raises ValueError for a text with no letters or digits: it has nothing to compare and would match every other
    empty text.
    """
    found = shingles(text, language)
    if not found:
        raise ValueError("the text has no letters or digits to compare")
    encoded = [s.encode("utf-8") for s in sorted(found)]
    minhash = _TEMPLATE.copy()
    minhash.update_batch(encoded)
    shingle_hashes = np.unique(np.fromiter((zlib.crc32(e) for e in encoded), dtype=np.uint32, count=len(encoded)))
    plain = unicodedata.normalize("NFKC", text)
    body = plain.removeprefix(title) if title and plain.startswith(title) else plain
    return Signature(
        minhash.hashvalues.astype(np.uint32),
        shingle_hashes[:MAX_SHINGLES],
        _hashes(_NUMBER.findall(plain))[:MAX_SHINGLES],
        len(shingle_hashes),
        _hashes(tickers(plain))[:MAX_SHINGLES],
        _hashes(headline_names(title, body) if title else ())[:MAX_SHINGLES],
        _hashes({w.lower() for w in _WORD.findall(plain)})[:MAX_WORDS],
    )


@dataclass
class _Entry:
    signature: Signature
    original: str | None  # the first-seen article this one duplicates; None when it is an original itself


class NearDuplicates:
    """The working set of recent articles: which earlier article (if any) each new one duplicates.

    Deterministic: the same articles checked in the same order give the same answers in any process. The state is
    the ordered list of `entries()` (id, signature, original); `from_signatures(entries)` rebuilds it exactly.
    """

    def __init__(
        self,
        threshold: float = THRESHOLD,
        *,
        containment: float | None = CONTAINMENT,
        number_conflict: float | None = NUMBER_CONFLICT,
        entity_veto: bool = ENTITY_VETO,
    ) -> None:
        """`threshold`: the Jaccard a candidate must reach; `containment`: or the share of the smaller shingle set
        found in the larger (None: not used); `number_conflict`: a candidate whose figures disagree more than this
        (see `Signature.number_conflict`) is not a duplicate whatever its text similarity (None: no veto);
        `entity_veto`: nor one about other companies or people (`Signature.name_conflict`)."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        if containment is not None and not 0.0 < containment <= 1.0:
            raise ValueError(f"containment must be in (0, 1] or None, not {containment}")
        if number_conflict is not None and not 0.0 <= number_conflict < 1.0:
            raise ValueError(f"number_conflict must be in [0, 1) or None, not {number_conflict}")
        self.threshold = threshold
        self.containment = containment
        self.number_conflict = number_conflict
        self.entity_veto = entity_veto
        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=(LSH_BANDS, LSH_ROWS))
        self._entries: dict[str, _Entry] = {}  # insertion order is first-seen order
        self._order: dict[str, int] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._entries

    def duplicates(self, a: Signature, b: Signature) -> float | None:
        """The Jaccard of two signatures when the rule calls them duplicates, else None."""
        score = a.jaccard(b)
        if score < self.threshold:
            contained = a.containment(b) if self.containment is not None else None
            if contained is None or self.containment is None or contained < self.containment:
                return None
        if self.number_conflict is not None:
            conflict = a.number_conflict(b)
            if conflict is not None and conflict > self.number_conflict:
                return None
        if self.entity_veto and a.name_conflict(b):
            return None
        return score

    def matches(self, sig: Signature) -> list[tuple[str, float]]:
        """Articles in the set that `sig` duplicates (see `duplicates`), with their Jaccard, most similar first."""
        found = []
        for key in self._lsh.query(sig.minhash()):
            score = self.duplicates(sig, self._entries[key].signature)
            if score is not None:
                found.append((key, score))
        return sorted(found, key=lambda item: (-item[1], self._order[item[0]]))

    def check_and_add(self, article_id: str, sig: Signature) -> str | None:
        """Add the article; return the id of the first-seen article it duplicates, or None if it is new.

        Idempotent: an article already in the set (a redelivered message) gets its recorded answer again and the set
        is unchanged, so at-least-once delivery gives exactly-once links.
        """
        if article_id in self._entries:
            return self._entries[article_id].original
        original: str | None = None
        best = -1
        for key, _score in self.matches(sig):
            root = self._entries[key].original or key
            # The root may have aged out while its copy stayed; order it by its copy's position then.
            rank = self._order.get(root, self._order[key])
            if original is None or rank < best:
                original, best = root, rank
        self._add(article_id, sig, original)
        return original

    def remove(self, article_id: str) -> None:
        """Age an article out of the working set; its copies keep their link. Unknown ids are ignored."""
        if self._entries.pop(article_id, None) is not None:
            self._order.pop(article_id)
            self._lsh.remove(article_id)

    def original_of(self, article_id: str) -> str | None:
        return self._entries[article_id].original

    def entries(self) -> Iterator[tuple[str, Signature, str | None]]:
        """(id, signature, original) in first-seen order: everything `from_signatures` needs."""
        for key, entry in self._entries.items():
            yield key, entry.signature, entry.original

    @classmethod
    def from_signatures(
        cls,
        items: Iterable[tuple[str, Signature, str | None]],
        threshold: float = THRESHOLD,
        *,
        containment: float | None = CONTAINMENT,
        number_conflict: float | None = NUMBER_CONFLICT,
        entity_veto: bool = ENTITY_VETO,
    ) -> NearDuplicates:
        """Rebuild a working set from stored `entries()`, in first-seen order; the links are restored as recorded
        (not recomputed), so an original that aged out before the restart stays the original of its copies."""
        index = cls(threshold, containment=containment, number_conflict=number_conflict, entity_veto=entity_veto)
        for article_id, sig, original in items:
            if article_id in index._entries:
                raise ValueError(f"article {article_id!r} appears twice in the stored working set")
            index._add(article_id, sig, original)
        return index

    def _add(self, article_id: str, sig: Signature, original: str | None) -> None:
        self._lsh.insert(article_id, sig.minhash(), check_duplication=False)
        self._entries[article_id] = _Entry(sig, original)
        self._order[article_id] = self._next
        self._next += 1
