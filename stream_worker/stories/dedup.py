"""Near-duplicate articles (copies, syndicated wire stories, re-posts with a changed headline) by MinHash/LSH.

Each article is reduced to a set of shingles of its normalised text (title + description + lead): word 3-grams
for space-delimited languages, character 3-grams (spaces removed, so that spacing differences between outlets do
not matter) for Korean, Chinese, Japanese and Thai. A MinHash of 128 permutations with a fixed seed makes the
signature a pure function of the text, identical in every process and after every restart, so the stream stage can
store the bytes and rebuild its index from them.

`NearDuplicates` is the working set: `check_and_add` links an article to the FIRST-seen article it duplicates,
transitively (a copy of a copy links to the original, because every entry records its original). The LSH index
only proposes candidates; each is confirmed by the estimated Jaccard similarity of the two signatures against
`THRESHOLD`, so a larger LSH candidate set costs time, never precision.

The threshold (0.50 estimated Jaccard on word 3-gram shingles) was chosen on the development split of the labelled
pairs in training/stories/dedup_pairs.tsv, never on the evaluation split (`python -m training.eval_dedup --choose`):
no threshold reached precision 0.95 on dev (templated wire items such as dividend notices of different funds share
most of their words), so it is the best dev F1 (precision 0.80, recall 0.80). See training/stories/README_dedup.md.

Limits, stated: only articles in the working set are found. Once an article is `remove`d (aged out), a later copy
of it is not linked to it (unless another copy of it is still in the set, which links to the same original).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

__all__ = [
    "CHAR_SHINGLE_LANGUAGES",
    "LEAD_CHARS",
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
THRESHOLD = 0.50
# LSH bands x rows, fixed rather than re-derived by datasketch so the index layout never changes under us. 42 bands
# of 3 rows find a pair at Jaccard 0.45 with probability 1-(1-0.45^3)^42 = 0.98 and at 0.50 with 0.996; recall is
# measured through the index, so what LSH misses is in the figures.
LSH_BANDS, LSH_ROWS = 42, 3
CHAR_SHINGLE_LANGUAGES = frozenset({"ko", "ja", "zh", "th", "lo", "km", "my"})

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
# Hangul, Hiragana/Katakana, CJK ideographs and Thai: text in these scripts is shingled by character whatever the
# language tag says (a missing or wrong tag must not turn a Korean article into one giant "word").
_CJK = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
# CRC-32 hashes each shingle to 32 bits (the affine32 scheme mixes the bits before permuting): stable across
# processes and platforms, unlike Python's salted hash(), and several times cheaper than datasketch's default SHA-1.
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME, hashfunc=zlib.crc32)  # permutations made once


@dataclass(frozen=True)
class Signature:
    """The MinHash of one article: NUM_PERM uint32 hash values, serialisable as 4 * NUM_PERM bytes."""

    hashvalues: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        if self.hashvalues.shape != (NUM_PERM,):
            raise ValueError(f"a signature has {NUM_PERM} hash values, not {self.hashvalues.shape}")

    def to_bytes(self) -> bytes:
        return self.hashvalues.astype("<u4", copy=False).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        if len(data) != 4 * NUM_PERM:
            raise ValueError(f"a signature is {4 * NUM_PERM} bytes, not {len(data)}")
        return cls(np.frombuffer(data, dtype="<u4").astype(np.uint32))

    def minhash(self) -> LeanMinHash:
        return LeanMinHash(seed=SEED, hashvalues=self.hashvalues, scheme=SCHEME)

    def jaccard(self, other: Signature) -> float:
        """Estimated Jaccard similarity of the two shingle sets (share of equal hash values)."""
        return float(np.count_nonzero(self.hashvalues == other.hashvalues)) / NUM_PERM

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signature) and bool(np.array_equal(self.hashvalues, other.hashvalues))

    def __hash__(self) -> int:
        return hash(self.to_bytes())


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
    minhash = _TEMPLATE.copy()
    minhash.update_batch([s.encode("utf-8") for s in sorted(found)])
    return Signature(minhash.hashvalues.astype(np.uint32))


@dataclass
class _Entry:
    signature: Signature
    original: str | None  # the first-seen article this one duplicates; None when it is an original itself


class NearDuplicates:
    """The working set of recent articles: which earlier article (if any) each new one duplicates.

    Deterministic: the same articles checked in the same order give the same answers in any process. The state is
    the ordered list of `entries()` (id, signature, original); `from_signatures(entries)` rebuilds it exactly.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self.threshold = threshold
        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=(LSH_BANDS, LSH_ROWS))
        self._entries: dict[str, _Entry] = {}  # insertion order is first-seen order
        self._order: dict[str, int] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._entries

    def matches(self, sig: Signature) -> list[tuple[str, float]]:
        """Articles in the set whose estimated Jaccard with `sig` reaches the threshold, most similar first."""
        found = []
        for key in self._lsh.query(sig.minhash()):
            score = sig.jaccard(self._entries[key].signature)
            if score >= self.threshold:
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
        cls, items: Iterable[tuple[str, Signature, str | None]], threshold: float = THRESHOLD
    ) -> NearDuplicates:
        """Rebuild a working set from stored `entries()`, in first-seen order; the links are restored as recorded
        (not recomputed), so an original that aged out before the restart stays the original of its copies."""
        index = cls(threshold)
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
