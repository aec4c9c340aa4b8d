"""FastAPI glue every service shares: ops routes, error mapping, bearer auth, body limits, logging."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, SecretStr

from common.errors import BrokerError, NewsSuiteError, ProviderError, StoreError
from common.metrics import CONTENT_TYPE_LATEST, render
from common.schemas import unencodable

__all__ = [
    "MAX_JSON_DEPTH",
    "WS_CLOSE_UNAUTHORIZED",
    "BodySizeLimit",
    "ErrorBody",
    "JsonBodyRoute",
    "ReadinessCheck",
    "bearer_auth",
    "configure_logging",
    "error_responses",
    "install_error_handlers",
    "ops_router",
    "parse_json_body",
    "websocket_authorized",
]

MAX_JSON_DEPTH = 32
"""Deepest nesting a request body may have (an article batch needs 4): deeper is refused with 422, before
any model sees it, so a `[[[[...` body can neither exhaust the recursion limit nor reach a handler."""


class ErrorBody(BaseModel):
    """Every error answer except 422: what went wrong, and the suite's error class when one was raised."""

    detail: str
    error: str | None = None


_ERROR_TEXT = {
    401: "missing or wrong bearer token (only when the service runs with API_TOKEN)",
    404: "no such resource",
    413: "request body over the byte limit, or more items than one request may carry",
    429: "too many requests",
    503: "a dependency (Kafka, Redis, a model provider) did not answer; retrying the same request is safe",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can answer, each with `ErrorBody` (422 is FastAPI's
    own validation body and is listed by FastAPI)."""
    return {status: {"model": ErrorBody, "description": _ERROR_TEXT[status]} for status in statuses}


def _walk(value: Any, loc: tuple[str | int, ...], depth: int) -> Iterator[dict[str, Any]]:
    if depth > MAX_JSON_DEPTH:
        yield {"type": "json_too_deep", "loc": loc, "msg": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}
        return
    if isinstance(value, str):
        if reason := unencodable(value):
            yield {"type": "string_unicode", "loc": loc, "msg": reason}
    elif isinstance(value, dict):
        for key, item in value.items():
            if reason := unencodable(key):
                shown = key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                yield {"type": "key_unicode", "loc": (*loc, shown), "msg": f"key {reason}"}
            else:
                yield from _walk(item, (*loc, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index), depth + 1)


def parse_json_body(body: bytes) -> Any:
    """A request body as JSON, or `RequestValidationError` (422) naming where it is not usable: invalid JSON or
    UTF-8, text with unpaired surrogates (key or value, by path), nesting deeper than `MAX_JSON_DEPTH`.

    orjson parses it (fast, and it refuses surrogates and invalid UTF-8 itself); only when it refuses is the
    body read again by the standard parser, to name the field instead of a byte offset."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            value = json.loads(body)
        except UnicodeDecodeError as bad:
            error = {"type": "json_invalid", "loc": ("body", bad.start), "msg": f"body is not UTF-8: {bad.reason}"}
            raise RequestValidationError([error]) from None
        except (ValueError, RecursionError):
            error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": f"JSON decode error: {exc.msg}"}
            raise RequestValidationError([error]) from None
    errors = list(_walk(value, ("body",), 0))
    if errors:
        raise RequestValidationError(errors[:20])
    return value


class JsonBodyRoute(APIRoute):
    """An `APIRoute` whose JSON body goes through `parse_json_body` before FastAPI validates it against the
    route's model (`APIRouter(route_class=JsonBodyRoute)`): hostile text and nesting never reach a handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if request.method in {"POST", "PUT", "PATCH"} and _json_content(request.headers.get("content-type")):
                body = await request.body()
                if body:
                    # Starlette's `Request.json()` returns this cached value; FastAPI reads the body through it.
                    request._json = parse_json_body(body)
            return await handle(request)

        return handler


def _json_content(content_type: str | None) -> bool:
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _safe(value: Any) -> Any:
    """The value with text made encodable (unpaired surrogates as `\\udXXX`), for error bodies that echo input."""
    if isinstance(value, str):
        return value if unencodable(value) is None else value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


ReadinessCheck = Callable[[Request], Awaitable[dict[str, bool]]]


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]


def ops_router(registry_of: Callable[[Request], CollectorRegistry], readiness: ReadinessCheck) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (its dependencies answer), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "a dependency does not answer"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = await readiness(request)
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus"}},
    )
    async def metrics(request: Request) -> Response:
        return Response(render(registry_of(request)), media_type=CONTENT_TYPE_LATEST)

    return router


def install_error_handlers(app: FastAPI) -> None:
    """Map the suite's exception tree to HTTP (`ErrorBody`: what went wrong, never a stack trace), and answer
    422 with FastAPI's validation body, made encodable even when it echoes hostile input."""

    @app.exception_handler(NewsSuiteError)
    async def _handle(_: Request, exc: NewsSuiteError) -> JSONResponse:
        unavailable = isinstance(exc, StoreError | ProviderError | BrokerError)
        body = ErrorBody(detail=_safe(str(exc)), error=type(exc).__name__)
        return JSONResponse(body.model_dump(), status_code=503 if unavailable else 500)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"type": e.get("type", "value_error"), "loc": list(e.get("loc", ())), "msg": e.get("msg", ""), **_ctx(e)}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": _safe(jsonable_encoder(errors))}, status_code=422)


def _ctx(error: dict[str, Any]) -> dict[str, Any]:
    # The offending input is left out (it may be megabytes, or the very text that cannot be encoded); `ctx`
    # holds the limit that was broken (`max_length`, `pattern`...).
    ctx = error.get("ctx")
    return {"ctx": {k: str(v) for k, v in ctx.items()}} if isinstance(ctx, dict) else {}


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
