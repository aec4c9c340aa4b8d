"""Access and secrets on real processes: tokens required where configured, CORS only for configured
origins, and a planted secret never shows in logs, /metrics, error bodies or the dashboard bundle."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from harness.infra import ROOT
from harness.processes import ServiceProcess
from tests.support.fake_news import news_server

pytestmark = pytest.mark.integration

TOKEN = "planted-api-token-7f3a9c"
NEWSAPI_KEY = "planted-newsapi-key-51d2e8"


async def test_producer_refuses_writes_without_the_token(spawn: Callable[..., ServiceProcess]) -> None:
    producer = spawn("producer", env={"API_TOKEN": TOKEN, "PRODUCER__POLLING": "false"})
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=30) as client:
        assert (await client.get("/healthz")).status_code == 200
        push = await client.post("/articles", json={"articles": [{"url": "https://a.example.org/1", "title": "t"}]})
        assert push.status_code == 401
        assert (await client.post("/fetch-now")).status_code == 401


async def test_cors_only_for_configured_origins(spawn: Callable[..., ServiceProcess]) -> None:
    consumer = spawn("consumer", env={"CORS_ORIGINS": '["https://dash.example.org"]'})
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{consumer.port}", timeout=10) as client:
        preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
        ok = await client.options("/news/recent", headers={"Origin": "https://dash.example.org", **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://dash.example.org"
        evil = await client.options("/news/recent", headers={"Origin": "https://evil.example.com", **preflight})
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        simple = await client.get("/news/recent", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in simple.headers


async def test_planted_secrets_never_leak(spawn: Callable[..., ServiceProcess]) -> None:
    with news_server() as news:
        news.fail_next("apiKeyInvalid", times=5)  # the key is refused: the error path is logged
        env = {
            "API_TOKEN": TOKEN,
            "NEWSAPI__API_KEY": NEWSAPI_KEY,
            "NEWSAPI__BASE_URL": news.url,
            "PRODUCER__POLLING": "false",
            "LOG_LEVEL": "DEBUG",
        }
        producer = spawn("producer", env=env)
        consumer = spawn("consumer", env={"API_TOKEN": TOKEN, "LOG_LEVEL": "DEBUG"})
        bodies: list[str] = []
        async with httpx.AsyncClient(timeout=30) as client:
            p, c = f"http://127.0.0.1:{producer.port}", f"http://127.0.0.1:{consumer.port}"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            bodies.append((await client.post(f"{p}/fetch-now", headers=auth)).text)
            for url in (f"{p}/", f"{p}/sources", f"{p}/metrics", f"{p}/openapi.json", f"{c}/metrics", f"{c}/readyz"):
                bodies.append((await client.get(url)).text)
                bodies.append((await client.get(url, headers=auth)).text)
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}"}):
                for path in (
                    "/news/recent?limit=9999",
                    "/news/not-an-id",
                    "/news/" + "0" * 32,
                    "/stats/sentiment?bucket=x",
                ):
                    bodies.append((await client.get(c + path, headers=headers)).text)
            bodies.append((await client.post(f"{p}/articles", content=b"{broken")).text)
        assert any(r["headers"].get("x-api-key") == NEWSAPI_KEY for r in news.requests), "the key was never used"
    producer.stop()
    consumer.stop()
    logs = producer.log_path.read_text(errors="replace") + consumer.log_path.read_text(errors="replace")
    for secret in (TOKEN, NEWSAPI_KEY):
        assert secret not in logs
        leaked = [b[:200] for b in bodies if secret in b]
        assert not leaked, leaked


def test_dashboard_bundle_carries_no_secret() -> None:
    """The built dashboard (frontend/dist) holds no token or key: they are runtime settings in /config.js."""
    dist = ROOT / "frontend" / "dist"
    if not (dist / "index.html").exists():
        pytest.skip("frontend/dist is not built (make frontend-build)")
    needles = [TOKEN, NEWSAPI_KEY, "sk-", "Bearer ey"]
    env = ROOT / ".env"
    if env.exists():  # whatever secrets this checkout is configured with must not be in the bundle either
        for line in env.read_text().splitlines():
            name, _, value = line.partition("=")
            if value.strip() and any(k in name for k in ("TOKEN", "KEY", "PASSWORD", "SECRET")):
                needles.append(value.strip().strip("'\""))
    hits = [
        f"{path.relative_to(ROOT)}: {needle[:6]}..."
        for path in dist.rglob("*")
        if path.is_file() and path.suffix in {".js", ".html", ".css", ".json", ".map"}
        for needle in needles
        if needle in path.read_text(errors="replace")
    ]
    assert not hits
