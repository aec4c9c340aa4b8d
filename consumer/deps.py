"""FastAPI dependencies of the consumer: the store and hub opened in the lifespan.

Each is `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per dependency
per request (measured: most of a list read's CPU went to those hand-offs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from common.stats import StatsStore
from common.store import ArticleStore
from common.story_store import StoryStore
from consumer.settings import ConsumerSettings
from consumer.ws import Hub

__all__ = ["HubDep", "SettingsDep", "StatsDep", "StoreDep", "StoriesDep"]


async def _store(request: HTTPConnection) -> ArticleStore:
    return request.app.state.store  # type: ignore[no-any-return]


async def _settings(request: HTTPConnection) -> ConsumerSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


StoreDep = Annotated[ArticleStore, Depends(_store)]
SettingsDep = Annotated[ConsumerSettings, Depends(_settings)]


async def _hub(request: HTTPConnection) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


HubDep = Annotated[Hub, Depends(_hub)]


async def _stats(request: HTTPConnection) -> StatsStore:
    return request.app.state.stats  # type: ignore[no-any-return]


StatsDep = Annotated[StatsStore, Depends(_stats)]


async def _stories(request: HTTPConnection) -> StoryStore:
    return request.app.state.stories  # type: ignore[no-any-return]


StoriesDep = Annotated[StoryStore, Depends(_stories)]
