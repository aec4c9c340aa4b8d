"""Near-duplicate articles (copies, syndicated wire stories, re-posts with a changed headline) by MinHash/LSH.

Each article is reduced to a set of shingles of its normalised text (title + description + lead): word 3-grams
for space-delimited languages, character 3-grams (spaces removed, so that spacing differences between outlets do
not matter) for Korean, Chinese, Japanese and Thai. A MinHash of 128 permutations with a fixed seed makes the
signature a pure function of the text, identical in every process and after every restart, so the stream stage can
store the bytes and rebuild its index from them.

`NearDuplicates` is the working set: `check_and_add` links an article to the FIRST-seen article it duplicates,
transitively (a copy of a copy links to the original, because every entry records its original). The LSH index
only proposes candidates; each is confirmed by the rule below, so a larger LSH candidate set costs time, never
precision.

A candidate is a duplicate when the EXACT Jaccard of the two shingle sets (the signature carries the shingle hashes;
the MinHash only feeds the LSH index) reaches `THRESHOLD` = 0.40, unless the figures the two texts report conflict:
copies of a report keep its numbers (a corrected or fuller re-send adds a few), while templated items (a dividend
notice of another fund, the Fed's operation on another day, another price cut) share most words but REPLACE the
figures. `Signature.number_conflict` is the share of replaced numbers among replaced + shared; above
`NUMBER_CONFLICT` = 0.40 the pair is not a duplicate. All three settings (threshold, an optional containment rule,
left off, and the veto) were chosen together on the development split of training/stories/dedup_pairs.tsv, never
on the evaluation split (`python -m training.eval_dedup --choose`; see training/stories/README_dedup.md).

Limits, stated: only articles in the working set are found. Once an article is `remove`d (aged out), a later copy
of it is not linked to it (unless another copy of it is still in the set, which links to the same original).
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
    "CONTAINMENT",
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
    "normalise",
    "shingles",
    "signature",
]

NUM_PERM = 128
SEED = 20170101  # fixed: signatures must be equal across processes and restarts
SCHEME = "affine32"  # datasketch 2.0's 32-bit permutations: hash values fit in uint32
SHINGLE_SIZE = 3
LEAD_CHARS = 1000  # how much of the body is the lead: enough to outweigh a replaced headline
THRESHOLD = 0.40
CONTAINMENT: float | None = None  # tried on dev (0.7-0.9): never better than Jaccard alone, so off
NUMBER_CONFLICT = 0.40
FORMAT = 2  # the Signature bytes format written now (1: bare MinHash, still read)
MAX_SHINGLES = 4096  # bottom-k cap on the exact shingle hashes kept: bounds a very long description's memory
# LSH bands x rows, fixed rather than re-derived by datasketch so the index layout never changes under us. 42 bands
# of 3 rows find a pair at Jaccard 0.40 with probability 1-(1-0.40^3)^42 = 0.94 and at 0.50 with 0.996; recall is
# measured through the index, so what LSH misses is in the figures.
LSH_BANDS, LSH_ROWS = 42, 3
CHAR_SHINGLE_LANGUAGES = frozenset({"ko", "ja", "zh", "th", "lo", "km", "my"})

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
# Hangul, Hiragana/Katakana, CJK ideographs and Thai: text in these scripts is shingled by character whatever the
# language tag says (a missing or wrong tag must not turn a Korean article into one giant "word").
_CJK = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
# CRC-32 hashes each shingle to 32 bits (the affine32 scheme mixes the bits before permuting): stable across
# processes and platforms, unlike Python's salted hash(), and several times cheaper than datasketch's default SHA-1.
_HEAD = struct.Struct("<BHH")
# A figure as written: digits with inner separators ("1,358,000", "6.5", "6-3/16", "2017-03-14") are one number.
_NUMBER = re.compile(r"\d+(?:[.,/:-]\d+)*", re.ASCII)
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME, hashfunc=zlib.crc32)  # permutations made once


@dataclass(frozen=True)
class Signature:
    """One article's comparison data: the MinHash (NUM_PERM uint32 values, for the LSH index) and, from format 2 on,
    the exact shingle hashes (to confirm a candidate by the true Jaccard and containment rather than the estimate)
    and the hashes of the figures the text reports (for the number veto).

    Bytes: format 1 is the bare MinHash (4 * NUM_PERM bytes, little-endian uint32), still read so that stored
    working sets survive the upgrade (such entries are compared by the estimate, without the veto); format 2 is
    the version byte 2, two little-endian uint16 counts (shingles, numbers), then the MinHash, the sorted shingle
    hashes and the sorted number hashes, all little-endian uint32.
    """

    hashvalues: np.ndarray = field(repr=False)
    shingle_hashes: np.ndarray | None = field(default=None, repr=False)  # sorted, unique uint32
    number_hashes: np.ndarray | None = field(default=None, repr=False)  # sorted, unique uint32

    def __post_init__(self) -> None:
        if self.hashvalues.shape != (NUM_PERM,):
            raise ValueError(f"a signature has {NUM_PERM} hash values, not {self.hashvalues.shape}")
        if (self.shingle_hashes is None) != (self.number_hashes is None):
            raise ValueError("a signature carries both its shingle and its number hashes, or neither")

    def to_bytes(self) -> bytes:
        values = self.hashvalues.astype("<u4", copy=False).tobytes()
        if self.shingle_hashes is None or self.number_hashes is None:
            return values
        head = struct.pack("<BHH", FORMAT, len(self.shingle_hashes), len(self.number_hashes))
        return b"".join(
            (head, values, self.shingle_hashes.astype("<u4").tobytes(), self.number_hashes.astype("<u4").tobytes())
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        if len(data) == 4 * NUM_PERM:  # format 1: the bare MinHash
            return cls(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        if len(data) < _HEAD.size or data[0] != FORMAT:
            raise ValueError(
                f"a signature is {4 * NUM_PERM} bytes (format 1) or starts with format byte {FORMAT}; "
                f"got {len(data)} bytes"
            )
        _, n_shingles, n_numbers = _HEAD.unpack_from(data)
        expected = _HEAD.size + 4 * (NUM_PERM + n_shingles + n_numbers)
        if len(data) != expected:
            raise ValueError(f"a format {FORMAT} signature with these counts is {expected} bytes, not {len(data)}")
        arrays = np.frombuffer(data, dtype="<u4", offset=_HEAD.size).astype(np.uint32)
        return cls(
            arrays[:NUM_PERM],
            arrays[NUM_PERM : NUM_PERM + n_shingles],
            arrays[NUM_PERM + n_shingles :],
        )

    def minhash(self) -> LeanMinHash:
        return LeanMinHash(seed=SEED, hashvalues=self.hashvalues, scheme=SCHEME)

    def jaccard(self, other: Signature) -> float:
        """Jaccard similarity of the two shingle sets: exact when both carry their shingles, else estimated (share
        of equal MinHash values)."""
        if self.shingle_hashes is not None and other.shingle_hashes is not None:
            common = _common(self.shingle_hashes, other.shingle_hashes)
            union = len(self.shingle_hashes) + len(other.shingle_hashes) - common
            return common / union if union else 0.0
        return float(np.count_nonzero(self.hashvalues == other.hashvalues)) / NUM_PERM

    def containment(self, other: Signature) -> float | None:
        """Share of the smaller shingle set found in the larger (a copy with a paragraph added or cut); None when
        either signature is format 1."""
        if self.shingle_hashes is None or other.shingle_hashes is None:
            return None
        smaller = min(len(self.shingle_hashes), len(other.shingle_hashes))
        return _common(self.shingle_hashes, other.shingle_hashes) / smaller if smaller else 0.0

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


def _by_character(text: str, language: str | None) -> bool:
    if language and language.split("-")[0].lower() in CHAR_SHINGLE_LANGUAGES:
        return True
    letters = len(text) - text.count(" ")  # `text` is normalised: single spaces only
    return len(_CJK.findall(text)) * 2 > letters


def shingles(text: str, language: str | None) -> set[str]:
    """Word 3-grams, or character 3-grams for CJK/Thai text; a text shorter than one shingle is one shingle."""
    norm = normalise(text)
    if not norm:
        return set()
    if _by_character(norm, language):
        chars = norm.replace(" ", "")
        return {chars[i : i + SHINGLE_SIZE] for i in range(max(1, len(chars) - SHINGLE_SIZE + 1))}
    words = norm.split(" ")
    return {" ".join(words[i : i + SHINGLE_SIZE]) for i in range(max(1, len(words) - SHINGLE_SIZE + 1))}


def signature(text: str, language: str | None) -> Signature:
    """The article's MinHash signature; `text` is usually `article_text(...)`.

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
    numbers = {n.encode("ascii") for n in _NUMBER.findall(unicodedata.normalize("NFKC", text))}
    number_hashes = np.unique(np.fromiter((zlib.crc32(n) for n in numbers), dtype=np.uint32, count=len(numbers)))
    return Signature(minhash.hashvalues.astype(np.uint32), shingle_hashes[:MAX_SHINGLES], number_hashes[:MAX_SHINGLES])


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
    ) -> None:
        """`threshold`: the Jaccard a candidate must reach; `containment`: or the share of the smaller shingle set
        found in the larger (None: not used); `number_conflict`: a candidate whose figures disagree more than this
        (see `Signature.number_conflict`) is not a duplicate whatever its text similarity (None: no veto)."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        if containment is not None and not 0.0 < containment <= 1.0:
            raise ValueError(f"containment must be in (0, 1] or None, not {containment}")
        if number_conflict is not None and not 0.0 <= number_conflict < 1.0:
            raise ValueError(f"number_conflict must be in [0, 1) or None, not {number_conflict}")
        self.threshold = threshold
        self.containment = containment
        self.number_conflict = number_conflict
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
    ) -> NearDuplicates:
        """Rebuild a working set from stored `entries()`, in first-seen order; the links are restored as recorded
        (not recomputed), so an original that aged out before the restart stays the original of its copies."""
        index = cls(threshold, containment=containment, number_conflict=number_conflict)
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
