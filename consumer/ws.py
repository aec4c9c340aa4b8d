"""WebSocket fan-out: one bounded queue per client, so a slow client never slows anyone else.

The hub is fed, in stream order, by one reader of the store's event stream per replica (see main.py),
so every replica's clients see every stored article. Each client has its own filters and a position
(a stream id): events at or before it were already covered by what it was sent on connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from common.metrics import ConsumerMetrics
from common.store import ArticleFilters, StoredEvent, stream_id

__all__ = ["Client", "Hub", "filters_error"]

log = logging.getLogger(__name__)


def filters_error(exc: ValidationError) -> str:
    """A one-line reason, e.g. `sentiment: Input should be 'positive', 'neutral' or 'negative'`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'filters'}: {e['msg']}" for e in exc.errors(include_url=False)
    )


class Client:
    def __init__(self, ws: WebSocket, size: int, filters: ArticleFilters) -> None:
        self.ws = ws
        # (sequence number, stream position or None for a notice, message); bounded, so a slow client
        # only costs itself
        self.queue: asyncio.Queue[tuple[int, tuple[int, int] | None, str]] = asyncio.Queue(maxsize=size)
        self.queued = 0  # sequence number of the newest queued message
        self.dropped = 0  # dropped since the last `lagged` notice
        self.gap_after: int | None = None  # the notice goes out after the message with this number
        self.filters = filters
        self.after: tuple[int, int] = (0, 0)  # events at or before this were covered on connect
        self._lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self._lock:  # the sender, heartbeat replies and notices share one socket
            await self.ws.send_text(text)


class Hub:
    def __init__(self, metrics: ConsumerMetrics, *, queue_size: int = 256, ping_interval: float = 20.0) -> None:
        self._clients: set[Client] = set()
        self._metrics = metrics
        self._queue_size = queue_size
        self._ping_interval = ping_interval
        self.position = "0-0"  # the newest event this replica's reader has dispatched

    def __len__(self) -> int:
        return len(self._clients)

    def register(self, ws: WebSocket, filters: ArticleFilters) -> Client:
        """Start queueing events for a client, before its initial data is read, so nothing falls between."""
        client = Client(ws, self._queue_size, filters)
        self._clients.add(client)
        self._metrics.ws_connections.inc()
        return client

    def broadcast(self, event: StoredEvent) -> None:
        """Queue a stored article for every client it matches; a full queue drops it and counts the drop."""
        message = f'{{"type":"new_analysis","data":{event.json},"cursor":"{event.cursor}"}}'
        position = stream_id(event.cursor)
        for client in self._clients:
            if position <= client.after or not client.filters.matches(event.article):
                continue
            self._offer(client, position, message)
        self.position = event.cursor

    def advance(self, position: str) -> None:
        self.position = position

    def _offer(self, client: Client, position: tuple[int, int] | None, message: str, *, count: bool = True) -> None:
        try:
            client.queue.put_nowait((client.queued + 1, position, message))
        except asyncio.QueueFull:
            if count:
                client.dropped += 1
                self._metrics.ws_dropped.inc()
                if client.gap_after is None:
                    client.gap_after = client.queued
            return
        client.queued += 1

    async def serve(self, client: Client, initial: str) -> None:
        """Send `initial`, then the client's queue, until it goes; answers pings and `subscribe` meanwhile."""
        try:
            await client.send(initial)
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._send_loop(client))
                heartbeat = tg.create_task(self._heartbeat(client))
                await self._receive_loop(client)
                sender.cancel()
                heartbeat.cancel()
        except* (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self.unregister(client)
            with contextlib.suppress(Exception):
                await client.ws.close()

    def unregister(self, client: Client) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._metrics.ws_connections.dec()

    async def _send_loop(self, client: Client) -> None:
        while True:
            seq, position, message = await client.queue.get()
            # Skip what was queued while the client's initial data was read, and is covered by it.
            if position is None or position > client.after:
                await client.send(message)
                self._metrics.ws_sent.inc()
            if client.gap_after is not None and seq >= client.gap_after:
                # Where the gap is: after what was queued before the first drop.
                dropped, client.dropped, client.gap_after = client.dropped, 0, None
                await client.send(f'{{"type":"lagged","dropped":{dropped}}}')

    async def _heartbeat(self, client: Client) -> None:
        # In the queue, behind the articles: the cursor it carries is valid once they are delivered.
        # (Dead peers are found by uvicorn's protocol-level pings; this one is for clients' idle timers.)
        while True:
            await asyncio.sleep(self._ping_interval)
            position = self.position
            if stream_id(position) < client.after:
                position = "{}-{}".format(*client.after)
            self._offer(client, None, f'{{"type":"ping","cursor":"{position}"}}', count=False)

    async def _receive_loop(self, client: Client) -> None:
        while True:
            text = await client.ws.receive_text()
            if text == "ping":
                await client.send('{"type":"pong"}')
                continue
            reply = self.handle(client, text)
            if reply is not None:
                await client.send(reply)

    def handle(self, client: Client, text: str) -> str | None:
        """Answer one client message: `ping`, `pong` or `subscribe`; anything else gets an `error`."""
        try:
            message: Any = json.loads(text)
        except ValueError:
            return _error("not JSON")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            return '{"type":"pong"}'
        if kind == "pong":
            return None
        if kind == "subscribe":
            try:
                client.filters = ArticleFilters.model_validate(message.get("filters") or {})
            except ValidationError as exc:
                return _error(f"subscribe: {filters_error(exc)}")
            return json.dumps({"type": "subscribed", "filters": client.filters.model_dump(exclude_none=True)})
        return _error(f"unknown message type {str(kind)[:40]!r} (expected ping, pong or subscribe)")


def _error(message: str) -> str:
    return json.dumps({"type": "error", "message": message})
