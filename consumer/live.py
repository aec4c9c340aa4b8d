"""The live feed's service logic, on the store alone (no Kafka, no sockets): what a connecting client is
sent first (a snapshot, or exactly what it missed), the relay of the store's event stream to the hub,
and the sweep of expired articles out of the indexes.

The stream rather than pub/sub: a replica that loses Redis for a moment picks up where it was, and the
same stream lets a reconnecting client resume from its cursor, on any replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from common.errors import StoreError
from common.messages import InitialData, StoryUpdateMessage
from common.retry import until_up
from common.store import ArticleFilters, ArticleStore, StoredEvent, stream_id
from common.story_store import StoryStore

__all__ = [
    "Relay",
    "StoryRelay",
    "fan_out",
    "fan_out_stories",
    "initial_data",
    "missed",
    "snapshot",
    "sweep",
    "tail",
]

T = TypeVar("T")

log = logging.getLogger(__name__)


class Relay(Protocol):
    """Where `fan_out` delivers events (the hub)."""

    def broadcast(self, event: StoredEvent) -> None: ...

    def advance(self, position: str) -> None: ...


class StoryRelay(Protocol):
    """Where `fan_out_stories` delivers `story_update` frames (the hub)."""

    def broadcast_story(self, frame: str) -> None: ...


async def snapshot(store: ArticleStore, filters: ArticleFilters, limit: int) -> list[str]:
    """The newest `limit` matching articles as stored JSON, newest first."""
    return (await store.query("recent", limit, filters=filters)).raw if limit else []


async def missed(
    store: ArticleStore, since: str, head: str, filters: ArticleFilters, most: int
) -> list[StoredEvent] | None:
    """Every matching article stored after `since` up to `head`, newest first, each once (its current
    analysis); None when that cannot be exact (trimmed from the stream, or more than `most`)."""
    if not await store.can_resume(since):
        return None
    end = stream_id(head)
    found: dict[str, StoredEvent] = {}
    position = since
    while stream_id(position) < end:
        reached, events = await store.events_after(position, count=500)
        if reached == position:
            break
        position = reached
        for event in events:
            if stream_id(event.cursor) <= end and filters.matches(event.article):
                found.pop(event.article.id, None)  # re-insert: the newest entry decides the order
                found[event.article.id] = event
        if len(found) > most:
            return None
    return list(reversed(found.values()))


async def initial_data(
    store: ArticleStore,
    filters: ArticleFilters,
    *,
    head: str,
    since: str | None,
    asked_to_resume: bool,
    snapshot_limit: int,
    resume_max: int,
) -> str:
    """The first frame of a connection. Without `since`: the snapshot in the seed's exact shape (or, when
    the client asked to resume with a cursor that was refused, with `resumed: false`). With `since`: what
    was missed (`resumed: true`), or the snapshot when that cannot be exact (`resumed: false`)."""
    if since is not None:
        events = await missed(store, since, head, filters, resume_max)
        if events is not None:
            return InitialData.frame_raw((e.json for e in events), cursor=head, resumed=True)
    articles = await snapshot(store, filters, snapshot_limit)
    if since is None and not asked_to_resume:
        return InitialData.frame_raw(articles)
    return InitialData.frame_raw(articles, cursor=head, resumed=False)


async def fan_out(store: ArticleStore, relay: Relay) -> None:
    """Relay the store's event stream to this replica's clients, in stream order, for ever; a Redis outage
    is waited out and the relay continues from where it was."""
    position: str | None = None
    while True:
        async for attempt in until_up("reading the event stream", on=(StoreError,), initial=0.5, logger=log):
            with attempt:
                if position is None:
                    position = await store.last_cursor()
                    relay.advance(position)
                position, events = await store.read_events(position, block_ms=5_000)
                for event in events:
                    relay.broadcast(event)
                    # A turn for every client's sender before the next event: the consumer stores a batch in one
                    # round trip, so events come in bursts, which must not overflow the queue of a client that
                    # reads (only one that does not read should lose messages).
                    await asyncio.sleep(0)
                relay.advance(position)


async def tail(
    what: str,
    start: Callable[[], Awaitable[str]],
    read: Callable[[str], Awaitable[tuple[str, Sequence[T]]]],
    deliver: Callable[[T], None],
) -> None:
    """Follow a Redis stream from `start()` (its newest position) for ever, handing each entry to `deliver`
    in stream order; a Redis outage is waited out and reading continues from where it was."""
    position: str | None = None
    while True:
        async for attempt in until_up(f"reading {what}", on=(StoreError,), initial=0.5, logger=log):
            with attempt:
                if position is None:
                    position = await start()
                position, items = await read(position)
                for item in items:
                    deliver(item)


async def fan_out_stories(stories: StoryStore, relay: StoryRelay) -> None:
    """Relay stored story updates to this replica's clients as `story_update` frames, from the newest at
    start (story updates are live only: `GET /stories` has the state)."""
    await tail(
        "the story stream",
        stories.last_position,
        lambda position: stories.read_events(position, block_ms=5_000),
        lambda event: relay.broadcast_story(
            StoryUpdateMessage.frame_raw(
                event.story_json, event.article_id, created=event.created, duplicate_of=event.duplicate_of
            )
        ),
    )


async def sweep(store: ArticleStore, interval: float, stories: StoryStore | None = None) -> None:
    """Take expired articles (and stories) out of every index every `interval` seconds (reads skip them
    anyway; this keeps the indexes small)."""
    while True:
        async for attempt in until_up("sweeping expired articles", on=(StoreError,), most=interval, logger=log):
            with attempt:
                while await store.sweep() >= 1_000:
                    pass
                while stories is not None and await stories.sweep() >= 1_000:
                    pass
        await asyncio.sleep(interval)
