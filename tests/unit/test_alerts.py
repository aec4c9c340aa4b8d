"""The burst detector, alert ids, webhook signatures and the watchlist shapes (common/alerts.py): the
detector must stay quiet on flat series and fire on planted surges. Last, the alert service's article and
story rules on a real Redis (consumer/alerts.py), each match alerting once, and the webhook outbox on a real
Redis: one replica per delivery, leases renewed or taken over, attempts counted across takeovers, bounded."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from redis.asyncio import Redis

from common.alerts import Alert, StorySizeRule, WatchlistIn, alert_id, burst, poisson_sf, sign, verify
from common.messages import SERVER_MESSAGES, AlertMessage
from common.metrics import ConsumerMetrics
from common.settings import RedisSettings
from common.timelines import TimelineStore
from consumer.alerts import AlertService, AlertStore
from consumer.settings import AlertConfig
from tests.integration.test_consumer_stories import updates_for
from tests.integration.test_store import make_article


def test_poisson_tail_matches_the_closed_form() -> None:
    for mean in (0.5, 1.0, 4.0, 30.0):
        for count in (0, 1, 3, 10, 40):
            exact = 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(count))
            assert poisson_sf(count, mean) == pytest.approx(max(exact, 0.0), rel=1e-9, abs=1e-12)
    assert 0 < poisson_sf(2_000, 10.0) < 1e-300 or poisson_sf(2_000, 10.0) == 0.0  # no overflow


def test_documented_thresholds() -> None:
    assert burst(1, []) is None  # a first mention is never a surge
    assert burst(5, [0] * 24) is None  # p = 0.0037 against the floor
    found = burst(6, [0] * 24)
    assert found is not None and found.baseline == 1.0 and found.p_value == pytest.approx(0.000594, rel=1e-2)
    assert burst(10, [4] * 24) is None  # p = 0.008
    assert burst(25, [4] * 24) is not None


def test_flat_series_never_fire_and_surges_do() -> None:
    rng = random.Random(15)
    for level in (0.2, 1, 3, 8, 20, 50):
        series = [sum(rng.random() < level / 100 for _ in range(100)) for _ in range(200)]
        fired = [burst(series[i], series[i - 24 : i]) for i in range(24, len(series))]
        assert not any(fired), (level, series)
        # The same history with a planted surge of four times the level (and at least 8) fires.
        surge = max(8, int(level * 4))
        assert burst(surge, series[-24:]) is not None, (level, surge)


def test_deterministic() -> None:
    assert burst(30, [3, 4, 2, 5]) == burst(30, [3, 4, 2, 5])
    assert alert_id("w", 0, "org:acme", 900) == alert_id("w", 0, "org:acme", 900)
    assert (
        len({alert_id("w", 0, "org:acme", 900), alert_id("w", 0, "org:acme", 1800), alert_id("w", 1, "org:acme", 900)})
        == 3
    )


def test_signature_round_trip() -> None:
    body = b'{"id":"x"}'
    header = sign(body, "s3cret")
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify(body, "s3cret", header)
    assert not verify(body + b" ", "s3cret", header)
    assert not verify(body, "other", header) and not verify(body, "s3cret", None)


def test_watchlist_shape() -> None:
    spec = WatchlistIn.model_validate(
        {
            "name": "Acme",
            "rules": [
                {"kind": "entity", "entity": "org:acme"},
                {"kind": "sentiment_below", "threshold": -0.5},
                {"kind": "story_size_above", "threshold": 10},
                {"kind": "entity_spike", "entity": "org:acme"},
            ],
            "webhook_url": "http://127.0.0.1:8080/hook?x=1",
        }
    )
    assert WatchlistIn.model_validate_json('{"name":"x","rules":[{"kind":"story_size_above","threshold":12.0}]}').rules[
        0
    ] == StorySizeRule(kind="story_size_above", threshold=12)
    assert [r.kind for r in spec.rules] == ["entity", "sentiment_below", "story_size_above", "entity_spike"]
    bad = [
        {"name": "x", "rules": []},
        {"name": " ", "rules": [{"kind": "keyword", "keyword": "a"}]},
        {"name": "x", "rules": [{"kind": "nope"}]},
        {"name": "x", "rules": [{"kind": "sentiment_below", "threshold": -2}]},
        {"name": "x", "rules": [{"kind": "source", "source": "a"}], "webhook_url": "ftp://x"},
        {"name": "x", "rules": [{"kind": "source", "source": "a", "extra": 1}]},
        {"name": "x", "rules": [{"kind": "story_size_above", "threshold": 12.5}]},
        {"name": "x", "rules": [{"kind": "story_size_above", "threshold": "12"}]},
        {"name": "x", "rules": [{"kind": "sentiment_below", "threshold": False}]},
        {"name": "x", "rules": [{"source": "a"}]},
    ]
    for body in bad:
        with pytest.raises(ValidationError):
            WatchlistIn.model_validate(body)


def test_alert_message_frame_is_a_server_message() -> None:
    alert = Alert.model_validate(
        {
            "id": "a" * 32,
            "watchlist_id": "b" * 32,
            "watchlist_name": "w",
            "rule": {"kind": "keyword_spike", "keyword": "flood"},
            "kind": "spike",
            "subject": "flood",
            "message": "m",
            "created_at": "2026-01-01T00:00:00Z",
            "count": 9,
        }
    )
    frame = AlertMessage.frame_raw(alert.model_dump_json())
    parsed = SERVER_MESSAGES.validate_json(frame)
    assert isinstance(parsed, AlertMessage) and parsed.data == alert
    assert AlertMessage(data=alert).frame() == frame


async def test_article_and_story_rules_alert_once(redis: Redis, redis_settings: RedisSettings) -> None:
    """The service on a real Redis: article rules, story size, each alert once however often it is seen."""
    prefix, ttl = redis_settings.key_prefix, 3600
    metrics = ConsumerMetrics.create(CollectorRegistry())
    alerts = AlertStore(redis, prefix=prefix, ttl_seconds=ttl)
    service = AlertService(TimelineStore(redis, prefix=prefix, ttl_seconds=ttl), alerts, AlertConfig(), metrics)
    spec = WatchlistIn.model_validate(
        {
            "name": "mixed",
            "rules": [
                {"kind": "entity", "entity": "ORG:Acme"},
                {"kind": "sentiment_below", "threshold": -0.5},
                {"kind": "source", "source": "lone wire"},
                {"kind": "story_size_above", "threshold": 2},
            ],
        }
    )
    created = await alerts.create(spec)
    now = datetime.now(UTC)
    articles = [
        make_article(1, entities=("Acme",), published=now, analyzed=now),
        make_article(2, score=-0.9, sentiment="negative", source="Lone Wire", published=now, analyzed=now),
        make_article(3, published=now, analyzed=now),
    ]
    updates = updates_for(articles)
    for _ in range(2):  # the batch, then its re-delivery
        await service.after_batch(articles, updates)
    listed = [Alert.model_validate_json(a) for a in await alerts.recent_json(50)]
    got = sorted((a.rule.kind, a.subject) for a in listed)
    assert got == sorted(
        [
            ("entity", articles[0].id),
            ("sentiment_below", articles[1].id),
            ("source", articles[1].id),
            ("story_size_above", articles[0].id),  # the story's id is its first article's
        ]
    )
    assert all(a.watchlist_id == created.id for a in listed)
    assert await alerts.recent_json(50, "0" * 32) == []
    _, streamed = await alerts.read("0-0", block_ms=1)
    assert len(streamed) == 4
    assert [w.id for w, _ in await alerts.with_secrets()] == [created.id]
    assert await alerts.delete(created.id) and not await alerts.delete(created.id)


def _alert(n: int) -> Alert:
    return Alert(
        id=f"{n:032x}",
        watchlist_id="b" * 32,
        watchlist_name="w",
        rule=StorySizeRule(kind="story_size_above", threshold=1),
        kind="story_size",
        subject=f"story-{n}",
        message="m",
        created_at=datetime.now(UTC),
    )


async def test_webhook_outbox_leases_takeovers_and_bound(redis: Redis, redis_settings: RedisSettings) -> None:
    """The outbox the webhook senders share: each delivery is read by one replica; a lease renewed is kept, a
    lapsed one is taken over (and its old holder can no longer renew it); attempts outlive the holder; a full
    outbox refuses (the alert is still raised); a finished delivery is gone."""
    store = AlertStore(redis, prefix=redis_settings.key_prefix, ttl_seconds=3600)
    await store.ensure_delivery_group()
    await store.ensure_delivery_group()  # a second replica starting: the group exists, no error
    hook = ("http://127.0.0.1:9/hook", "s3cret")
    raised = [await store.raise_alert(_alert(i), hook, queue_max=2) for i in range(3)]
    assert raised == ["raised", "raised", "refused"]
    assert await store.raise_alert(_alert(0), hook, queue_max=2) == "exists"
    assert await store.raise_alert(_alert(9), None, queue_max=2) == "raised"  # no webhook: nothing queued
    assert len(await store.recent_json(10)) == 4 and await store.pending_deliveries() == 2

    [first] = await store.read_deliveries("a", 1, 10)
    [second] = await store.read_deliveries("b", 10, 10)
    assert await store.read_deliveries("c", 10, 10) == []  # each delivery went to one replica only
    assert {first.alert_id, second.alert_id} == {_alert(0).id, _alert(1).id}
    for delivery in (first, second):
        assert delivery.url == hook[0] and verify(delivery.body, hook[1], delivery.signature)
        assert Alert.model_validate_json(delivery.body).id == delivery.alert_id

    assert await store.claim_deliveries("c", 300, 10, "0-0") == ("0-0", [])  # nothing lapsed yet
    await asyncio.sleep(0.4)
    assert await store.keep_deliveries("a", [first.entry_id, second.entry_id]) == 1  # only its own
    assert await store.record_attempt(second.entry_id) == 1
    await store.record_error(second.entry_id, "HTTP 503")
    _, taken = await store.claim_deliveries("c", 300, 10, "0-0")
    assert [d.entry_id for d in taken] == [second.entry_id]  # b lapsed; a renewed
    assert await store.keep_deliveries("b", [second.entry_id]) == 0  # b lost it to c
    assert await store.record_attempt(second.entry_id) == 2  # the budget spans the takeover
    assert await store.attempts_made(second.entry_id) == (2, "HTTP 503")

    for delivery in (first, second):
        await store.finish_delivery(delivery.entry_id)
    assert await store.pending_deliveries() == 0
    assert await store.attempts_made(second.entry_id) == (0, None)
    assert await store.raise_alert(_alert(5), hook, queue_max=2) == "raised"  # room again
    await asyncio.sleep(0.4)
    assert await store.claim_deliveries("c", 300, 10, "0-0") == ("0-0", [])  # never read: nothing to take
    assert [d.alert_id for d in await store.read_deliveries("c", 10, 10)] == [_alert(5).id]
