"""The consumer's REST contract without services: the duration patterns say exactly what is accepted, the
document lists every status, and query text that is not UTF-8 is refused naming the parameter."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from common.schemas import AnalyzedArticle
from common.store import CURSOR_PATTERNS, LEAD_MAX, _encode_cursor, list_view
from consumer.api import (
    BUCKET_PATTERN,
    WINDOW_PATTERN,
    ArticleSummary,
    _accepts_gzip,
    _etag_matches,
    seconds,
)
from consumer.main import create_app
from consumer.ranking import TOP_CURSOR_PATTERN
from consumer.settings import ConsumerSettings

pytestmark = pytest.mark.unit

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def spellings(top: int) -> list[str]:
    """`<n><unit>` (and bare n) for every n of up to 4 digits, every n near the limit, a stride through the
    rest (the patterns are built digit by digit, so their edges are at these places), and odd shapes."""
    out = ["", "0", "0m", "00", "05m", "-5m", "5M", "5 m", "m", "1w", "1.5h"]
    for unit, size in [*UNITS.items(), ("", 1)]:
        last = top // size
        numbers = {*range(0, min(last + 3, 10_000)), *range(max(0, last - 3_000), last + 3), *range(0, last, 997)}
        out += [f"{n}{unit}" for n in sorted(numbers)]
    return out


def test_window_pattern_is_exactly_1s_to_31d() -> None:
    for text in spellings(31 * 86400):
        expected = bool(re.fullmatch(r"[1-9][0-9]*[smhd]?", text)) and seconds(text) <= 31 * 86400
        assert bool(re.search(WINDOW_PATTERN, text)) is expected, text


def test_bucket_pattern_is_exactly_a_multiple_of_5m_up_to_7d() -> None:
    for text in spellings(7 * 86400):
        size = seconds(text) if re.fullmatch(r"[1-9][0-9]*[mhd]", text) else 0
        expected = 0 < size <= 7 * 86400 and size % 300 == 0
        assert bool(re.search(BUCKET_PATTERN, text)) is expected, text


def test_cursor_patterns_accept_what_the_store_writes() -> None:
    for score in ["1714567890.123", "7.5", "0", "1e-07", "-3.25", "1.5e+20", "123456789012345678"]:
        for order in ("recent", "top"):
            cursor = _encode_cursor(order, score, "c" * 32)
            assert re.search(CURSOR_PATTERNS[order], cursor), cursor
            assert not re.search(CURSOR_PATTERNS["top" if order == "recent" else "recent"], cursor)


def app_client(token: str | None = None) -> TestClient:
    # No lifespan: nothing here reaches the store, so no Kafka or Redis is needed.
    settings = ConsumerSettings(api_token=SecretStr(token) if token else None)
    app = create_app(settings, CollectorRegistry())
    app.state.store = app.state.stats = app.state.stories = None  # a refused request never reaches them
    return TestClient(app)


def test_document_lists_every_status() -> None:
    paths = app_client().get("/openapi.json").json()["paths"]
    for path in ("/news/{article_id}", "/news/{article_id}/story", "/stories/{story_id}"):
        assert set(paths[path]["get"]["responses"]) == {"200", "304", "404", "422", "503"}, path
    for path in ("/news/recent", "/news/top", "/stories"):
        assert set(paths[path]["get"]["responses"]) == {"200", "304", "422", "503"}, path
        assert {"ETag", "Cache-Control"} <= set(paths[path]["get"]["responses"]["200"]["headers"]), path
    for path in ("/stats/sentiment", "/trends"):
        assert set(paths[path]["get"]["responses"]) == {"200", "422", "503"}, path
    recent = {p["name"]: p for p in paths["/news/recent"]["get"]["parameters"]}
    assert recent["cursor"]["schema"]["anyOf"][0]["pattern"] == CURSOR_PATTERNS["recent"]
    headers = paths["/news/top"]["get"]["responses"]["200"]["headers"]
    # /news/top ranks stories: its cursor is a story cursor or, among articles with no story, the seed's.
    assert headers["X-Next-Cursor"]["schema"]["pattern"] == TOP_CURSOR_PATTERN
    assert CURSOR_PATTERNS["top"][1:-1] in TOP_CURSOR_PATTERN
    top = {p["name"]: p for p in paths["/news/top"]["get"]["parameters"]}
    assert top["cursor"]["schema"]["anyOf"][0]["pattern"] == TOP_CURSOR_PATTERN
    stories = {p["name"]: p for p in paths["/stories"]["get"]["parameters"]}
    assert stories["limit"]["schema"]["maximum"] == 200 and stories["order"]["schema"]["enum"] == ["score", "recent"]
    assert {"language", "source", "entity", "since", "cursor"} <= set(stories)
    secured = app_client("s3cret").get("/openapi.json").json()["paths"]
    for path in ("/", "/news/recent", "/news/{article_id}", "/stats/sentiment", "/trends", "/stories"):
        assert "401" in secured[path]["get"]["responses"], path
    assert "401" not in secured["/healthz"]["get"]["responses"]


@pytest.mark.parametrize(
    ("path", "name", "query"),
    [
        ("/news/recent", "source", "source=%ED%A0%80"),  # an unpaired surrogate, as UTF-8-style bytes
        ("/stories", "entity", "entity=%ED%A0%80"),
        ("/stories/" + "a" * 32, "articles", "articles=%ED%B0%80"),
        ("/news/top", "entity", "entity=a%DB%82%DF%5E"),
        ("/stats/sentiment", "source", "source=%FF"),
        ("/trends", "window", "window=%C3"),
    ],
)
def test_query_text_that_is_not_utf8_is_refused_by_name(path: str, name: str, query: str) -> None:
    reply = app_client().get(f"{path}?{query}")
    assert reply.status_code == 422, reply.text
    (error,) = reply.json()["detail"]
    assert error["loc"] == ["query", name] and "UTF-8" in error["msg"]


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("/stats/sentiment", "until=0.5", "until"),
        ("/stats/sentiment", "since=1700000000", "since"),
        ("/news/recent", "since=2024-05-01", "since"),
        ("/stats/sentiment", "bucket=0", "bucket"),
        ("/stats/sentiment", "bucket=300", "bucket"),
        ("/stats/sentiment", "window=32d", "window"),
        ("/news/recent", "cursor=" + "t_1_" + "a" * 32, "cursor"),
        ("/news/recent", "source=%20%20", "source"),
        ("/news/top", "cursor=" + "r_1_" + "a" * 32, "cursor"),
        ("/stories", "cursor=" + "t_1_" + "a" * 32, "cursor"),
        ("/stories", "order=importance", "order"),
        ("/stories", "limit=201", "limit"),
        ("/stories", "entity=%00", "entity"),
        ("/stories", "language=%20", "language"),
        ("/stories/" + "a" * 32, "articles=201", "articles"),
    ],
)
def test_what_the_document_forbids_is_refused(path: str, query: str, name: str) -> None:
    reply = app_client().get(f"{path}?{query}")
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"][:2] == ["query", name]


# --- list views and caching (issue 18) ------------------------------------------------------------


def test_list_views_are_documented_and_lean_by_default() -> None:
    doc = app_client().get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    summary = schemas["ArticleSummary"]["properties"]
    whole = set(AnalyzedArticle.model_fields)
    assert set(summary) == (whole - {"description", "content"}) | {"lead"}
    assert summary["analysis"]["$ref"].endswith("/AnalysisSummary")
    assert "embedding" not in schemas["AnalysisSummary"]["properties"]
    for path in ("/news/recent", "/news/top"):
        operation = doc["paths"][path]["get"]
        view = next(p for p in operation["parameters"] if p["name"] == "view")
        assert view["schema"]["enum"] == ["lean", "full"] and view["schema"]["default"] == "lean"
        body = operation["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
        assert [b["items"]["$ref"].rsplit("/", 1)[1] for b in body] == ["ArticleSummary", "AnalyzedArticle"]


def test_list_view_lead_and_what_it_drops() -> None:
    base = {
        "url": "https://example.com/a",
        "title": "A title",
        "published_at": "2024-05-01T12:00:00Z",
        "analysis": {"sentiment": "neutral", "sentiment_score": 0.0, "embedding": "A" * 40},
    }
    words = "alpha " * 100

    def lead(**fields: object) -> object:
        article = AnalyzedArticle.model_validate({**base, **fields}, strict=False)
        assert article.analysis.embedding is not None
        view = ArticleSummary.model_validate_json(list_view(article.model_dump_json())).model_dump()
        assert "embedding" not in view["analysis"] and "content" not in view and "description" not in view
        return view["lead"]

    assert lead(description="The description.", content=words) == "The description."
    cut = lead(content=words)
    assert isinstance(cut, str) and cut.endswith("\u2026") and len(cut) <= LEAD_MAX
    assert words.startswith(cut[:-1]) and not cut[:-1].endswith(" ")  # cut at a word, not inside one
    assert lead(content="Short body.") == "Short body."
    assert lead() is None


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('W/"abc"', True),
        ('"abc"', True),  # weak comparison: the strong form of the same tag matches
        ('W/"x", W/"abc"', True),
        ("*", True),
        ('W/"abd"', False),
        ("", False),
    ],
)
def test_if_none_match(header: str, matches: bool) -> None:
    assert _etag_matches(header, 'W/"abc"') is matches


@pytest.mark.parametrize(
    ("header", "accepts"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("identity", False),
        ("", False),
        ("deflate", False),
    ],
)
def test_accept_encoding(header: str, accepts: bool) -> None:
    assert _accepts_gzip(header) is accepts


async def test_readiness_reports_optional_checks_without_depending_on_them() -> None:
    # The consumer's search archive is reported in /readyz but does not take the pod out of its Service.
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from common.webapp import ops_router

    checks: dict[str, bool] = {"redis": True, "kafka": True, "search": False}

    async def readiness(_request: object) -> dict[str, bool]:
        return dict(checks)

    app = FastAPI()
    registry = CollectorRegistry()
    app.include_router(ops_router(lambda _r: registry, readiness, optional={"search"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client:
        answer = await client.get("/readyz")
        assert answer.status_code == 200 and answer.json() == {"ready": True, "checks": checks}
        checks["redis"] = False
        answer = await client.get("/readyz")
        assert answer.status_code == 503 and answer.json()["ready"] is False
