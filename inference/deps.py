"""FastAPI dependencies of the inference service: the engine and settings opened in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from inference.engine import Engine
from inference.settings import InferenceSettings

__all__ = ["EngineDep", "SettingsDep"]


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _settings(request: Request) -> InferenceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(_engine)]
SettingsDep = Annotated[InferenceSettings, Depends(_settings)]
