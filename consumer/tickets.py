"""WebSocket tickets: how a browser authenticates `/ws` without putting a token in a URL.

Browsers cannot set headers on a WebSocket, and a URL ends up in access logs, proxies and history. So the
client first asks `POST /ws/ticket` with its bearer token (REST, a header) and gets a random ticket that is
good for one connection within `TICKET_TTL_SECONDS`; it then opens `/ws?ticket=...`. Tickets live in Redis,
so any consumer replica accepts one another replica issued; a ticket is taken with GETDEL, so it is used at
most once even when two connections race with it. Redis holds only a hash of each ticket: reading Redis
gives nothing that opens a socket. Non-browser clients may send `Authorization: Bearer <read token>` on the
handshake instead.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from fastapi import APIRouter, Request, WebSocket
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import StoreError
from common.webapp import (
    WS_CLOSE_TRY_AGAIN,
    AccessTokens,
    bearer_token,
    error_responses,
    refuse_websocket,
)

__all__ = ["TICKET_TTL_SECONDS", "Ticket", "TicketStore", "authorize_websocket", "ticket_router"]

log = logging.getLogger(__name__)

TICKET_TTL_SECONDS = 30
"""Long enough for a slow browser to open the socket after asking; short enough that a ticket that leaks
(a proxy log) is useless by the time anyone reads it."""


class Ticket(BaseModel):
    ticket: str = Field(description="pass as `/ws?ticket=`: one connection, within `expires_in` seconds")
    expires_in: int = Field(default=TICKET_TTL_SECONDS, description="seconds the ticket stays valid")


class TicketStore:
    """Single-use tickets in Redis under `<prefix>ws-ticket:<sha256 of the ticket>`."""

    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int = TICKET_TTL_SECONDS) -> None:
        self._redis, self._prefix, self._ttl = redis, f"{prefix}ws-ticket:", ttl_seconds

    def _key(self, ticket: str) -> str:
        return self._prefix + hashlib.sha256(ticket.encode()).hexdigest()

    async def issue(self, scope: str = "read") -> str:
        ticket = secrets.token_urlsafe(32)
        try:
            await self._redis.set(self._key(ticket), scope, ex=self._ttl, nx=True)
        except RedisError as exc:
            raise StoreError(f"cannot issue a WebSocket ticket: Redis did not answer ({type(exc).__name__})") from exc
        return ticket

    async def redeem(self, ticket: str) -> bool:
        """True once per issued, unexpired ticket (GETDEL: taking it and deleting it are one step);
        `StoreError` when Redis does not answer (the caller cannot tell, so it must not say "refused")."""
        if not ticket or len(ticket) > 128:
            return False
        try:
            return await self._redis.getdel(self._key(ticket)) is not None
        except RedisError as exc:
            raise StoreError(f"cannot check a WebSocket ticket: Redis did not answer ({type(exc).__name__})") from exc


async def authorize_websocket(ws: WebSocket, access: AccessTokens, tickets: TicketStore) -> bool:
    """True when `ws` may connect: the service is open, its `?ticket=` is fresh and unused, or it sends a
    read-capable `Authorization: Bearer` header. Otherwise the socket is accepted and closed with 4401 (or
    1013, try again later, when Redis cannot say), and False is returned."""
    if access.open:
        return True
    header = bearer_token(ws)
    if header is not None and access.scope_of(header) is not None:
        return True
    ticket = ws.query_params.get("ticket")
    if ticket is not None:
        try:
            if await tickets.redeem(ticket):
                return True
        except StoreError as exc:
            log.warning("WebSocket refused for now: %s", exc)
            await refuse_websocket(ws, WS_CLOSE_TRY_AGAIN, "cannot check the ticket now; retry")
            return False
    await refuse_websocket(ws)
    return False


ticket_router = APIRouter(tags=["live"])


@ticket_router.post("/ws/ticket", response_model=Ticket, responses=error_responses(401, 503))
async def ws_ticket(request: Request) -> Ticket:
    """A single-use ticket for `/ws?ticket=` (browsers cannot send a bearer header on a WebSocket)."""
    store: TicketStore = request.app.state.tickets
    return Ticket(ticket=await store.issue())
