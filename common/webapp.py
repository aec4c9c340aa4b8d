"""FastAPI glue every service shares: ops routes, error mapping, bearer auth, body limits, logging."""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

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

if TYPE_CHECKING:
    from common.settings import ServiceSettings

__all__ = [
    "MAX_JSON_DEPTH",
    "REDACTED",
    "WS_CLOSE_TRY_AGAIN",
    "WS_CLOSE_UNAUTHORIZED",
    "AccessTokens",
    "BodySizeLimit",
    "Caller",
    "ErrorBody",
    "JsonBodyRoute",
    "RateLimiter",
    "ReadinessCheck",
    "RepeatFilter",
    "Scope",
    "SecretRedactor",
    "bearer_auth",
    "bearer_token",
    "configure_logging",
    "error_responses",
    "install_error_handlers",
    "install_repeat_filter",
    "log_access_mode",
    "mount_guarded",
    "ops_router",
    "parse_json_body",
    "redact",
    "refuse_websocket",
    "require_access",
]

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32
"""Deepest nesting a request body may have (an article batch needs 4): deeper is refused with 422, before
any model sees it, so a `[[[[...` body can neither exhaust the recursion limit nor reach a handler."""


class ErrorBody(BaseModel):
    """Every error answer except 422: what went wrong, and the suite's error class when one was raised."""

    detail: str
    error: str | None = None


_ERROR_TEXT = {
    401: "missing or wrong bearer token (only when the service runs with API tokens)",
    403: "the token may read but this route writes (a write token is needed)",
    404: "no such resource",
    413: "request body over the byte limit, or more items than one request may carry",
    429: "too many write requests from this client: wait the Retry-After seconds",
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
    """Log format and level, credentials redacted from every record (`SecretRedactor`): uvicorn's access
    log writes query strings, and a WebSocket ticket or a misplaced `?token=` must never reach a log; and a
    message repeated in a tight loop logged once with a count (`RepeatFilter`)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _install_redaction()
    install_repeat_filter()


# --- repeated messages: a failure logged once per window, with a count ---

_DIGITS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Lets the first record of a kind through and holds back its repeats for `window` seconds, then logs one
    line "<last message> (repeated N times in the last S s)".

    A client that loses its broker retries in a loop and logs every attempt (aiokafka: "Unable connect to node",
    "Unable to update metadata"; faust: "producer buffer full size 1234"): an 11 s Kafka restart once wrote 79,000
    lines. A kind is (logger, level, message with its numbers masked, exception type): repeats that differ only in
    a number (a size, a port, a count) are one kind, and the summary carries the last one; any other difference
    is another kind, which passes at once. A first occurrence is never delayed: only repeats are held back, and
    their count is always written: when the record after the window arrives, by a timer thread when none does,
    when more than `max_kinds` kinds are tracked (the oldest is summarised and dropped: memory stays bounded),
    and by `flush` (at exit).

    One instance serves every handler it is attached to (`install_repeat_filter`): its decision is kept on the
    record, so a record that goes to two handlers is counted once and written to both or neither.
    """

    SUMMARY = "_repeat_summary"  # set on the summary records, which always pass

    def __init__(
        self,
        window: float = 10.0,
        *,
        max_kinds: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        timer: bool = True,
    ) -> None:
        super().__init__()
        if window <= 0 or max_kinds < 1:
            raise ValueError("RepeatFilter needs window > 0 and max_kinds >= 1")
        self.window = window
        self.max_kinds = max_kinds
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> [first seen, repeats held back, last record]; oldest first (insertion order = first seen)
        self._kinds: OrderedDict[tuple[str, int, str, str], list[Any]] = OrderedDict()
        self._timer = timer
        self._thread: threading.Thread | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        decided = record.__dict__.get("_repeat_pass")
        if decided is not None:  # already decided by this filter on another handler
            return bool(decided)
        if record.__dict__.get(self.SUMMARY):
            return True
        now = self._clock()
        kind = self._kind(record)
        due: list[list[Any]] = []
        with self._lock:
            due = self._expired(now)
            entry = self._kinds.get(kind)
            if entry is None:
                self._kinds[kind] = [now, 0, record]
                while len(self._kinds) > self.max_kinds:
                    due.append(self._kinds.popitem(last=False)[1])
                passed = True
            else:
                entry[1] += 1
                entry[2] = record
                passed = False
                self._ensure_timer()
        # summaries of earlier repeats go out before this record, so the log reads in order
        self._summarise(due, now)
        record.__dict__["_repeat_pass"] = passed
        return passed

    def flush(self, now: float | None = None) -> None:
        """Write the summary of every kind whose window has closed (all of them when `now` is None)."""
        when = self._clock() if now is None else now
        with self._lock:
            if now is None:
                due = list(self._kinds.values())
                self._kinds.clear()
            else:
                due = self._expired(when)
        self._summarise(due, when)

    @staticmethod
    def _kind(record: logging.LogRecord) -> tuple[str, int, str, str]:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: the handler reports it
            message = str(record.msg)
        error = record.exc_info[0].__qualname__ if record.exc_info and record.exc_info[0] else ""
        return record.name, record.levelno, _DIGITS.sub("#", message), error

    def _expired(self, now: float) -> list[list[Any]]:
        """Under the lock: remove and return the kinds whose window has closed."""
        due: list[list[Any]] = []
        while self._kinds:
            kind, entry = next(iter(self._kinds.items()))
            if now - entry[0] < self.window:
                break  # insertion order is first-seen order: the rest are younger
            del self._kinds[kind]
            due.append(entry)
        return due

    def _summarise(self, due: list[list[Any]], now: float) -> None:
        for first, repeats, last in due:
            if repeats == 0:
                continue
            try:
                message = last.getMessage()
            except Exception:
                message = str(last.msg)
            logging.getLogger(last.name).log(
                last.levelno,
                "%s (repeated %d times in the last %.0f s)",
                message,
                repeats,
                max(now - first, 0.0),
                extra={self.SUMMARY: True},
            )

    def _ensure_timer(self) -> None:
        """Under the lock: a daemon thread that writes the summaries of windows no later record closes."""
        if not self._timer or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run_timer, name="log-repeat-summaries", daemon=True)
        self._thread.start()

    def _run_timer(self) -> None:
        while True:
            with self._lock:
                if not any(entry[1] for entry in self._kinds.values()):
                    self._thread = None
                    return
                oldest = next(iter(self._kinds.values()))[0]
            time.sleep(max(oldest + self.window - self._clock(), 0.05))
            self.flush(self._clock())


_REPEATS: RepeatFilter | None = None


def install_repeat_filter(window: float = 10.0) -> RepeatFilter:
    """Attach one process-wide `RepeatFilter` to every handler configured now (the root logger's, and those of
    loggers with their own, such as uvicorn's error log); its held-back counts are written at exit. Idempotent:
    call it again after adding handlers (faust's worker does, see `stream_worker.app`).

    uvicorn's access log is left alone: each line is a request of its own (a client's flood of them is the rate
    limiter's business), and its formatter unpacks the request's arguments, which a summary line does not have."""
    global _REPEATS
    if _REPEATS is None:
        _REPEATS = RepeatFilter(window)
        atexit.register(_REPEATS.flush)
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        if logger.name in _UNFILTERED:
            continue
        for handler in logger.handlers:
            if _REPEATS not in handler.filters:
                handler.addFilter(_REPEATS)
    return _REPEATS


_UNFILTERED = frozenset({"uvicorn.access"})


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]


def ops_router(
    registry_of: Callable[[Request], CollectorRegistry], readiness: ReadinessCheck, *, optional: Collection[str] = ()
) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (its dependencies answer), `/metrics` (Prometheus).

    `optional` checks are reported but do not make the service not-ready (the consumer's search archive: taking
    the pod out of its Service would stop the live feed, which does not need it)."""
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
        ready = all(ok for name, ok in checks.items() if name not in optional)
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


# --- API access: scoped bearer tokens, rate limits on writes, secrets kept out of logs (docs/security.md) ---

WS_CLOSE_UNAUTHORIZED = 4401  # WebSocket close code for a missing, used or expired ticket (the dashboard stops)
WS_CLOSE_TRY_AGAIN = 1013  # the ticket could not be checked (Redis down): the client retries

Scope = Literal["read", "write"]

# Module level, so that FastAPI can resolve the (postponed) annotation that names it.
_bearer = HTTPBearer(auto_error=False, description="a read or write token the service was started with")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request, as far as access is concerned: the scope its token grants (None: no valid token)
    and a key for rate limits that is not the token itself (a hash prefix, or the client address)."""

    scope: Scope | None
    key: str


@dataclass(frozen=True, slots=True)
class AccessTokens:
    """The tokens a service accepts. `read` holds every token that may read (the write tokens included: a
    writer may also read), `write` those that may write. Both empty: the service is open."""

    read: tuple[bytes, ...] = ()
    write: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, settings: ServiceSettings) -> AccessTokens:
        """From `API_READ_TOKENS`, `API_WRITE_TOKENS` and the deprecated `API_TOKEN` (one more write token)."""
        read = tuple(t.get_secret_value().encode() for t in settings.read_tokens())
        write = tuple(t.get_secret_value().encode() for t in settings.write_tokens())
        return cls(read=read, write=write)

    @property
    def open(self) -> bool:
        return not self.read and not self.write

    def scope_of(self, given: str | None) -> Scope | None:
        """The scope `given` grants, or None. Every candidate is compared, in constant time each, so neither
        the answer's timing nor which list matched tells an attacker how close a guess was."""
        if given is None:
            return None
        candidate = given.encode()
        writes = [hmac.compare_digest(candidate, token) for token in self.write]
        reads = [hmac.compare_digest(candidate, token) for token in self.read]
        if any(writes):
            return "write"
        return "read" if any(reads) else None

    def caller(self, given: str | None, address: str | None) -> Caller:
        scope = self.scope_of(given)
        if scope is not None and given is not None:
            # A token's rate-limit key: enough of its hash to tell clients apart, never the token itself.
            return Caller(scope, "token:" + hashlib.sha256(given.encode()).hexdigest()[:16])
        return Caller(scope, f"addr:{address or '?'}")


def log_access_mode(access: AccessTokens, service: str) -> None:
    """Say at start-up how the service is protected; an open one is a warning nobody can miss in the log."""
    if access.open:
        log.warning(
            "%s: API ACCESS IS OPEN - no API_READ_TOKENS, API_WRITE_TOKENS or API_TOKEN is set, so anyone who "
            "reaches this port can read and write. Fine for local development only.",
            service,
        )
    else:
        log.info(
            "%s: API tokens required (%d read-capable, %d write-capable)", service, len(access.read), len(access.write)
        )


class RateLimiter:
    """A token bucket per client key: `rate` requests a second on average, bursts of up to `burst`.

    In-process: with N replicas behind a load balancer a client gets up to N times the rate (docs/security.md).
    Idle buckets are dropped once there are many, so distinct clients cannot grow it unbounded."""

    MAX_KEYS = 10_000

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when last refilled)

    def take(self, key: str) -> float:
        """0.0 when the request may go ahead (and one token is taken), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._remember(key, (tokens - 1.0, now))
            return 0.0
        self._remember(key, (tokens, now))
        return (1.0 - tokens) / self.rate

    def _remember(self, key: str, bucket: tuple[float, float]) -> None:
        self._buckets[key] = bucket
        if len(self._buckets) > self.MAX_KEYS:
            now = self._clock()
            full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.burst]
            for stale in full or list(self._buckets)[: self.MAX_KEYS // 10]:
                del self._buckets[stale]

    @classmethod
    def of(cls, settings: ServiceSettings) -> RateLimiter:
        return cls(settings.api_write_rate, settings.api_write_burst)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_access(
    access: AccessTokens, limiter: RateLimiter | None = None, scope: Scope | None = None
) -> Callable[..., Awaitable[None]]:
    """A route (or router) dependency: `Authorization: Bearer <token>` with the scope the route needs.

    `scope=None` takes it from the method: GET/HEAD/OPTIONS read, anything else writes. No valid token: 401;
    a read token on a write: 403. Writes then pass `limiter` (429 with `Retry-After` when over the rate),
    also when the service is open (keyed by address then). Mount it on the routers that serve data
    (`app.include_router(r, dependencies=[Depends(require_access(...))])`), never on `ops_router`: probes and
    Prometheus reach `/healthz`, `/readyz` and `/metrics` without a token.
    """

    def admit(request: Request, given: str | None) -> None:
        needed: Scope = scope or ("read" if request.method in _SAFE_METHODS else "write")
        address = request.client.host if request.client else None
        if access.open:
            caller = Caller("write", f"addr:{address or '?'}")
        else:
            caller = access.caller(given, address)
            if caller.scope is None:
                raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
            if needed == "write" and caller.scope != "write":
                raise HTTPException(403, "this token may read but not write")
        # For a route that decides itself (a POST that may read or write, such as a GraphQL endpoint).
        request.state.caller = caller
        if needed == "write" and limiter is not None:
            wait = limiter.take(caller.key)
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                raise HTTPException(
                    429, f"too many write requests; retry after {retry_after} s", {"Retry-After": retry_after}
                )

    if access.open:
        # No bearer dependency: the OpenAPI document of an open service declares no security scheme.
        async def check_open(request: Request) -> None:
            admit(request, None)

        return check_open

    async def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        admit(request, credentials.credentials if credentials else None)

    return check


def mount_guarded(
    app: FastAPI,
    router: APIRouter,
    access: AccessTokens,
    limiter: RateLimiter | None = None,
    scope: Scope | None = None,
) -> None:
    """Include `router` behind `require_access(access, limiter, scope)`, and document on each of its routes
    the statuses that brings: 401 (tokens configured), 403 (and the route writes), 429 (the route writes and
    the limiter is on). Read routes of an open service keep their documented statuses as they were."""
    app.include_router(router, dependencies=[Depends(require_access(access, limiter, scope))])
    added: list[tuple[str, str, tuple[int, ...]]] = []
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            writes = (scope or ("read" if method in _SAFE_METHODS else "write")) == "write"
            statuses = [s for s, on in ((401, not access.open), (403, writes and not access.open)) if on]
            if writes and limiter is not None and limiter.rate > 0:
                statuses.append(429)
            if statuses:
                added.append((route.path, method.lower(), tuple(statuses)))
    _document_statuses(app, added)


def _document_statuses(app: FastAPI, added: list[tuple[str, str, tuple[int, ...]]]) -> None:
    """Add error statuses to operations of the app's OpenAPI document (FastAPI's documented way to extend it:
    replace `app.openapi`), since a router included with dependencies cannot say which of its routes write."""
    pending: list[tuple[str, str, tuple[int, ...]]] | None = getattr(app.state, "access_statuses", None)
    if pending is not None:  # the document is already extended: add to what it will add
        pending.extend(added)
        return
    pending = app.state.access_statuses = list(added)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
        for path, method, statuses in pending:
            operation = schema.get("paths", {}).get(path, {}).get(method)
            if operation is None:
                continue
            for status in statuses:
                operation.setdefault("responses", {}).setdefault(
                    str(status),
                    {
                        "description": _ERROR_TEXT[status],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                    },
                )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def bearer_auth(token: SecretStr | None) -> Callable[..., Awaitable[None]]:
    """One token for every route (the older single-token form; `require_access` is the scoped one)."""
    secret = (token.get_secret_value().encode(),) if token is not None else ()
    return require_access(AccessTokens(read=secret, write=secret), scope="read")


def bearer_token(ws: WebSocket) -> str | None:
    """The token of an `Authorization: Bearer` header (what non-browser WebSocket clients can send)."""
    header = ws.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


async def refuse_websocket(
    ws: WebSocket, code: int = WS_CLOSE_UNAUTHORIZED, reason: str = "missing, used or expired ticket"
) -> None:
    """Accept and close with `code`, so the client sees why instead of a bare handshake error."""
    await ws.accept()
    await ws.close(code=code, reason=reason)


# --- secrets out of logs -----------------------------------------------------------------------------

# A query parameter that carries a credential (`?ticket=`, `?token=`, `&apiKey=`...): its value is replaced.
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:ticket|token|access_token|api[_-]?key|apikey|key|password|secret|signature|sig)=)[^&;\s\"']*"
)
# An Authorization header's credentials, wherever a message quotes one.
_SECRET_AUTH = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with credential query values and Authorization credentials replaced by `[redacted]`."""
    if "=" in text:
        text = _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    return _SECRET_AUTH.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class SecretRedactor(logging.Filter):
    """Redacts credentials from a record's message and arguments, in place (it never drops a record).

    uvicorn's access log line carries the full path with its query string (`GET /ws?ticket=...`), and its
    WebSocket handshake lines too; the arguments are redacted one by one, so uvicorn's own access formatter,
    which unpacks them, still works. `configure_logging` installs it for every record of the process; for a
    dictConfig of your own, name it as a filter: `{"()": "common.webapp.SecretRedactor"}`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        return True


def _install_redaction() -> None:
    """Redact every record where it is made (the record factory), so no handler, present or added later by
    uvicorn, a library or a test harness, ever sees a credential."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_redacts", False):
        return
    redactor = SecretRedactor()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redactor.filter(record)
        return record

    factory._redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


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
