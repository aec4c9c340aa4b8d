"""FastAPI dependencies of the producer: the clients opened in the lifespan, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from producer.poller import Poller
from producer.service import Publisher
from producer.settings import ProducerSettings

__all__ = ["PollerDep", "PublisherDep", "SettingsDep"]


def _publisher(request: Request) -> Publisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


def _settings(request: Request) -> ProducerSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _poller(request: Request) -> Poller:
    return request.app.state.poller  # type: ignore[no-any-return]


PollerDep = Annotated[Poller, Depends(_poller)]
PublisherDep = Annotated[Publisher, Depends(_publisher)]
SettingsDep = Annotated[ProducerSettings, Depends(_settings)]
