"""Canonical entity ids: one id per real-world entity, shared by every surface form and by both languages.

An id is `<type>:<slug>`, the slug being the canonical name folded to lower case ASCII-ish words joined by
underscores (Hangul kept as it is when no English name is known). Types are the coarse set the engine
reports: PERSON, ORG, LOC, MISC.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["CANONICAL_TYPES", "entity_id"]

CANONICAL_TYPES: tuple[str, ...] = ("PERSON", "ORG", "LOC", "MISC")
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def entity_id(entity_type: str, name: str) -> str:
    """`entity_id("PERSON", "Donald Trump") == "person:donald_trump"`; stable across runs and processes."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    # Strip accents (Macron == Macron with an accent) but keep scripts without a Latin decomposition as they are.
    folded = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    slug = _NON_WORD.sub("_", folded).strip("_")
    return f"{entity_type.lower()}:{slug or '_'}"
