"""The dashboard in a real browser against the real suite: Kafka -> worker -> consumer -> WebSocket -> page.

Debian's Chromium is driven by playwright-core from frontend/e2e/dashboard.e2e.mjs; this test starts
the services, serves frontend/dist with a config.js pointing at the consumer, produces the articles
once the page is live, and saves screenshots under test-artifacts/.
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

import pytest

from common.kafka import ensure_topics, make_producer
from common.schemas import Analysis, AnalyzedArticle, Entity, RawArticle
from common.settings import KafkaSettings
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
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, dashboard: Dashboard
) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install -y chromium (make install does it)"
    node = shutil.which("node")
    assert node, "node not found (the dashboard needs Node.js >= 20.19)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    consumer = spawn("consumer", env={"CORS_ORIGINS": json.dumps([dashboard.origin])})
    spawn("worker")
    dashboard.point_at(f"http://127.0.0.1:{consumer.port}")

    uid = uuid.uuid4().hex[:8]
    plain, stripped, literal_json, expected = _articles(uid)
    params = {"url": dashboard.url, "screenshotDir": str(ARTIFACTS), "timeoutMs": 90_000, **expected}
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
        await _read_until(browser.stdout, "RESULT", 180, seen)
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
    ]
    for name in ("dashboard-1280.png", "dashboard-filtered.png", "dashboard-phone-ko.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
