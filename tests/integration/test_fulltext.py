"""Full article text (producer/fulltext.py) against saved article pages served by a local HTTP server
(tests/support/pages): extraction of the main text, robots.txt, size and time bounds, per-host concurrency,
failures counted by source and reason; and end to end, a NewsAPI article with a truncated body (from the
fake NewsAPI server) stored in Kafka's raw topic with its extracted full text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from common.metrics import ProducerMetrics
from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from producer.fulltext import FullText, FullTextFailure, needs_full_text
from producer.settings import FullTextSettings
from tests.integration.test_producer import _producer_env, read_topic
from tests.support.fake_news import VALID_KEY, news_server, newsapi_article
from tests.support.pages.server import PageServer, page_server

pytestmark = pytest.mark.integration

BRIDGE_SENTENCES = (
    "Engineers replaced 312 corroded steel cables",
    "The cables we took out were older than most of the people who cross it.",
    "A second phase of work, to repaint the towers",
)
BRIDGE_CLUTTER = ("Accept all cookies", "Switch your energy supplier", "bridgewatcher", "Privacy policy", "Subscribe")


@pytest.fixture
def pages() -> Iterator[PageServer]:
    with page_server(slow_seconds=3.0) as server:
        yield server


def settings(**overrides: object) -> FullTextSettings:
    return FullTextSettings.model_validate({"enabled": True, "timeout_seconds": 2.0, **overrides})


async def test_main_text_is_extracted_without_the_page_around_it(pages: PageServer) -> None:
    fetcher = FullText(settings())
    async with httpx.AsyncClient() as client:
        bridge = await fetcher.fetch_text(pages.page("harbour-bridge.html"), client)
        wind = await fetcher.fetch_text(pages.page("wind-farm.html"), client)
    for sentence in BRIDGE_SENTENCES:
        assert sentence in bridge
    for clutter in BRIDGE_CLUTTER:
        assert clutter not in bridge
    assert "84 turbines" in wind and "judicial review" in wind
    assert "Most read" not in wind and "Sign in" not in wind and "Careers" not in wind


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("private/leak.html", "robots"),
        ("missing.html", "http_4xx"),
        ("robots.txt", "not_html"),
        ("huge.html", "too_large"),
        ("slow/harbour-bridge.html", "timeout"),
    ],
)
async def test_each_failure_has_its_reason(pages: PageServer, path: str, reason: str) -> None:
    fetcher = FullText(settings(max_bytes=1024 * 1024, timeout_seconds=1.0))
    async with httpx.AsyncClient() as client:
        with pytest.raises(FullTextFailure) as failed:
            await fetcher.fetch_text(pages.page(path), client)
    assert failed.value.reason == reason
    if reason == "robots":
        assert "/private/leak.html" not in pages.requests  # never fetched


async def test_enrich_keeps_every_article_and_counts_failures_by_source_and_reason(pages: PageServer) -> None:
    fetcher = FullText(settings())
    metrics = ProducerMetrics.create(CollectorRegistry())
    lead = "The harbour bridge reopened to traffic at six o'clock on Tuesday morning…"
    items = [
        {"url": pages.page("harbour-bridge.html"), "title": "Bridge", "content": lead},
        {"url": pages.page("private/leak.html"), "title": "Leak", "description": "A short lead."},
        {"url": pages.page("wind-farm.html"), "title": "Long", "content": "x" * 600},  # long enough: not fetched
    ]
    async with httpx.AsyncClient() as client:
        out = await fetcher.enrich("wire-t", items, client, metrics)
    assert [i["title"] for i in out] == ["Bridge", "Leak", "Long"]
    assert all(s in out[0]["content"] for s in BRIDGE_SENTENCES)
    assert out[1] == items[1] and out[2] == items[2]  # as the source gave them
    assert "/wind-farm.html" not in pages.requests
    assert metrics.fulltext_failures.labels(source="wire-t", reason="robots")._value.get() == 1
    assert needs_full_text({"url": "u", "content": "x" * 499}, 500) and not needs_full_text(
        {"url": "u"} | {"content": "x" * 500}, 500
    )


async def test_one_page_at_a_time_per_host_and_robots_read_once(pages: PageServer) -> None:
    fetcher = FullText(settings(per_host=1))
    items = [{"url": pages.page(f"harbour-bridge.html?n={n}"), "title": str(n)} for n in range(6)]
    async with httpx.AsyncClient() as client:
        out = await fetcher.enrich("t", items, client, ProducerMetrics.create(CollectorRegistry()))
    assert all("Engineers replaced" in i["content"] for i in out)
    assert pages.most_in_flight == 1
    assert pages.requests.count("/robots.txt") == 1
    # Slow pages, so two requests overlap whenever two are allowed (fast ones may finish before the next starts).
    pages.most_in_flight = 0
    pages.slow_seconds = 0.5
    slow = [{"url": pages.page(f"slow/harbour-bridge.html?n={n}"), "title": str(n)} for n in range(4)]
    fetcher = FullText(settings(per_host=2))
    async with httpx.AsyncClient() as client:
        await fetcher.enrich("t", slow, client, ProducerMetrics.create(CollectorRegistry()))
    assert pages.most_in_flight == 2


async def test_truncated_newsapi_article_is_stored_with_its_full_text(
    pages: PageServer, spawn: Callable[..., ServiceProcess], namespace: str, kafka_settings: KafkaSettings
) -> None:
    truncated = (
        "The harbour bridge reopened to traffic at six o'clock on Tuesday morning, ending an eight-month… [+2114 chars]"
    )
    with news_server() as fake:
        fake.articles = [
            newsapi_article(1, url=pages.page("harbour-bridge.html"), content=truncated),
            newsapi_article(2, url=pages.page("private/leak.html"), content="Cut short… [+900 chars]"),
            newsapi_article(3, url=pages.page("missing.html"), content="Also cut… [+700 chars]"),
        ]
        env = _producer_env(
            fake,
            namespace,
            NEWSAPI__API_KEY=VALID_KEY,
            PRODUCER__FULLTEXT__ENABLED="true",
            PRODUCER__FULLTEXT__TIMEOUT_SECONDS="3",
        )
        proc = spawn("producer", env=env)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proc.port}", timeout=60) as client:
            answer = (await client.post("/fetch-now")).json()
            assert answer["sources"][0]["sent"] == 3, answer
            metrics = (await client.get("/metrics")).text
    records = await read_topic(kafka_settings.bootstrap_servers, kafka_settings.topics.raw_topic, expect=3)
    stored = {json.loads(r.value)["url"]: json.loads(r.value) for r in records}
    assert len(stored) == 3
    bridge = stored[pages.page("harbour-bridge.html")]
    for sentence in BRIDGE_SENTENCES:
        assert sentence in bridge["content"]
    assert "[+2114 chars]" not in bridge["content"] and "Accept all cookies" not in bridge["content"]
    # The others as NewsAPI gave them (its truncation marker taken off), never lost.
    assert stored[pages.page("private/leak.html")]["content"] == "Cut short"
    assert stored[pages.page("missing.html")]["content"] == "Also cut"
    assert 'news_fulltext_failures_total{reason="robots",source="newsapi:top-headlines:us"} 1.0' in metrics
    assert 'news_fulltext_failures_total{reason="http_4xx",source="newsapi:top-headlines:us"} 1.0' in metrics
    assert 'news_fulltext_fetched_total{source="newsapi:top-headlines:us"} 1.0' in metrics
    await asyncio.sleep(0)
