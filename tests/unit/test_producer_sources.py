"""Sources against local servers speaking NewsAPI's and RSS/Atom's real wire formats; mapping; settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import feedparser
import httpx
import pytest
from pydantic import ValidationError

from common.errors import ConfigError, SourceDisabled, SourceError, SourceRateLimited
from common.schemas import RawArticle
from producer.settings import FeedConfig, NewsAPIQuery, NewsAPISettings, ProducerSettings
from producer.sources import FeedSource, HttpPolicy, NewsAPISource, build_sources, map_feed_entry, map_newsapi_article
from tests.support.fake_news import (
    ERRORS,
    VALID_KEY,
    FeedItem,
    NewsServer,
    atom_feed,
    korean_items,
    news_server,
    newsapi_article,
    rss_feed,
)

pytestmark = pytest.mark.unit

FAST = HttpPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)


@pytest.fixture(scope="module")
def server() -> Iterator[NewsServer]:
    with news_server() as s:
        yield s


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


def _newsapi(server: NewsServer, key: str = VALID_KEY, **query: object) -> NewsAPISource:
    settings = NewsAPISettings(api_key=key, base_url=server.url, page_size=20, max_pages=10)
    return NewsAPISource(NewsAPIQuery.model_validate(query or {"country": "us"}), settings, FAST)


# -- mapping -------------------------------------------------------------------------------------------
def test_newsapi_article_maps_to_a_valid_raw_article() -> None:
    item = map_newsapi_article(newsapi_article(3))
    assert item is not None
    article = RawArticle.model_validate(item)
    assert article.url == "https://example.com/news/3"  # tracking parameter dropped
    assert article.source == "BBC News"
    assert article.content == "Body of story 3, cut by NewsAPI"  # the "[+N chars]" marker is not text
    assert article.description == "Lead of story 3 & more"
    assert article.origin == "newsapi"
    assert article.published_at == datetime(2024, 11, 26, 4, 57, tzinfo=UTC)


def test_newsapi_nulls_and_removed_placeholders() -> None:
    nulls = map_newsapi_article(newsapi_article(5, author=None, description=None, content=None, source={"id": None}))
    assert nulls is not None and "author" not in nulls and nulls["source"] == "NewsAPI"
    assert map_newsapi_article(newsapi_article(1, title="[Removed]", url="https://removed.com")) is None


def test_rss_entries_map_korean_text_dates_and_language() -> None:
    parsed = feedparser.parse(rss_feed("연합 테스트", korean_items(), language="ko-KR"))
    now = datetime.now(UTC)
    items = [map_feed_entry(e, parsed.feed, source="rss:ko", fetched_at=now) for e in parsed.entries]
    articles = [RawArticle.model_validate(i) for i in items]
    assert [a.title for a in articles][0] == "한국은행, 기준금리 0.25%p 인하"
    assert articles[1].description == "삼성전자가 새로운 메모리 반도체를 발표했다."  # markup stripped
    assert articles[0].published_at == datetime(2024, 11, 26, 9, tzinfo=UTC)
    assert {a.language_hint for a in articles} == {"ko"} and {a.source for a in articles} == {"연합 테스트"}
    assert {a.origin for a in articles} == {"rss"}


def test_atom_entries_and_undated_items() -> None:
    items = [FeedItem("Atom one", "https://atom.example.org/a/1", "Summary one", datetime(2024, 1, 2, tzinfo=UTC))]
    parsed = feedparser.parse(atom_feed("Atom test", items))
    mapped = map_feed_entry(parsed.entries[0], parsed.feed, source="rss:atom", fetched_at=datetime.now(UTC))
    article = RawArticle.model_validate(mapped)
    assert article.url == "https://atom.example.org/a/1" and article.content == "Summary one"
    assert article.author == "Desk" and article.published_at == datetime(2024, 1, 2, tzinfo=UTC)
    undated = feedparser.parse(rss_feed("x", [FeedItem("No date", "https://e.org/1")]))
    fetched = datetime(2025, 5, 5, tzinfo=UTC)
    assert map_feed_entry(undated.entries[0], {}, source="s", fetched_at=fetched)["published_at"] == fetched.isoformat()


# -- NewsAPI -------------------------------------------------------------------------------------------
async def test_newsapi_pages_until_the_plan_cap_and_sends_the_key_in_a_header(server, client) -> None:
    before = len(server.requests)
    result = await _newsapi(server, country="us", category="technology").fetch(client)
    calls = server.requests[before:]
    assert len(result.items) == 100 and result.error is None
    assert "maximumResultsReached" in (result.note or "")
    assert [c["params"]["page"] for c in calls] == ["1", "2", "3", "4", "5", "6"]
    assert all(c["headers"]["x-api-key"] == VALID_KEY and "apiKey" not in c["params"] for c in calls)
    assert calls[0]["params"] == {"country": "us", "category": "technology", "pageSize": "20", "page": "1"}


async def test_newsapi_stops_paging_at_total_results(server, client) -> None:
    saved = server.articles
    server.articles = [newsapi_article(n) for n in range(30)]
    try:
        result = await _newsapi(server, endpoint="everything", q="ai", sortBy="publishedAt").fetch(client)
    finally:
        server.articles = saved
    assert len(result.items) == 30 and result.note is None
    assert server.requests[-1]["params"]["sortBy"] == "publishedAt"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("parameterInvalid", SourceDisabled),
        ("parametersMissing", SourceDisabled),
        ("sourcesTooMany", SourceDisabled),
        ("sourceDoesNotExist", SourceDisabled),
        ("apiKeyDisabled", SourceDisabled),
        ("apiKeyExhausted", SourceDisabled),
        ("apiKeyInvalid", SourceDisabled),
        ("apiKeyMissing", SourceDisabled),
        ("rateLimited", SourceRateLimited),
    ],
)
async def test_newsapi_error_codes(server, client, code: str, kind: type[SourceError]) -> None:
    server.fail_next(code, headers={"Retry-After": "42"} if code == "rateLimited" else None)
    before = len(server.requests)
    with pytest.raises(kind) as caught:
        await _newsapi(server).fetch(client)
    assert caught.value.code == code and str(ERRORS[code][0]) in str(caught.value)
    assert len(server.requests) - before == 1  # none of these is retried inside the poll
    if code == "rateLimited":
        assert caught.value.retry_after == 42.0  # type: ignore[attr-defined]


async def test_newsapi_errors_from_real_requests(server, client) -> None:
    for key, code in (("", "apiKeyMissing"), ("wrong", "apiKeyInvalid"), ("disabled-key", "apiKeyDisabled")):
        with pytest.raises(SourceDisabled, match=code):
            await _newsapi(server, key=key).fetch(client)
    with pytest.raises(SourceDisabled, match="sourceDoesNotExist"):
        await _newsapi(server, sources="bbc-news,no-such-source").fetch(client)


async def test_newsapi_retries_5xx_then_succeeds(server, client) -> None:
    server.fail_next("unexpectedError", times=2)
    result = await _newsapi(server, endpoint="everything", q="x").fetch(client)
    assert len(result.items) == 100


async def test_newsapi_gives_up_after_the_attempts(server, client) -> None:
    server.fail_next("unexpectedError", times=3)
    with pytest.raises(SourceError) as caught:
        await _newsapi(server).fetch(client)
    assert caught.value.code == "unexpectedError" and caught.value.retryable


async def test_newsapi_failure_on_a_later_page_keeps_earlier_pages(server, client) -> None:
    source = _newsapi(server)
    # first page answers, then three 500s exhaust the retries of page 2
    original = server._newsapi
    calls = {"n": 0}

    def flaky(request, endpoint):
        calls["n"] += 1
        return original(request, endpoint) if calls["n"] == 1 else server._error("unexpectedError")

    server._newsapi = flaky
    try:
        result = await source.fetch(client)
    finally:
        server._newsapi = original
    assert len(result.items) == 20 and result.error is not None and result.error.code == "unexpectedError"


async def test_newsapi_timeout_is_retried_and_reported(client) -> None:
    # a port nobody listens on: a connection error, retried, then reported with its code
    settings = NewsAPISettings(api_key=VALID_KEY, base_url="http://127.0.0.1:9", page_size=10)
    with pytest.raises(SourceError) as caught:
        await NewsAPISource(NewsAPIQuery(country="us"), settings, FAST).fetch(client)
    assert caught.value.code == "network"


# -- RSS / Atom ----------------------------------------------------------------------------------------
async def test_feed_conditional_get_commits_validators_only_after_publish(server, client) -> None:
    server.set_feed("cond", rss_feed("Cond", [FeedItem("One", "https://c.example.org/1")]))
    source = FeedSource(FeedConfig(url=server.feed_url("cond")), 60, FAST)
    first = await source.fetch(client)
    assert len(first.items) == 1
    # not committed (as if the publish failed): fetched in full again, not answered 304
    again = await source.fetch(client)
    assert len(again.items) == 1 and not again.not_modified
    again.commit()
    assert (await source.fetch(client)).not_modified
    assert server.feed_requests("cond")[-1]["headers"]["if-none-match"] == source.etag


async def test_feed_that_changes_between_polls(server, client) -> None:
    items = [FeedItem("One", "https://ch.example.org/1", published=datetime(2024, 1, 1, tzinfo=UTC))]
    server.set_feed("changing", rss_feed("Changing", items))
    source = FeedSource(FeedConfig(url=server.feed_url("changing"), name="changing"), 60, FAST)
    first = await source.fetch(client)
    first.commit()
    items.append(FeedItem("Two", "https://ch.example.org/2", published=datetime(2024, 1, 2, tzinfo=UTC)))
    server.set_feed("changing", rss_feed("Changing", items))
    second = await source.fetch(client)
    assert [i["title"] for i in second.items] == ["One", "Two"] and not second.not_modified


async def test_atom_feed_over_http(server, client) -> None:
    server.set_feed("atom", atom_feed("Atom", [FeedItem("A", "https://a.example.org/1", "x")]), atom=True)
    result = await FeedSource(FeedConfig(url=server.feed_url("atom")), 60, FAST).fetch(client)
    assert result.items[0]["url"] == "https://a.example.org/1" and result.items[0]["source"] == "Atom"


async def test_malformed_feeds_are_reported_not_fatal(server, client) -> None:
    server.set_feed("html", b"<html><body>Not a feed</body></html>")
    with pytest.raises(SourceError) as caught:
        await FeedSource(FeedConfig(url=server.feed_url("html")), 60, FAST).fetch(client)
    assert caught.value.code == "malformed"
    # broken XML that still yields entries is used, with a note
    broken = rss_feed("Broken", [FeedItem("Kept", "https://b.example.org/1")]).replace(b"</channel></rss>", b"<oops")
    server.set_feed("broken", broken)
    result = await FeedSource(FeedConfig(url=server.feed_url("broken")), 60, FAST).fetch(client)
    assert [i["title"] for i in result.items] == ["Kept"] and "not well-formed" in (result.note or "")


async def test_feed_http_errors(server, client) -> None:
    server.set_feed("down", b"", status=503)
    with pytest.raises(SourceError) as caught:
        await FeedSource(FeedConfig(url=server.feed_url("down")), 60, FAST).fetch(client)
    assert caught.value.code == "http_503" and caught.value.retryable
    assert len(server.feed_requests("down")) == 3
    with pytest.raises(SourceError, match="404"):
        await FeedSource(FeedConfig(url=server.feed_url("missing")), 60, FAST).fetch(client)


# -- settings ------------------------------------------------------------------------------------------
def test_default_settings_have_no_network_sources(monkeypatch) -> None:
    for var in ("NEWSAPI__API_KEY", "PRODUCER__RSS_FEEDS"):
        monkeypatch.delenv(var, raising=False)
    settings = ProducerSettings(_env_file=None)
    assert build_sources(settings) == [] and not settings.newsapi.enabled


def test_sources_from_environment(monkeypatch) -> None:
    monkeypatch.setenv(
        "PRODUCER__RSS_FEEDS",
        '["https://feeds.example.org/world.xml", '
        '{"url": "https://k.example.kr/rss", "name": "ko", "interval_seconds": 60}]',
    )
    monkeypatch.setenv("NEWSAPI__API_KEY", "real-key")
    monkeypatch.setenv("NEWSAPI__QUERIES", '[{"endpoint": "everything", "q": "chips", "sortBy": "publishedAt"}]')
    settings = ProducerSettings(_env_file=None)
    sources = {s.name: s for s in build_sources(settings)}
    assert set(sources) == {"newsapi:everything:chips", "rss:feeds.example.org-world", "ko"}
    assert sources["ko"].interval == 60 and sources["rss:feeds.example.org-world"].interval == 300
    assert "real-key" not in repr(settings) and "real-key" not in str(sources["newsapi:everything:chips"].describe())


def test_bad_configuration_is_refused_with_a_reason(monkeypatch) -> None:
    with pytest.raises(ValidationError, match="everything needs"):
        NewsAPIQuery(endpoint="everything")
    with pytest.raises(ValidationError, match="cannot mix"):
        NewsAPIQuery(sources="bbc-news", country="us")
    with pytest.raises(ValidationError, match="unique"):
        ProducerSettings(producer={"rss_feeds": ["https://a.org/x", {"url": "https://b.org/", "name": "rss:a.org-x"}]})
    with pytest.raises(ValidationError, match="pattern"):
        FeedConfig(url="ftp://nope")
    with pytest.raises((ConfigError, ValidationError), match="placeholder"):
        ProducerSettings(environment="production", newsapi={"api_key": "change-me"})
