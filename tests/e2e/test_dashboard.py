"""The dashboard in a real browser against the real suite: Kafka -> worker -> consumer -> WebSocket -> page.

Debian's Chromium is driven by playwright-core from frontend/e2e/dashboard.e2e.mjs; this test starts
the services, serves frontend/dist with a config.js pointing at the consumer, produces the articles
once the page is live, and saves screenshots under test-artifacts/.

Stories and search use the real consumer too. The story updates of a three-source story are produced to
the stories topic by this test (what the story stage writes), while the page shows the Stories view, so
the story appears live and then from `GET /stories`. Search runs on a real OpenSearch: no indexer runs
here, so the articles to find are indexed with `common.search_index` (the documents the indexer writes).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.kafka import ensure_topics, make_producer
from common.schemas import Analysis, AnalyzedArticle, Entity, RawArticle
from common.search_index import document, ensure_index, index_name, make_client
from common.settings import KafkaSettings, OpenSearchSettings
from common.stories import SentimentMix, Story, StoryEntity, StoryUpdate, TimelineBucket
from common.topics import Topics
from harness.infra import ROOT, free_port
from harness.processes import ServiceProcess

pytestmark = pytest.mark.e2e

FRONTEND = ROOT / "frontend"
DIST = FRONTEND / "dist"
SCRIPT = FRONTEND / "e2e" / "dashboard.e2e.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _ensure_built() -> None:
    """`make test` builds dist/ before pytest runs; a bare pytest run builds it here."""
    if (DIST / "index.html").exists():
        return
    npm = shutil.which("npm")
    assert npm, "npm not found: the dashboard test needs Node.js >= 20.19 (make install)"
    if not (FRONTEND / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True, timeout=300)
    subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True, timeout=300)


class _DistHandler(SimpleHTTPRequestHandler):
    config_js = b""

    def do_GET(self) -> None:  # http.server's naming
        if self.path.split("?", 1)[0] == "/config.js":
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(self.config_js)))
            self.end_headers()
            self.wfile.write(self.config_js)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Dashboard:
    url: str
    origin: str

    def point_at(self, api_base: str) -> None:
        config = {"apiBase": api_base, "token": ""}
        _DistHandler.config_js = f"window.__NEWS_CONFIG__ = {json.dumps(config)};\n".encode()


@pytest.fixture
def dashboard() -> Iterator[Dashboard]:
    """frontend/dist served on a free port, the way `make up` and nginx serve it (config.js at run time)."""
    _ensure_built()
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_DistHandler, directory=str(DIST)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{port}"
    yield Dashboard(url=f"{origin}/", origin=origin)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _articles(uid: str) -> tuple[RawArticle, RawArticle, bytes, dict[str, dict[str, str]]]:
    now = datetime.now(UTC)
    plain = RawArticle(
        url=f"https://e2e.example/news/{uid}/plain",
        title=f"Dashboard e2e: central bank holds rates {uid}",
        description="A plain article produced to Kafka by the browser test.",
        source="E2E Wire",
        published_at=now,
        origin="push",
    )
    stripped = RawArticle(
        url=f"https://e2e.example/news/{uid}/stripped",
        title=f'<script>window.__pwned=3</script><img src=x onerror="window.__pwned=4"><b>Stripped</b> markup {uid}',
        source="E2E Wire",
        published_at=now,
        origin="push",
    )
    # Text inside the suite is text: an author's escaped "&lt;script&gt;" became the characters
    # "<script>" where it entered, and analysed articles are never parsed as markup again. Such a
    # title reaches the browser carrying a literal <script> tag: the page must show it as text.
    base = AnalyzedArticle.from_raw(
        RawArticle(
            url=f"https://e2e.example/news/{uid}/literal",
            title="placeholder",
            source="E2E Markup Desk",
            published_at=now,
            origin="push",
        ),
        Analysis(
            sentiment="negative",
            sentiment_score=-0.5,
            keywords=["markup"],
            entities=[Entity(text="E2E Markup Desk", type="ORG")],
            category="technology",
            language="en",
            importance_score=6.0,
        ),
    ).model_dump(mode="json")
    base["title"] = (
        f'<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> Literal <b>markup</b> {uid}'
    )
    literal_json = json.dumps(base).encode()
    literal = AnalyzedArticle.model_validate_json(literal_json)  # what the consumer will store and send
    expected = {
        "plain": {"id": plain.id, "title": plain.title, "source": plain.source},
        "stripped": {"id": stripped.id, "title": stripped.title, "source": stripped.source},
        "literal": {"id": literal.id, "title": literal.title, "source": literal.source},
    }
    assert "<script>" in literal.title, literal.title
    return plain, stripped, literal_json, expected


BANK = Entity(text="Bank of Korea", type="ORG")
"""Named by every story and search article: its entity page counts them, a watchlist on it raises alerts."""


async def _watch(api: str, name: str, entity: str) -> None:
    """`POST /watchlists` with one entity rule (no webhook): the consumer alerts on each matching article."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            f"{api}/watchlists", json={"name": name, "rules": [{"kind": "entity", "entity": entity}]}
        )
    assert answer.status_code in (200, 201), answer.text


def _analyzed(
    uid: str, slug: str, title: str, source: str, language: str, sentiment: str = "neutral"
) -> AnalyzedArticle:
    raw = RawArticle(
        url=f"https://e2e.example/news/{uid}/{slug}",
        title=title,
        description=f"{title}. Produced by the browser test.",
        source=source,
        published_at=datetime.now(UTC),
        origin="push",
    )
    score = {"positive": 0.6, "neutral": 0.0, "negative": -0.6}[sentiment]
    analysis = Analysis(
        sentiment=sentiment,  # type: ignore[arg-type]  # one of SENTIMENTS
        sentiment_score=score,
        keywords=["rates"],
        entities=[BANK],
        category="business",
        language=language,
        importance_score=5.0,
    )
    return AnalyzedArticle.from_raw(raw, analysis)


def _story_updates(members: list[AnalyzedArticle]) -> list[StoryUpdate]:
    """What the story stage writes as each member joins: one story (the first member's id) growing to three sources."""
    first = members[0]
    updates: list[StoryUpdate] = []
    for n in range(1, len(members) + 1):
        joined = members[:n]
        sources: dict[str, int] = {}
        languages: dict[str, int] = {}
        for a in joined:
            sources[a.source] = sources.get(a.source, 0) + 1
            languages[a.analysis.language] = languages.get(a.analysis.language, 0) + 1
        mix = {s: sum(a.analysis.sentiment == s for a in joined) for s in ("positive", "neutral", "negative")}
        story = Story(
            id=first.id,
            title=first.title,
            language=first.analysis.language,
            first_seen=first.published_at,
            last_seen=joined[-1].published_at,
            article_count=n,
            source_count=len(sources),
            sources=sources,
            languages=languages,
            entities=[StoryEntity(id=BANK.key, name=BANK.display, type=BANK.type, count=n)],
            keywords=["rates"],
            sentiment=SentimentMix(**mix, mean_score=sum(a.analysis.sentiment_score for a in joined) / n),
            timeline=[TimelineBucket(start=first.published_at.replace(minute=0, second=0, microsecond=0), count=n)],
            active=True,
        )
        updates.append(
            StoryUpdate(article_id=joined[-1].id, created=n == 1, similarity=1.0 if n == 1 else 0.9, story=story)
        )
    return updates


async def _produce_story(settings: KafkaSettings, members: list[AnalyzedArticle]) -> None:
    """The members as analysed articles (stored, so the story lists them), then the story's updates."""
    topics = Topics.of(settings.topics)
    await ensure_topics(settings, [topics.analyzed.name, topics.stories.name])
    producer = make_producer(settings, client_id="e2e-dashboard-stories")
    await producer.start()
    try:
        for article in members:
            record = topics.analyzed.encode(article)
            await producer.send_and_wait(topics.analyzed.name, record.value, key=record.key)
        for update in _story_updates(members):
            record = topics.stories.encode(update)
            await producer.send_and_wait(topics.stories.name, record.value, key=record.key)
    finally:
        await producer.stop()


async def _index(settings: OpenSearchSettings, articles: list[AnalyzedArticle]) -> None:
    """Index the articles as the indexer does (document by article id into the month's index), searchable at once."""
    client = make_client(settings)
    try:
        await ensure_index(client, settings)
        for article in articles:
            await client.index(
                index=index_name(settings.index_prefix, article.published_at),
                id=article.id,
                body=document(article),
                refresh=True,
            )
    finally:
        await client.close()


async def _produce(settings: KafkaSettings, raw: list[RawArticle], analyzed: list[tuple[str, bytes]]) -> None:
    topics = settings.topics
    await ensure_topics(settings, [topics.raw_topic, topics.analyzed_topic])
    producer = make_producer(settings, client_id="e2e-dashboard")
    await producer.start()
    try:
        for article in raw:
            await producer.send_and_wait(topics.raw_topic, article.model_dump_json().encode(), key=article.id.encode())
        for key, value in analyzed:
            await producer.send_and_wait(topics.analyzed_topic, value, key=key.encode())
    finally:
        await producer.stop()


async def _read_until(stream: asyncio.StreamReader, marker: str, timeout: float, seen: list[str]) -> None:
    async def scan() -> None:
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError("browser script ended early:\n" + "\n".join(seen))
            text = line.decode(errors="replace").rstrip()
            seen.append(text)
            if text.startswith(marker):
                return

    await asyncio.wait_for(scan(), timeout)


async def test_dashboard_streams_filters_and_escapes_in_a_real_browser(
    spawn: Callable[..., ServiceProcess],
    kafka_settings: KafkaSettings,
    dashboard: Dashboard,
    opensearch_url: str,
    search_prefix: str,
) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install -y chromium (make install does it)"
    node = shutil.which("node")
    assert node, "node not found (the dashboard needs Node.js >= 20.19)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    search_settings = OpenSearchSettings(url=opensearch_url, index_prefix=search_prefix)
    consumer = spawn(
        "consumer",
        env={
            "CORS_ORIGINS": json.dumps([dashboard.origin]),
            "OPENSEARCH__URL": opensearch_url,
            "OPENSEARCH__INDEX_PREFIX": search_prefix,
        },
    )
    spawn("worker")
    dashboard.point_at(f"http://127.0.0.1:{consumer.port}")

    uid = uuid.uuid4().hex[:8]
    plain, stripped, literal_json, expected = _articles(uid)
    # A story covered by three sources in two languages (its articles are stored through Kafka as usual).
    members = [
        _analyzed(uid, "story-1", f"E2E story: Bank of Korea holds rates {uid}", "E2E Story Wire", "en"),
        _analyzed(
            uid, "story-2", f"Bank of Korea keeps its rate unchanged {uid}", "E2E Story Herald", "en", "negative"
        ),
        _analyzed(uid, "story-3", f"한국은행 기준금리 동결 {uid}", "E2E 서울 일보", "ko"),
    ]
    # Search: an English and a Korean article (a Korean word inside a compound with a particle), and the
    # hostile title, indexed directly.
    english = _analyzed(uid, "search-en", f"Central banks are holding interest rates {uid}", "E2E Search Desk", "en")
    korean = _analyzed(uid, "search-ko", f"삼성전자가 반도체 투자를 늘린다 {uid}", "E2E 서울 일보", "ko", "positive")
    hostile = AnalyzedArticle.model_validate_json(literal_json)
    await _index(search_settings, [english, korean, hostile])
    watchlist = f"E2E watch {uid}"
    await _watch(f"http://127.0.0.1:{consumer.port}", watchlist, BANK.key)
    story = {
        "id": members[0].id,
        "title": members[0].title,
        "sources": sorted({m.source for m in members}),
        "articles": [m.id for m in members],
    }
    search = {
        "uid": uid,
        "english": {"id": english.id, "query": f"central bank hold {uid}"},
        "korean": {"id": korean.id, "query": f"삼성전자 {uid}"},
        "hostile": {"id": hostile.id, "query": f"literal markup {uid}"},
    }
    params = {
        "url": dashboard.url,
        "screenshotDir": str(ARTIFACTS),
        "timeoutMs": 90_000,
        **expected,
        "story": story,
        "search": search,
        "entity": {"id": BANK.key, "name": BANK.display, "mentions": len(members)},
        "watchlist": watchlist,
    }
    browser = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        cwd=FRONTEND,
        env={**os.environ, "E2E_PARAMS": json.dumps(params), "CHROMIUM": CHROMIUM},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert browser.stdin is not None and browser.stdout is not None
    seen: list[str] = []
    try:
        await _read_until(browser.stdout, "READY", 120, seen)
        await _produce(kafka_settings, [plain, stripped], [(expected["literal"]["id"], literal_json)])
        browser.stdin.write(b"go\n")
        await browser.stdin.drain()
        # The page now shows the Stories view: the story's updates arrive live.
        await _read_until(browser.stdout, "STORIES_READY", 180, seen)
        await _produce_story(kafka_settings, members)
        browser.stdin.write(b"go\n")
        await browser.stdin.drain()
        await _read_until(browser.stdout, "RESULT", 240, seen)
        assert await asyncio.wait_for(browser.wait(), 30) == 0, "\n".join(seen)
    except (AssertionError, TimeoutError) as exc:
        if browser.returncode is None:
            browser.kill()
        rest = await browser.stdout.read()
        await browser.wait()
        log = "\n".join(seen) + rest.decode(errors="replace")
        raise AssertionError(f"{exc}\n--- browser ---\n{log}\n--- consumer ---\n{consumer.tail()}") from None

    result = json.loads(seen[-1].removeprefix("RESULT "))
    assert result["checks"] == [
        "connected",
        "articles appear live",
        "markup rendered as text",
        "detail panel",
        "filters hide and restore",
        "korean + phone width",
        "korean browser opens in korean",
        "story appears live",
        "story from GET /stories, in korean",
        "story detail",
        "search in english",
        "search highlight is text",
        "facet filters",
        "search in korean",
        "entity page with its timeline",
        "alerts live and listed",
    ]
    for name in (
        "dashboard-1280.png",
        "dashboard-filtered.png",
        "dashboard-phone-ko.png",
        "stories-1280.png",
        "stories-ko.png",
        "search-en.png",
        "search-ko.png",
        "entity-en.png",
        "alerts-ko.png",
    ):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
