"""Typed topics encode and decode one way; the retry helpers wait, give up with a reason, and outlive outages."""

from __future__ import annotations

import asyncio
import logging

import pytest

from common.errors import InvalidMessage
from common.retry import until_up, wait_until_up
from common.schemas import DeadLetter, RawArticle
from common.settings import TopicNames
from common.topics import Topics

ARTICLE = RawArticle.model_validate(
    {
        "title": "Chipmaker profit beats forecasts",
        "url": "https://e.com/a",
        "source": "Wire",
        "published_at": "2026-01-01T00:00:00Z",
    }
)


def test_topics_carry_the_prefix_and_key_articles_by_id() -> None:
    topics = Topics.of(TopicNames(prefix="t1."))
    assert topics.names() == ["t1.news.raw", "t1.news.analyzed", "t1.news.dlq", "t1.news.stories.in", "t1.news.stories"]
    record = topics.raw.encode(ARTICLE)
    assert record.key == ARTICLE.id.encode()
    assert topics.raw.decode(record.value) == ARTICLE


def test_decode_says_why_a_record_is_not_an_article() -> None:
    raw = Topics.of(TopicNames()).raw
    kinds = []
    for value in (b"", None, b"{not json", b'{"title": 3}'):
        with pytest.raises(InvalidMessage) as caught:
            raw.decode(value)
        kinds.append(caught.value.kind)
    assert kinds == ["empty", "empty", "not_json", "invalid"]


def test_dead_letters_are_keyed_by_the_original_key() -> None:
    topic = Topics.of(TopicNames()).dead_letters
    letter = DeadLetter.wrap(b"\xff", stage="t", error="bad", key=b"k1")
    record = topic.encode(letter)
    assert record.key == b"k1"
    assert topic.decode(record.value).original_bytes() == b"\xff"


def test_wait_until_up_returns_the_answer_once_the_probe_succeeds() -> None:
    calls = 0

    async def probe() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise OSError("refused")
        return "up"

    assert asyncio.run(wait_until_up("thing", probe, timeout=10)) == "up"
    assert calls == 3


def test_wait_until_up_names_what_and_why_when_it_gives_up() -> None:
    async def probe() -> None:
        raise OSError("connection refused")

    with pytest.raises(TimeoutError, match=r"thing at :1 did not answer within 1s: connection refused"):
        asyncio.run(wait_until_up("thing at :1", probe, timeout=1))


def test_until_up_retries_only_the_named_errors(caplog: pytest.LogCaptureFixture) -> None:
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        async for attempt in until_up("write", on=(ConnectionError,), initial=0.01, most=0.02):
            with attempt:
                attempts += 1
                if attempts < 4:
                    raise ConnectionError("down")
                return attempts
        raise AssertionError("unreachable")

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(flaky()) == 4
    assert sum("write failed (down)" in r.message for r in caplog.records) == 3

    async def wrong() -> None:
        async for attempt in until_up("write", on=(ConnectionError,), initial=0.01):
            with attempt:
                raise ValueError("not an outage")

    with pytest.raises(ValueError, match="not an outage"):
        asyncio.run(wrong())
