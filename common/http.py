"""HTTP pieces every FastAPI service shares: health and metrics routes, error mapping, logging."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from common.errors import BrokerError, InvalidArticle, NewsSuiteError, ProviderError, StoreError
from common.metrics import CONTENT_TYPE_LATEST, render

__all__ = [
    "WS_CLOSE_UNAUTHORIZED",
    "ReadinessCheck",
    "bearer_auth",
    "configure_logging",
    "install_error_handlers",
    "ops_router",
    "websocket_authorized",
]

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


# --- optional token auth (API_TOKEN): REST sends `Authorization: Bearer <token>`, a WebSocket `?token=` ---

WS_CLOSE_UNAUTHORIZED = 4401  # WebSocket close code for a missing or wrong token (the dashboard stops retrying)


# Module level, so that FastAPI can resolve the (postponed) annotation that names it.
_bearer = HTTPBearer(auto_error=False, description="the API_TOKEN the service was started with")


def _token_matches(given: str | None, expected: SecretStr) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.get_secret_value().encode())


def bearer_auth(token: SecretStr | None) -> Callable[..., Awaitable[None]]:
    """A route dependency requiring `Authorization: Bearer <token>`; it lets everything through when token is None.

    Use it on the routers that serve data (`app.include_router(r, dependencies=[Depends(bearer_auth(t))])`),
    not on `ops_router`: probes and Prometheus must reach `/healthz`, `/readyz` and `/metrics` without a token.
    """
    if token is None:

        async def open_access() -> None:
            return None

        return open_access

    async def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if credentials is None or not _token_matches(credentials.credentials, token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return require_token


async def websocket_authorized(ws: WebSocket, token: SecretStr | None) -> bool:
    """Check `?token=` (browsers cannot set headers on a WebSocket) or a Bearer header; on failure accept
    and close with 4401, so the client sees why instead of a bare handshake error."""
    if token is None:
        return True
    given = ws.query_params.get("token")
    header = ws.headers.get("authorization", "")
    if given is None and header[:7].lower() == "bearer ":
        given = header[7:].strip()
    if _token_matches(given, token):
        return True
    await ws.accept()
    await ws.close(code=WS_CLOSE_UNAUTHORIZED, reason="missing or wrong token")
    return False
