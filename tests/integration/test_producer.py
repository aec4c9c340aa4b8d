"""The producer against real Kafka and Redis: no duplicate and no loss across a crash, failing sources
isolated, push answered per item. Remote sources are the local fakes in tests/support/fake_news.py."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from common.errors import ConfigError
from common.kafka import ensure_topics, make_producer, open_producer
from common.metrics import ProducerMetrics
from common.schemas import RawArticle
from common.settings import KafkaSettings, RedisSettings
from harness.processes import ServiceProcess
from producer.dedup import RedisDedup
from producer.kafka_sink import KafkaSink
from producer.service import Publisher
from producer.settings import ProducerSettings
from tests.support.fake_news import VALID_KEY, FeedItem, NewsServer, korean_items, news_server, rss_feed
from tests.support.openapi_fuzz import fuzz

pytestmark = pytest.mark.integration


@pytest.fixture
def fake() -> Iterator[NewsServer]:
    with news_server() as server:
        yield server


async def read_topic(bootstrap: str, topic: str, *, expect: int | None = None, idle: float = 2.0) -> list[Any]:
    """Every record of `topic` from the start; stops at `expect` records or after `idle` seconds of nothing."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records: list[Any] = []
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle and (expect is None or len(records) < expect):
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return records


def _item(n: int) -> dict[str, Any]:
    return {"url": f"https://int.example.org/{n}", "title": f"Story {n}", "published_at": "2024-05-01T10:00:00Z"}


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way handles it."""


class CrashBeforeConfirm(RedisDedup):
    async def confirm(self, ids):
        raise _Crash


async def _publisher(
    kafka_settings: KafkaSettings,
    redis: Redis,
    redis_settings: RedisSettings,
    *,
    run: str,
    dedup_cls: type[RedisDedup] = RedisDedup,
    instance: str = "host-a",
    lease: float = 60.0,
) -> tuple[Publisher, Any]:
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    dedup = dedup_cls(
        redis,
        prefix=f"{redis_settings.key_prefix}producer:",
        instance=instance,
        ttl_seconds=3600,
        lease_seconds=lease,
        run=run,
    )
    metrics = ProducerMetrics.create(CollectorRegistry())
    return Publisher(KafkaSink(producer, kafka_settings), metrics, source="t", dedup=dedup, chunk=10), producer


async def test_crash_between_ack_and_mark_neither_duplicates_nor_loses(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, redis: Redis
) -> None:
    topics = kafka_settings.topics
    await ensure_topics(kafka_settings, [topics.raw_topic, topics.dlq_topic])
    first, producer = await _publisher(kafka_settings, redis, redis_settings, run="run1", dedup_cls=CrashBeforeConfirm)
    with pytest.raises(_Crash):
        await first.publish([_item(n) for n in range(10)])  # all ten acked by Kafka, none marked
    await producer.stop()
    # The restarted process (same instance, new run) meets the same articles and five new ones.
    second, producer = await _publisher(kafka_settings, redis, redis_settings, run="run2")
    results = await second.publish([_item(n) for n in range(15)])
    await producer.stop()
    assert [r.status for r in results] == ["duplicate"] * 10 + ["accepted"] * 5
    assert all("found in Kafka" in (r.reason or "") for r in results[:10])
    records = await read_topic(kafka_settings.bootstrap_servers, topics.raw_topic, expect=15)
    keys = Counter(r.key.decode() for r in records)
    assert len(keys) == 15 and set(keys.values()) == {1}
    # and from now on they are plain duplicates
    third, producer = await _publisher(kafka_settings, redis, redis_settings, run="run3")
    assert {r.status for r in await third.publish([_item(n) for n in range(15)])} == {"duplicate"}
    await producer.stop()


async def test_claims_of_a_dead_process_are_sent_after_its_lease(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, redis: Redis
) -> None:
    topics = kafka_settings.topics
    await ensure_topics(kafka_settings, [topics.raw_topic, topics.dlq_topic])
    # another instance claimed three articles and died before sending anything
    dead = RedisDedup(
        redis,
        prefix=f"{redis_settings.key_prefix}producer:",
        instance="host-b",
        ttl_seconds=3600,
        lease_seconds=1.0,
        run="dead",
    )
    ids = [RawArticle.model_validate(_item(n)).id for n in range(3)]
    assert [c.state for c in await dead.claim(ids)] == ["new"] * 3
    live, producer = await _publisher(kafka_settings, redis, redis_settings, run="live", instance="host-a", lease=1.0)
    assert {r.status for r in await live.publish([_item(n) for n in range(3)])} == {"duplicate"}  # in flight
    await asyncio.sleep(1.1)
    assert {r.status for r in await live.publish([_item(n) for n in range(3)])} == {"accepted"}
    await producer.stop()
    records = await read_topic(kafka_settings.bootstrap_servers, topics.raw_topic, expect=3)
    assert sorted(r.key.decode() for r in records) == sorted(ids)


def _producer_env(fake: NewsServer, namespace: str, **extra: str) -> dict[str, str]:
    return {
        "PRODUCER__POLLING": "false",
        "PRODUCER__INSTANCE_ID": f"{namespace}-producer",
        "PRODUCER__RETRY_ATTEMPTS": "2",
        "PRODUCER__HTTP_TIMEOUT_SECONDS": "3",
        "NEWSAPI__BASE_URL": fake.url,
        **extra,
    }


async def test_fetch_now_isolates_a_failing_source_and_reports_per_source(
    fake: NewsServer, spawn: Callable[..., ServiceProcess], namespace: str, kafka_settings: KafkaSettings
) -> None:
    fake.set_feed("world", rss_feed("World", [FeedItem(f"W{n}", f"https://w.example.org/{n}") for n in range(5)]))
    fake.set_feed("ko", rss_feed("한국 뉴스", korean_items(), language="ko"))
    fake.set_feed("broken", b"<html>not a feed")
    feeds = [
        fake.feed_url("world"),
        {"url": fake.feed_url("ko"), "name": "ko"},
        fake.feed_url("broken"),
        "http://127.0.0.1:9/unreachable.xml",
    ]
    env = _producer_env(
        fake,
        namespace,
        PRODUCER__RSS_FEEDS=orjson.dumps(feeds).decode(),
        NEWSAPI__API_KEY=VALID_KEY,
        NEWSAPI__PAGE_SIZE="50",
        NEWSAPI__MAX_PAGES="5",
        NEWSAPI__QUERIES='[{"country": "us"}, {"endpoint": "everything", "q": "x", "name": "bad"}]',
    )
    proc = spawn("producer", env=env)
    base = f"http://127.0.0.1:{proc.port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        sources = (await client.get("/sources")).json()
        assert {s["name"] for s in sources} == {
            "newsapi:top-headlines:us",
            "bad",
            "rss:127.0.0.1-feeds-world",
            "ko",
            "rss:127.0.0.1-feeds-broken",
            "rss:127.0.0.1-unreachable",
        }
        assert VALID_KEY not in str(sources)
        # make the second NewsAPI query's key refused: the server reads the key per request, so use a fake code
        fake.fail_next("apiKeyInvalid")  # whichever NewsAPI query asks first is disabled
        answer = (await client.post("/fetch-now")).json()
        by_name = {r["source"]: r for r in answer["sources"]}
        assert by_name["rss:127.0.0.1-feeds-world"]["sent"] == 5 and by_name["ko"]["sent"] == 3
        assert by_name["rss:127.0.0.1-feeds-broken"]["error_code"] == "malformed"
        assert by_name["rss:127.0.0.1-unreachable"]["error_code"] == "network"
        newsapi = [by_name["newsapi:top-headlines:us"], by_name["bad"]]
        assert sorted(str(r["error_code"]) for r in newsapi) == ["None", "apiKeyInvalid"]
        assert sum(r["sent"] for r in newsapi) == 100  # the developer cap; the other query was disabled
        assert answer["sent"] == 108 and answer["errors"] == 3
        status = (await client.get("/")).json()
        disabled = [s for s in status["sources"].values() if not s["enabled"]]
        assert len(disabled) == 1 and "apiKeyInvalid" in disabled[0]["disabled_reason"]
        assert status["sources"]["ko"]["last_success"] and status["sources"]["ko"]["sent"] == 3
        assert status["sources"]["rss:127.0.0.1-feeds-broken"]["last_error_code"] == "malformed"
        # one source by name; the feed is unchanged, so 304
        again = (await client.post("/fetch-now", params={"source": "ko"})).json()
        assert again["sources"][0]["not_modified"] and again["sent"] == 0
        assert (await client.post("/fetch-now", params={"source": "nope"})).status_code == 404
        metrics = (await client.get("/metrics")).text
        assert 'news_fetch_errors_total{code="malformed",source="rss:127.0.0.1-feeds-broken"} 1.0' in metrics
    records = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.topics.raw_topic, expect=108)
    assert len(records) == 108 and len({r.key for r in records}) == 108


async def test_default_service_has_no_network_sources_and_push_answers_per_item(
    spawn: Callable[..., ServiceProcess], namespace: str, kafka_settings: KafkaSettings
) -> None:
    proc = spawn("producer", env={"PRODUCER__INSTANCE_ID": f"{namespace}-producer"})
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.port}", timeout=30) as client:
        status = (await client.get("/")).json()
        assert status["sources"] == {} and "no network sources" in status["note"]
        assert (await client.post("/fetch-now")).json()["fetched"] == 0
        first = (await client.post("/articles", json={"articles": [_item(1), _item(2)]})).json()
        assert first["accepted"] == 2
        mixed = [
            _item(1),
            _item(3),
            {**_item(3), "url": "https://INT.example.org/3?utm_source=x#frag"},
        ]
        answer = (await client.post("/articles", json={"articles": mixed})).json()
        assert [i["status"] for i in answer["items"]] == ["duplicate", "accepted", "duplicate"]
        # One bad article refuses the whole request, naming it; nothing of it is produced.
        bad = [
            _item(4),
            {"url": "javascript:alert(1)", "title": "x", "published_at": "2024-01-01"},
            {"title": "no url"},
        ]
        refused = await client.post("/articles", json={"articles": bad})
        assert refused.status_code == 422, refused.text
        assert [e["loc"] for e in refused.json()["detail"]] == [
            ["body", "articles", 1, "url"],
            ["body", "articles", 2, "url"],
        ]
        # NewsAPI's article object as it comes.
        newsapi = {
            "source": {"id": "bbc-news", "name": "BBC News"},
            "author": None,
            "title": "Acme wins contract",
            "description": None,
            "url": "https://int.example.org/newsapi",
            "urlToImage": None,
            "publishedAt": "2024-11-26T05:00:00Z",
            "content": "The company said... [+2829 chars]",
        }
        assert (await client.post("/articles", json={"articles": [newsapi]})).json()["accepted"] == 1
        assert (await client.get("/")).json()["push"]["sent"] == 4
        assert (await client.post("/articles", json={"articles": []})).status_code == 422
    topics = kafka_settings.topics
    raw = await read_topic(kafka_settings.bootstrap_servers, topics.raw_topic, expect=4)
    by_url = {a.url: a for a in (RawArticle.model_validate_json(r.value) for r in raw)}
    assert sorted(by_url) == [f"https://int.example.org/{n}" for n in (1, 2, 3, "newsapi")]
    pushed = by_url["https://int.example.org/newsapi"]
    assert (pushed.source, pushed.content, pushed.published_at.isoformat()) == (
        "BBC News",
        "The company said...",
        "2024-11-26T05:00:00+00:00",
    )
    assert await read_topic(kafka_settings.bootstrap_servers, topics.dlq_topic, idle=1.0) == []


async def test_schemathesis_finds_nothing_against_the_document(
    spawn: Callable[..., ServiceProcess], namespace: str
) -> None:
    """Every check schemathesis has, a fixed seed and a bounded number of cases, against real Kafka and Redis
    (the longer, random run is tests/chaos/test_openapi_fuzz.py)."""
    proc = spawn("producer", env={"PRODUCER__POLLING": "false", "PRODUCER__INSTANCE_ID": f"{namespace}-producer"})
    run = await fuzz("producer", proc.port, seed=21, max_examples=25, max_time=40, timeout=80)
    assert run.returncode == 0 and run.failures == 0, run.output[-8000:]
    assert run.operations >= 7 and run.cases > 100, run.figures()


async def test_restart_mid_poll_produces_each_article_once(
    fake: NewsServer,
    spawn: Callable[..., ServiceProcess],
    namespace: str,
    kafka_settings: KafkaSettings,
    redis: Redis,
    redis_settings: RedisSettings,
) -> None:
    n = 1500
    fake.set_feed("big", rss_feed("Big", [FeedItem(f"Big {i}", f"https://big.example.org/{i}") for i in range(n)]))
    env = _producer_env(
        fake,
        namespace,
        PRODUCER__POLLING="true",
        PRODUCER__RSS_INTERVAL_SECONDS="3600",
        PRODUCER__PUBLISH_CHUNK="10",
        PRODUCER__RSS_FEEDS=f'["{fake.feed_url("big")}"]',
    )
    proc = spawn("producer", env=env)
    pattern = f"{redis_settings.key_prefix}producer:seen:*"
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline:
        values = [await redis.get(k) for k in [k async for k in redis.scan_iter(match=pattern, count=5000)]]
        done = sum(v == b"d" for v in values)
        if done >= 50:
            break
        await asyncio.sleep(0.005)
    proc.kill()  # SIGKILL in the middle of the poll
    assert 0 < done < n, f"the poll was not interrupted ({done} of {n} done)"
    restarted = spawn("producer", env={**env, "PRODUCER__POLLING": "false"})
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{restarted.port}", timeout=60) as client:
        answer = (await client.post("/fetch-now")).json()
    assert answer["errors"] == 0 and answer["sent"] + answer["duplicates"] == n
    records = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.topics.raw_topic, expect=n, idle=3)
    keys = Counter(r.key for r in records)
    assert len(keys) == n, "an article was lost"
    assert max(keys.values()) == 1, "an article was produced twice"


async def test_a_start_up_that_fails_half_way_closes_what_it_opened(
    kafka_settings: KafkaSettings, redis_settings: RedisSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lifespan opens Kafka, Redis and the HTTP client on one AsyncExitStack: when a later step fails (here
    the sources cannot be built), what was opened is closed before the error propagates (seen on the Kafka
    producer, which would otherwise stay started)."""
    import producer.main as main

    opened: dict[str, Any] = {}

    async def recording_producer(*args: Any, **kwargs: Any) -> Any:
        opened["kafka"] = await open_producer(*args, **kwargs)
        return opened["kafka"]

    def broken_sources(_: Any) -> Any:
        raise ConfigError("a source cannot be built")

    monkeypatch.setattr(main, "open_producer", recording_producer)
    monkeypatch.setattr(main, "build_sources", broken_sources)
    settings = ProducerSettings(_env_file=None, kafka=kafka_settings, redis=redis_settings)
    app = main.create_app(settings, registry=CollectorRegistry())
    with pytest.raises(ConfigError, match="cannot be built"):
        async with app.router.lifespan_context(app):
            pytest.fail("started although a step failed")
    assert opened["kafka"]._closed is True
