"""WebSocket fan-out: one bounded queue per client, so a slow client never slows anyone else."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import WebSocket, WebSocketDisconnect

from common.metrics import ConsumerMetrics

__all__ = ["Hub"]

log = logging.getLogger(__name__)


class _Client:
    def __init__(self, ws: WebSocket, size: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.dropped = 0


class Hub:
    def __init__(self, metrics: ConsumerMetrics, *, queue_size: int = 256) -> None:
        self._clients: set[_Client] = set()
        self._metrics = metrics
        self._queue_size = queue_size

    def __len__(self) -> int:
        return len(self._clients)

    def broadcast(self, article_json: str) -> None:
        """Queue a stored article for every client; a full queue drops it and counts the drop."""
        message = f'{{"type":"new_analysis","data":{article_json}}}'
        for client in self._clients:
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                client.dropped += 1
                self._metrics.ws_dropped.inc()

    async def serve(self, ws: WebSocket, initial: str) -> None:
        client = _Client(ws, self._queue_size)
        self._clients.add(client)
        self._metrics.ws_connections.inc()
        try:
            await ws.send_text(initial)
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._send_loop(client))
                await self._receive_loop(ws)
                sender.cancel()
        except* (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._clients.discard(client)
            self._metrics.ws_connections.dec()
            with contextlib.suppress(Exception):
                await ws.close()

    async def _send_loop(self, client: _Client) -> None:
        while True:
            message = await client.queue.get()
            if client.dropped:
                dropped, client.dropped = client.dropped, 0
                await client.ws.send_text(f'{{"type":"lagged","dropped":{dropped}}}')
            await client.ws.send_text(message)
            self._metrics.ws_sent.inc()

    async def _receive_loop(self, ws: WebSocket) -> None:
        while True:
            text = await ws.receive_text()
            if text in {"ping", '{"type":"ping"}'}:
                await ws.send_text('{"type":"pong"}')
