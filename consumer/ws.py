"""The live WebSocket `/ws`: the route, and the hub that fans stored articles out to its clients.

One bounded queue per client, so a slow client never slows anyone else. The hub is fed, in stream order,
by one reader of the store's event stream per replica (`consumer.live.fan_out`), so every replica's
clients see every stored article. Each client has its own filters and a position (a stream id): events at
or before it were already covered by what it was sent on connect. Every frame is a `common.messages` model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from common.messages import CLIENT_MESSAGES, ClientPing, Error, Lagged, NewAnalysis, Ping, Pong, Subscribe, Subscribed
from common.metrics import ConsumerMetrics
from common.store import ArticleFilters, ArticleStore, StoredEvent, stream_id
from consumer.live import initial_data
from consumer.settings import ConsumerSettings
from consumer.tickets import authorize_websocket

__all__ = ["Client", "Hub", "filters_error", "ws_router"]

log = logging.getLogger(__name__)


def filters_error(exc: ValidationError, *, skip: int = 0) -> str:
    """A one-line reason, e.g. `sentiment: Input should be 'positive', 'neutral' or 'negative'` (`skip`
    drops leading parts of each location, such as a message's `subscribe.filters`)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][skip:]) or 'filters'}: {e['msg']}" for e in exc.errors(include_url=False)
    )


class Client:
    def __init__(self, ws: WebSocket, size: int, filters: ArticleFilters, *, stories: bool = True) -> None:
        self.ws = ws
        self.stories = stories  # whether it receives `story_update` messages
        # (sequence number, stream position or None for a notice, message); bounded, so a slow client
        # only costs itself. consumer/graphql.py reads these items too (the frame is the last element).
        self.queue: asyncio.Queue[tuple[int, tuple[int, int] | None, str]] = asyncio.Queue(maxsize=size)
        self.queued = 0  # sequence number of the newest queued message
        self.dropped = 0  # dropped since the last `lagged` notice
        self.gap_after: int | None = None  # the notice goes out after the message with this number
        self.filters = filters
        self.after: tuple[int, int] = (0, 0)  # events at or before this were covered on connect
        self.served = False  # a /ws client (heartbeats); a GraphQL subscription only reads the queue
        self._lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self._lock:  # the sender and the replies to client messages share one socket
            await self.ws.send_text(text)


class Hub:
    """Every connected client and its queue. Built for thousands of clients on one process: a frame is
    built once per event and the same string queued for every client; a filter is evaluated once per
    distinct filter per event, not once per client; each client costs one sender task (its handler task
    reads), and one hub-wide task sends the heartbeats."""

    def __init__(self, metrics: ConsumerMetrics, *, queue_size: int = 256, ping_interval: float = 20.0) -> None:
        self._clients: set[Client] = set()
        self._metrics = metrics
        self._queue_size = queue_size
        self._ping_interval = ping_interval
        self._heartbeats: asyncio.Task[None] | None = None
        self.position = "0-0"  # the newest event this replica's reader has dispatched

    def __len__(self) -> int:
        return len(self._clients)

    def register(self, ws: WebSocket, filters: ArticleFilters, *, stories: bool = True) -> Client:
        """Start queueing events for a client, before its initial data is read, so nothing falls between."""
        client = Client(ws, self._queue_size, filters, stories=stories)
        self._clients.add(client)
        self._metrics.ws_connections.inc()
        return client

    def broadcast(self, event: StoredEvent) -> None:
        """Queue a stored article for every client it matches; a full queue drops it and counts the drop."""
        message = NewAnalysis.frame_raw(event.json, event.cursor)
        position = stream_id(event.cursor)
        matched: dict[ArticleFilters, bool] = {}  # most clients share a few filters (most: none at all)
        for client in self._clients:
            if position <= client.after:
                continue
            filters = client.filters
            match = matched.get(filters)
            if match is None:
                match = matched[filters] = filters.matches(event.article)
            if match:
                self._offer(client, position, message)
        self.position = event.cursor

    def advance(self, position: str) -> None:
        self.position = position

    def broadcast_story(self, frame: str) -> None:
        """Queue a `story_update` frame for every client that takes them (not filtered, not resumable);
        a full queue drops it and counts the drop like an article's."""
        for client in self._clients:
            if client.stories:
                self._offer(client, None, frame)

    def broadcast_alert(self, frame: str) -> None:
        """Queue an `alert` frame for every client (alerts are not filtered; `consumer.alerts`)."""
        for client in self._clients:
            self._offer(client, None, frame)

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
        sender: asyncio.Task[None] | None = None
        try:
            await client.send(initial)
            client.served = True
            if self._heartbeats is None or self._heartbeats.done():
                self._heartbeats = asyncio.create_task(self._heartbeat(), name="ws-heartbeats")
            sender = asyncio.create_task(self._send_loop(client))
            # This task reads; the sender ends the connection by failing (a dead socket), which the
            # receive loop then sees too (a disconnect).
            receiver = asyncio.ensure_future(self._receive_loop(client))
            await asyncio.wait((sender, receiver), return_when=asyncio.FIRST_COMPLETED)
            for task in (sender, receiver):
                task.cancel()
            for outcome in await asyncio.gather(sender, receiver, return_exceptions=True):
                if isinstance(outcome, Exception) and not isinstance(outcome, _GONE):
                    raise outcome  # a bug, not a client that left
        except _GONE:
            pass
        finally:
            if sender is not None:
                sender.cancel()
            self.unregister(client)
            with contextlib.suppress(Exception):
                await client.ws.close()

    def unregister(self, client: Client) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._metrics.ws_connections.dec()
        client.served = False
        if not self._clients and self._heartbeats is not None:
            self._heartbeats.cancel()
            self._heartbeats = None

    async def _send_loop(self, client: Client) -> None:
        queue = client.queue
        while True:
            seq, position, message = await queue.get()
            # Skip what was queued while the client's initial data was read, and is covered by it.
            if position is None or position > client.after:
                await client.send(message)
                self._metrics.ws_sent.inc()
            if client.gap_after is not None and seq >= client.gap_after:
                # Where the gap is: after what was queued before the first drop.
                dropped, client.dropped, client.gap_after = client.dropped, 0, None
                await client.send(Lagged(dropped=dropped).frame())

    async def _heartbeat(self) -> None:
        # One task for every client: in each queue, behind the articles, so the cursor it carries is valid
        # once they are delivered. (Dead peers are found by uvicorn's protocol-level pings; this one is for
        # clients' idle timers.)
        while self._clients:
            await asyncio.sleep(self._ping_interval)
            position = self.position
            at = stream_id(position)
            frames: dict[str, str] = {}  # one frame per cursor (almost always one for all)
            for client in list(self._clients):
                if client.served:
                    cursor = position if at >= client.after else "{}-{}".format(*client.after)
                    frame = frames.get(cursor) or frames.setdefault(cursor, Ping(cursor=cursor).frame())
                    self._offer(client, None, frame, count=False)

    async def _receive_loop(self, client: Client) -> None:
        while True:
            text = await client.ws.receive_text()
            reply = self.handle(client, text)
            if reply is not None:
                await client.send(reply)

    def handle(self, client: Client, text: str) -> str | None:
        """Answer one client message (`ClientMessage`, or the bare text `ping`); anything else gets an `error`."""
        if text == "ping":
            return _PONG
        try:
            message = CLIENT_MESSAGES.validate_json(text)
        except ValidationError as exc:
            return Error(message=_refusal(exc)).frame()
        if isinstance(message, ClientPing):
            return _PONG
        if isinstance(message, Subscribe):
            client.filters = message.filters
            client.stories = message.stories
            return Subscribed(filters=message.filters).frame()
        return None  # a pong


_PONG = Pong().frame()
_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # how a client that left shows


def _refusal(exc: ValidationError) -> str:
    """Why a client message was refused, in one line."""
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return "not JSON"
    loc = first["loc"]
    if not loc or first["type"] in ("union_tag_invalid", "union_tag_not_found"):  # not an object, or no known type
        kind = first["input"].get("type") if isinstance(first["input"], dict) else None
        return f"unknown message type {str(kind)[:40]!r} (expected ping, pong or subscribe)"
    # ('subscribe', 'filters', 'sentiment') -> "subscribe: sentiment: ..."; ('subscribe', 'filters') -> "filters"
    return f"{loc[0]}: {filters_error(exc, skip=2 if len(loc) > 2 and loc[1] == 'filters' else 1)}"


# --- the route ----------------------------------------------------------------------------------

ws_router = APIRouter()


@ws_router.websocket("/ws")
async def live(ws: WebSocket) -> None:
    """See docs/api.md "WebSocket": `initial_data`, then `new_analysis` per stored article and `story_update` per
    stored story update (`?stories=false` turns those off); `?since=` resumes the articles."""
    state = ws.app.state
    settings: ConsumerSettings = state.settings
    if not await authorize_websocket(ws, state.access, state.tickets):  # `?ticket=` (consumer/tickets.py)
        return
    await ws.accept()
    store: ArticleStore = state.store
    hub: Hub = state.hub
    errors: list[str] = []
    try:
        filters = ArticleFilters.model_validate(
            {k: v for k, v in ws.query_params.items() if k in ArticleFilters.model_fields}
        )
    except ValidationError as exc:
        errors.append(f"filters ignored: {filters_error(exc)}")
        filters = ArticleFilters()
    stories = True
    if "stories" in ws.query_params:
        flag = ws.query_params["stories"].strip().lower()
        if flag in ("false", "0", "no", "off"):
            stories = False
        elif flag not in ("true", "1", "yes", "on"):
            errors.append(f"stories: {flag[:40]!r} is not true or false; story updates stay on")
    since = ws.query_params.get("since")
    if since is not None:
        try:
            stream_id(since)
        except ValueError:
            errors.append(f"since: {since[:40]!r} is not a cursor from this server; sending current data")
            since = None
    client = hub.register(ws, filters, stories=stories)
    try:
        for error in errors:
            await client.send(Error(message=error).frame())
        head = await store.last_cursor()
        client.after = stream_id(head)
        initial = await initial_data(
            store,
            filters,
            head=head,
            since=since,
            asked_to_resume="since" in ws.query_params,
            snapshot_limit=settings.consumer.initial_data_limit,
            resume_max=settings.consumer.resume_max,
        )
    except BaseException:
        hub.unregister(client)
        raise
    await hub.serve(client, initial)
