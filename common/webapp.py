"""FastAPI glue every service shares: ops routes, error mapping, bearer auth, body limits, logging."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from common.errors import BrokerError, InvalidArticle, NewsSuiteError, ProviderError, StoreError
from common.metrics import CONTENT_TYPE_LATEST, render

__all__ = [
    "WS_CLOSE_UNAUTHORIZED",
    "BodySizeLimit",
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


# --- request body size limit (a generic ASGI middleware any service can install) ---


class BodySizeLimit:
    """Answer 413 with a reason when a request body exceeds `max_bytes`, before a route reads it all.

    `app.add_middleware(BodySizeLimit, max_bytes=settings.producer.max_body_bytes)`. A declared
    `Content-Length` above the limit is refused at once; a chunked body is counted as it arrives and
    cut off when it passes the limit (the route sees a disconnect; the client gets the 413).
    """

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        seen = 0
        started = False

        async def counted_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send, seen)

    async def _refuse(self, send: Callable[..., Any], size: int) -> None:
        body = JSONResponse(
            {"detail": f"request body of at least {size} bytes is over the limit of {self.max_bytes} bytes"},
            status_code=413,
        )
        await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


class _BodyTooLarge(Exception):
    """Raised inside the app's `receive` when a streamed body passes the limit."""
