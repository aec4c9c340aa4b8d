"""Inference service (port 8000): the engine behind HTTP, for deployments that scale inference on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from prometheus_client import REGISTRY, CollectorRegistry

from common.webapp import (
    AccessTokens,
    BodySizeLimit,
    configure_logging,
    install_error_handlers,
    log_access_mode,
    mount_guarded,
    ops_router,
)
from inference.api import router
from inference.engine import Engine
from inference.settings import InferenceSettings, get_settings

__all__ = ["app", "create_app"]


def create_app(settings: InferenceSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    registry = registry if registry is not None else REGISTRY
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            engine = Engine(settings.inference, registry=registry)
            # Registered before start: processes and provider clients started before a failure are closed too.
            stack.push_async_callback(engine.aclose)
            await engine.start()
            app.state.engine, app.state.settings, app.state.registry = engine, settings, registry
            yield

    async def readiness(request: Request) -> dict[str, bool]:
        engine: Engine | None = getattr(request.app.state, "engine", None)
        return {"models_loaded": engine is not None and engine.ready}

    app = FastAPI(title="news-suite inference", version="0.2.0", lifespan=lifespan)
    # Outermost, so an oversized body is refused before anything reads it.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(ops_router(lambda request: request.app.state.registry, readiness))
    access = AccessTokens.of(settings)
    log_access_mode(access, "inference")
    # Analysis changes nothing: any valid token (read or write) may ask for it, POST or not.
    mount_guarded(app, router, access, scope="read")
    return app


app = create_app()
