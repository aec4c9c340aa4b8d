"""The WebSocket messages (common.messages): the exact frames, the spliced fast path, the JSON Schemas the
dashboard's types are generated from."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from common.messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    ClientMessage,
    ClientPing,
    Error,
    InitialData,
    Lagged,
    NewAnalysis,
    Ping,
    Pong,
    ServerMessage,
    Subscribe,
    Subscribed,
)
from common.schemas import STORED, AnalyzedArticle
from common.store import ArticleFilters

pytestmark = pytest.mark.unit


def stored_json(n: int) -> str:
    article = AnalyzedArticle.model_validate(
        {
            "url": f"https://example.com/{n}",
            "title": f"Story {n} \u00e9",
            "source": "BBC News",
            "published_at": datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
            "analysis": {"sentiment": "neutral", "sentiment_score": 0.0},
        },
        strict=False,
    )
    return article.model_dump_json()


def test_spliced_frames_are_the_models_frames() -> None:
    raws = [stored_json(1), stored_json(2)]
    articles = [AnalyzedArticle.model_validate_json(r, context=STORED) for r in raws]
    # Without cursor and resumed: exactly the seed's shape, no other keys.
    seed = InitialData.frame_raw(raws)
    assert list(json.loads(seed)) == ["type", "data"]
    assert json.loads(seed) == json.loads(InitialData(data=articles).frame())
    for resumed in (True, False):
        frame = InitialData.frame_raw(raws, cursor="17-3", resumed=resumed)
        assert json.loads(frame) == json.loads(InitialData(data=articles, cursor="17-3", resumed=resumed).frame())
        assert json.loads(frame)["resumed"] is resumed
    assert InitialData.frame_raw([]) == '{"type":"initial_data","data":[]}'
    frame = NewAnalysis.frame_raw(raws[0], "17-4")
    assert json.loads(frame) == json.loads(NewAnalysis(data=articles[0], cursor="17-4").frame())
    for text in [seed, frame, InitialData.frame_raw(raws, cursor="1-0", resumed=False)]:
        SERVER_MESSAGES.validate_json(text, context=STORED)


def test_small_frames_are_compact_and_exact() -> None:
    assert Lagged(dropped=3).frame() == '{"type":"lagged","dropped":3}'
    assert Ping(cursor="5-0").frame() == '{"type":"ping","cursor":"5-0"}'
    assert Pong().frame() == '{"type":"pong"}'
    assert Error(message="not JSON").frame() == '{"type":"error","message":"not JSON"}'
    subscribed = Subscribed(filters=ArticleFilters(source="BBC", language="en")).frame()
    assert json.loads(subscribed) == {"type": "subscribed", "filters": {"source": "BBC", "language": "en"}}
    with pytest.raises(ValidationError):
        Ping(cursor="not a cursor")
    with pytest.raises(ValidationError):
        Lagged(dropped=0)


def test_client_messages() -> None:
    assert isinstance(CLIENT_MESSAGES.validate_json('{"type":"ping"}'), ClientPing)
    assert isinstance(CLIENT_MESSAGES.validate_json('{"type":"pong"}'), Pong)
    sub = CLIENT_MESSAGES.validate_json('{"type":"subscribe","filters":{"entity":"Acme"}}')
    assert isinstance(sub, Subscribe) and sub.filters == ArticleFilters(entity="Acme")
    assert CLIENT_MESSAGES.validate_json('{"type":"subscribe"}') == Subscribe()
    quiet = CLIENT_MESSAGES.validate_json('{"type":"subscribe","stories":false}')
    assert isinstance(quiet, Subscribe) and quiet.stories is False and Subscribe().stories is True
    for bad in ['{"type":"dance"}', '{"type":"subscribe","filters":{"mood":"x"}}', "[]", "{}"]:
        with pytest.raises(ValidationError):
            CLIENT_MESSAGES.validate_json(bad)


def test_json_schemas_name_every_message() -> None:
    """What the dashboard's generated types are built from: one tagged union each way."""
    server = TypeAdapter(ServerMessage).json_schema()
    client = TypeAdapter(ClientMessage).json_schema()
    assert set(server["discriminator"]["mapping"]) == {
        "initial_data",
        "new_analysis",
        "story_update",
        "alert",
        "lagged",
        "ping",
        "pong",
        "subscribed",
        "error",
    }
    assert set(client["discriminator"]["mapping"]) == {"subscribe", "ping", "pong"}
    initial = server["$defs"]["InitialData"]
    assert initial["required"] == ["data"]  # cursor and resumed only when resuming
    assert server["$defs"]["NewAnalysis"]["required"] == ["data", "cursor"]
