"""What a remote provider is, and what it answers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from common.schemas import RawArticle, Sentiment

__all__ = ["RemoteAnswer", "RemoteProvider"]


@dataclass(frozen=True)
class RemoteAnswer:
    """The tasks a provider answered (None: not asked or not answered), the tokens it reported, and the model
    that answered each task where a provider uses several (`models`; the provider's `model` otherwise)."""

    sentiment: Sentiment | None = None
    sentiment_score: float | None = None
    category: str | None = None
    summary: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)


class RemoteProvider(Protocol):
    name: str
    model: str
    timeout_s: float

    async def analyze(self, article: RawArticle, tasks: Collection[str]) -> RemoteAnswer: ...

    async def aclose(self) -> None: ...
