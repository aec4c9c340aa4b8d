"""Korean analysis: Kiwi tokens shared by keywords, entities and sentiment (one analyser per process)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["kiwi"]


@lru_cache(maxsize=1)
def kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi()
