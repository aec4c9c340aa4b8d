"""HTTP pieces every FastAPI service shares: health and metrics routes, error mapping, logging."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from common.errors import BrokerError, InvalidArticle, NewsSuiteError, ProviderError, StoreError
from common.metrics import CONTENT_TYPE_LATEST, render

__all__ = ["ReadinessCheck", "configure_logging", "install_error_handlers", "ops_router"]

ReadinessCheck = Callable[[Request], Awaitable[dict[str, bool]]]


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def ops_router(registry_of: Callable[[Request], CollectorRegistry], readiness: ReadinessCheck) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (its dependencies answer), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        checks = await readiness(request)
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        return Response(render(registry_of(request)), media_type=CONTENT_TYPE_LATEST)

    return router


def install_error_handlers(app: FastAPI) -> None:
    """Map the suite's exception tree to HTTP: the body says what went wrong, never a stack trace."""

    @app.exception_handler(NewsSuiteError)
    async def _handle(_: Request, exc: NewsSuiteError) -> JSONResponse:
        unavailable = isinstance(exc, StoreError | ProviderError | BrokerError)
        status = 422 if isinstance(exc, InvalidArticle) else 503 if unavailable else 500
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)
