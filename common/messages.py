"""The consumer's WebSocket messages, declared once: the server's frames and the client's requests.

The dashboard's TypeScript types are generated from `TypeAdapter(ServerMessage).json_schema()` and
`TypeAdapter(ClientMessage).json_schema()`, so these models are the contract (docs/api.md "WebSocket").

Articles are sent as the store holds them: the frames that carry articles (`InitialData.frame`,
`NewAnalysis.frame`) splice the stored JSON in as it is instead of parsing and serialising it again
(that round trip was most of the fan-out's CPU). The small frames are plain `model_dump_json`.

    hub.send(NewAnalysis.frame(event.json, event.cursor))
    message = CLIENT_MESSAGES.validate_json(text)      # Subscribe | ClientPing | Pong
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from common.alerts import Alert
from common.schemas import AnalyzedArticle
from common.store import ArticleFilters
from common.stories import Story

__all__ = [
    "CLIENT_MESSAGES",
    "AlertMessage",
    "SERVER_MESSAGES",
    "ClientMessage",
    "ClientPing",
    "Error",
    "InitialData",
    "Lagged",
    "NewAnalysis",
    "Ping",
    "Pong",
    "ServerMessage",
    "Subscribe",
    "Subscribed",
    "StoryUpdateMessage",
]

Cursor = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
        description="a position in the event stream (`<ms>-<seq>`); reconnect with `/ws?since=<cursor>` to resume",
    ),
]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    def frame(self) -> str:
        """The text frame as sent: compact JSON, the message's own optional fields left out when None (the
        articles inside keep their nulls)."""
        return self.model_dump_json(exclude={name for name in type(self).model_fields if getattr(self, name) is None})


# --- server to client ---------------------------------------------------------------------------


class InitialData(_Message):
    """First message of every connection: a snapshot (no `since`), or exactly what was missed (`resumed`)."""

    type: Literal["initial_data"] = "initial_data"
    data: list[AnalyzedArticle] = Field(description="newest first")
    cursor: Cursor | None = Field(default=None, description="present when the client asked to resume")
    resumed: bool | None = Field(
        default=None,
        description="true: `data` is exactly what was missed after `since`; false: it could not be, and `data` is "
        "the current snapshot (refill over REST)",
    )

    @staticmethod
    def frame_raw(articles: Iterable[str], *, cursor: str | None = None, resumed: bool | None = None) -> str:
        """The frame for articles given as stored JSON, spliced in as they are.

        Without `cursor` and `resumed` it is exactly the seed's `{"type":"initial_data","data":[...]}`."""
        tail = ""
        if cursor is not None:
            tail += f',"cursor":{json.dumps(cursor)}'
        if resumed is not None:
            tail += f',"resumed":{"true" if resumed else "false"}'
        return f'{{"type":"initial_data","data":[{",".join(articles)}]{tail}}}'


class NewAnalysis(_Message):
    """An article stored (or re-analysed with a different result) that matches the client's filters."""

    type: Literal["new_analysis"] = "new_analysis"
    data: AnalyzedArticle
    cursor: Cursor

    @staticmethod
    def frame_raw(article: str, cursor: str) -> str:
        """The frame for an article given as stored JSON, spliced in as it is."""
        return f'{{"type":"new_analysis","data":{article},"cursor":{json.dumps(cursor)}}}'


class StoryUpdateMessage(_Message):
    """A story changed (an article joined it, or it started, or it stopped growing): its current state.

    Sent to every client that has not turned story updates off (`stories=false` in the query or in
    `subscribe`); the article filters do not apply. Live only: a resuming client is not replayed the
    updates it missed (`GET /stories` has the current state)."""

    type: Literal["story_update"] = "story_update"
    data: Story = Field(description="the story as stored now (as `GET /stories/{id}` has it)")
    article_id: str = Field(description="the article whose assignment produced this update")
    created: bool = Field(description="true when the article started the story")
    duplicate_of: str | None = Field(
        default=None, description="set when the article is a near-duplicate of this earlier article"
    )

    @staticmethod
    def frame_raw(story: str, article_id: str, *, created: bool, duplicate_of: str | None = None) -> str:
        """The frame for a story given as stored JSON, spliced in as it is."""
        tail = "" if duplicate_of is None else f',"duplicate_of":{json.dumps(duplicate_of)}'
        flag = "true" if created else "false"
        return f'{{"type":"story_update","data":{story},"article_id":{json.dumps(article_id)},"created":{flag}{tail}}}'


class AlertMessage(_Message):
    """A watchlist matched (docs/api.md "Timelines, watchlists and alerts"): sent to every client, whatever its filters;
    live only (`GET /alerts` lists the recent ones)."""

    type: Literal["alert"] = "alert"
    data: Alert

    @staticmethod
    def frame_raw(alert: str) -> str:
        """The frame for an alert given as stored JSON, spliced in as it is."""
        return f'{{"type":"alert","data":{alert}}}'


class Lagged(_Message):
    """The client read too slowly: `dropped` matching articles were dropped at this point of the stream."""

    type: Literal["lagged"] = "lagged"
    dropped: int = Field(ge=1)


class Ping(_Message):
    """Heartbeat; its cursor is a valid resume position once the messages before it are delivered."""

    type: Literal["ping"] = "ping"
    cursor: Cursor


class Pong(_Message):
    """Answer to a ping (either way)."""

    type: Literal["pong"] = "pong"


class Subscribed(_Message):
    """Answer to `subscribe`: the filters now in force (only those set)."""

    type: Literal["subscribed"] = "subscribed"
    filters: ArticleFilters

    def frame(self) -> str:
        unset = {name for name in ArticleFilters.model_fields if getattr(self.filters, name) is None}
        return self.model_dump_json(exclude={"filters": unset})


class Error(_Message):
    """A client message or query parameter was refused; the connection stays open, filters unchanged."""

    type: Literal["error"] = "error"
    message: str


ServerMessage = Annotated[
    InitialData | NewAnalysis | StoryUpdateMessage | AlertMessage | Lagged | Ping | Pong | Subscribed | Error,
    Field(discriminator="type"),
]


# --- client to server ---------------------------------------------------------------------------


class Subscribe(_Message):
    """Replace the connection's filters (any subset; `{}` or null clears them) for the articles that follow,
    and whether it receives `story_update` messages (default true)."""

    type: Literal["subscribe"] = "subscribe"
    filters: ArticleFilters = Field(default_factory=ArticleFilters)
    stories: bool = Field(default=True, description="false: no `story_update` messages on this connection")

    @field_validator("filters", mode="before")
    @classmethod
    def _null_clears(cls, value: Any) -> Any:
        return {} if value is None else value


class ClientPing(_Message):
    """Asks for a `pong` (the bare text `ping` does too)."""

    type: Literal["ping"] = "ping"


ClientMessage = Annotated[Subscribe | ClientPing | Pong, Field(discriminator="type")]

SERVER_MESSAGES: TypeAdapter[
    InitialData | NewAnalysis | StoryUpdateMessage | AlertMessage | Lagged | Ping | Pong | Subscribed | Error
] = TypeAdapter(ServerMessage)
CLIENT_MESSAGES: TypeAdapter[Subscribe | ClientPing | Pong] = TypeAdapter(ClientMessage)
