"""FastAPI dependencies of the producer: the clients opened in the lifespan, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from producer.service import Publisher
from producer.settings import ProducerSettings

__all__ = ["PublisherDep", "SettingsDep"]


def _publisher(request: Request) -> Publisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


def _settings(request: Request) -> ProducerSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


PublisherDep = Annotated[Publisher, Depends(_publisher)]
SettingsDep = Annotated[ProducerSettings, Depends(_settings)]
