"""Access and secrets on real processes (README "Security"): read and write tokens where configured, several
of each (rotation), WebSocket tickets that work once and briefly, a rate limit on writes, the dashboard's
proxy that holds the read token for the browser, CORS only for configured origins, and planted secrets
(tokens, tickets, a provider key) that never show in any service's log, /metrics, error bodies,
/config.js or the dashboard bundle."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from harness.infra import ROOT, free_port
from harness.processes import ServiceProcess, python
from tests.support.fake_news import news_server

pytestmark = pytest.mark.integration

TOKEN = "planted-api-token-7f3a9c"
NEWSAPI_KEY = "planted-newsapi-key-51d2e8"
READ = "planted-read-token-2b8e41"
READ_NEXT = "planted-read-token-next-93c0d7"  # the one a rotation brings in, beside the old
WRITE = "planted-write-token-6d1f0a"
WRITE_NEXT = "planted-write-token-next-0e5b72"
SCOPED = {"API_READ_TOKENS": f"{READ},{READ_NEXT}", "API_WRITE_TOKENS": f"{WRITE},{WRITE_NEXT}"}
UNAUTHORIZED = 4401


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ticket(base: str, token: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{base}/ws/ticket", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["expires_in"] == 30 and len(body["ticket"]) >= 32
    return str(body["ticket"])


async def ws_close_code(url: str, headers: dict[str, str] | None = None) -> int | None:
    """The close code the server ends the connection with before sending anything (None: it sent data)."""
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 15)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return None


async def ws_first(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 15))
        return message


def spawn_dashboard(tmp_path: Path, api: str, read_token: str | None) -> ServiceProcess:
    """scripts/serve_dashboard.py as `make up` runs it: the read token from the environment, not argv."""
    port = free_port()
    dist = tmp_path / "dist"
    dist.mkdir(exist_ok=True)
    (dist / "index.html").write_text("<!doctype html><title>news</title>")
    argv = python(str(ROOT / "scripts" / "serve_dashboard.py"), "--port", str(port), "--api", api, "--dist", str(dist))
    env = {"DASHBOARD_READ_TOKEN": read_token or ""}
    proc = ServiceProcess(
        f"dashboard-{port}", argv, env, tmp_path, port=port, ready_url=f"http://127.0.0.1:{port}/config.js"
    )
    proc.start()
    proc.wait_ready()
    return proc


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


async def test_read_and_write_scopes_with_rotation(spawn: Callable[..., ServiceProcess]) -> None:
    """Two read and two write tokens (a rotation in progress) all work, each within its scope; the older
    single API_TOKEN still works as a write token."""
    env = {**SCOPED, "API_TOKEN": TOKEN}
    producer = spawn("producer", env={**env, "PRODUCER__POLLING": "false"})
    consumer = spawn("consumer", env=env)
    p, c = f"http://127.0.0.1:{producer.port}", f"http://127.0.0.1:{consumer.port}"
    watchlist = {"name": "scopes", "rules": [{"kind": "entity_spike", "entity": "org:zeta"}]}
    async with httpx.AsyncClient(timeout=30) as client:
        for base in (p, c):
            assert (await client.get(f"{base}/")).status_code == 401
            assert (await client.get(f"{base}/", headers=bearer("wrong"))).status_code == 401
            for token in (READ, READ_NEXT, WRITE, WRITE_NEXT, TOKEN):
                assert (await client.get(f"{base}/", headers=bearer(token))).status_code == 200, token
        for token in (READ, READ_NEXT):  # a read token cannot write
            assert (await client.post(f"{p}/fetch-now", headers=bearer(token))).status_code == 403
            refused = await client.post(f"{c}/watchlists", json=watchlist, headers=bearer(token))
            assert refused.status_code == 403 and "read" in refused.json()["detail"]
        assert (await client.get(f"{c}/watchlists", headers=bearer(READ))).json() == []
        for token in (WRITE, WRITE_NEXT, TOKEN):
            assert (await client.post(f"{p}/fetch-now", headers=bearer(token))).status_code == 200, token
            created = await client.post(f"{c}/watchlists", json=watchlist, headers=bearer(token))
            assert created.status_code == 201, created.text
            deleted = await client.delete(f"{c}/watchlists/{created.json()['id']}", headers=bearer(READ))
            assert deleted.status_code == 403
        assert len((await client.get(f"{c}/watchlists", headers=bearer(READ_NEXT))).json()) == 3
        # The ops routes stay open for probes and Prometheus.
        for base in (p, c):
            for path in ("/healthz", "/readyz", "/metrics"):
                assert (await client.get(base + path)).status_code == 200, path


async def test_write_burst_gets_429_with_retry_after_per_client(spawn: Callable[..., ServiceProcess]) -> None:
    env = {**SCOPED, "API_WRITE_RATE": "0.5", "API_WRITE_BURST": "3", "PRODUCER__POLLING": "false"}
    producer = spawn("producer", env=env)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=30) as client:
        statuses = [(await client.post("/fetch-now", headers=bearer(WRITE))).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        limited = await client.post("/fetch-now", headers=bearer(WRITE))
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 2
        # Per client: the other write token has its own bucket; reads are not limited.
        assert (await client.post("/fetch-now", headers=bearer(WRITE_NEXT))).status_code == 200
        assert all([(await client.get("/", headers=bearer(WRITE))).status_code == 200 for _ in range(10)])
        await asyncio.sleep(float(limited.headers["Retry-After"]))
        assert (await client.post("/fetch-now", headers=bearer(WRITE))).status_code == 200
        spec = (await client.get("/openapi.json")).json()["paths"]["/fetch-now"]["post"]["responses"]
        assert {"401", "403", "429"} <= set(spec)


async def test_websocket_tickets_are_single_use_short_lived_and_shared_by_replicas(
    spawn: Callable[..., ServiceProcess], redis: Redis, namespace: str
) -> None:
    one = spawn("consumer", env=SCOPED)
    two = spawn("consumer", env=SCOPED)
    a, b = f"http://127.0.0.1:{one.port}", f"http://127.0.0.1:{two.port}"
    ws_a, ws_b = f"ws://127.0.0.1:{one.port}/ws", f"ws://127.0.0.1:{two.port}/ws"
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(f"{a}/ws/ticket")).status_code == 401
        assert (await client.post(f"{a}/ws/ticket", headers=bearer("wrong"))).status_code == 401
    # A ticket from one replica opens a socket on the other (they share Redis), once.
    issued = await ticket(a, READ)
    assert (await ws_first(f"{ws_b}?ticket={issued}"))["type"] == "initial_data"
    assert await ws_close_code(f"{ws_b}?ticket={issued}") == UNAUTHORIZED  # used
    assert await ws_close_code(f"{ws_a}?ticket={issued}") == UNAUTHORIZED
    # Absent, made up, or a token where a ticket belongs: refused (no credential is taken from a URL).
    for query in ("", "?ticket=", "?ticket=made-up", f"?token={READ}", f"?ticket={READ}"):
        assert await ws_close_code(ws_a + query) == UNAUTHORIZED, query
    # Expired: Redis drops the ticket when its 30 s are up (made to happen now).
    stale = await ticket(b, READ_NEXT)
    key = f"{namespace}:ws-ticket:" + hashlib.sha256(stale.encode()).hexdigest()
    ttl = await redis.ttl(key)
    assert 0 < ttl <= 30, "a ticket is stored hashed, with its lifetime"
    await redis.pexpire(key, 1)
    await asyncio.sleep(0.05)
    assert await ws_close_code(f"{ws_b}?ticket={stale}") == UNAUTHORIZED
    # Two connections racing with one ticket: exactly one gets in.
    raced = await ticket(a, WRITE)
    codes = await asyncio.gather(ws_close_code(f"{ws_a}?ticket={raced}"), ws_close_code(f"{ws_b}?ticket={raced}"))
    assert sorted(codes, key=str) == [UNAUTHORIZED, None], codes
    # A non-browser client may send its token as a header instead.
    assert (await ws_first(ws_a, bearer(READ)))["type"] == "initial_data"
    assert await ws_close_code(ws_a, bearer("wrong")) == UNAUTHORIZED


async def test_dashboard_proxy_holds_the_read_token(spawn: Callable[..., ServiceProcess], tmp_path: Path) -> None:
    """`make up`'s dashboard server: /config.js without a token, /api/ reads with the read token added, the
    ticket through it, and no write through it even with a write token in hand."""
    consumer = spawn("consumer", env=SCOPED)
    dash = spawn_dashboard(tmp_path, f"http://127.0.0.1:{consumer.port}", READ)
    d = f"http://127.0.0.1:{dash.port}"
    try:
        async with httpx.AsyncClient(base_url=d, timeout=15) as client:
            config = (await client.get("/config.js")).text
            assert "token" not in config.lower() and READ not in config
            assert f'"wsUrl": "ws://127.0.0.1:{consumer.port}/ws"' in config and '"apiBase": "/api"' in config
            recent = await client.get("/api/news/recent?limit=5")
            assert recent.status_code == 200 and recent.json() == []
            # The browser's own credentials are replaced, never passed on.
            assert (await client.get("/api/news/recent", headers=bearer("wrong"))).status_code == 200
            assert (await client.get("/api/nope")).status_code == 404
            issued = (await client.post("/api/ws/ticket")).json()["ticket"]
            watchlist = {"name": "x", "rules": [{"kind": "entity_spike", "entity": "org:zeta"}]}
            for method in ("POST", "DELETE", "PUT"):
                refused = await client.request(method, "/api/watchlists", json=watchlist, headers=bearer(WRITE))
                assert refused.status_code == 405, method
        assert (await ws_first(f"ws://127.0.0.1:{consumer.port}/ws?ticket={issued}"))["type"] == "initial_data"
    finally:
        dash.stop()
    # Without a read token the proxy adds nothing: the API refuses, and the browser sees why.
    bare = spawn_dashboard(tmp_path, f"http://127.0.0.1:{consumer.port}", None)
    try:
        assert httpx.get(f"http://127.0.0.1:{bare.port}/api/news/recent", timeout=15).status_code == 401
    finally:
        bare.stop()


async def test_planted_secrets_never_leak(spawn: Callable[..., ServiceProcess], tmp_path: Path) -> None:
    """Tokens, tickets and a provider key are used (and misused: a token in a query string, wrong tokens) on
    every service, through a whole article's way from push to WebSocket; then every log, every /metrics,
    every error body and /config.js is searched for them."""
    with news_server() as news:
        news.fail_next("apiKeyInvalid", times=5)  # the key is refused: the error path is logged
        debug = {**SCOPED, "API_TOKEN": TOKEN, "LOG_LEVEL": "DEBUG"}
        env = {**debug, "NEWSAPI__API_KEY": NEWSAPI_KEY, "NEWSAPI__BASE_URL": news.url, "PRODUCER__POLLING": "false"}
        producer = spawn("producer", env=env)
        consumer = spawn("consumer", env=debug)
        inference = spawn("inference", env={**debug, "INFERENCE__TIER": "fast"})
        worker = spawn(
            "worker",
            env={
                **debug,
                "WORKER__INFERENCE_URL": f"http://127.0.0.1:{inference.port}",
                "WORKER__BATCH_SIZE": "5",
                "WORKER__BATCH_TIMEOUT": "0.2",
            },
        )
        dash = spawn_dashboard(tmp_path, f"http://127.0.0.1:{consumer.port}", READ)
        services = [producer, consumer, inference, worker, dash]
        secrets = [TOKEN, NEWSAPI_KEY, READ, READ_NEXT, WRITE, WRITE_NEXT]
        bodies: list[str] = []
        p, c, i = (f"http://127.0.0.1:{s.port}" for s in (producer, consumer, inference))
        d, ws = f"http://127.0.0.1:{dash.port}", f"ws://127.0.0.1:{consumer.port}/ws"
        async with httpx.AsyncClient(timeout=60) as client:
            bodies.append((await client.post(f"{p}/fetch-now", headers=bearer(WRITE))).text)
            bodies.append((await client.get(f"{d}/config.js")).text)
            for url in (f"{p}/", f"{p}/sources", f"{p}/openapi.json", f"{c}/readyz", f"{i}/v1/models", f"{d}/api/"):
                for headers in ({}, bearer("wrong"), bearer(READ), bearer(WRITE), bearer(TOKEN)):
                    bodies.append((await client.get(url, headers=headers)).text)
            for headers in ({}, bearer("wrong"), bearer(READ), bearer(WRITE)):
                for path in (
                    "/news/recent?limit=9999",
                    "/news/not-an-id",
                    "/news/" + "0" * 32,
                    "/stats/sentiment?bucket=x",
                ):
                    bodies.append((await client.get(c + path, headers=headers)).text)
                # The audit's leak: a token in a query string must not reach the access log.
                bodies.append((await client.get(f"{c}/news/recent?token={READ}&limit=1", headers=headers)).text)
                bodies.append((await client.post(f"{p}/fetch-now?token={WRITE}", headers=headers)).text)
                bodies.append((await client.post(f"{i}/v1/analyze?token={READ}", json={}, headers=headers)).text)
                bodies.append((await client.post(f"{c}/watchlists", json={"name": "x"}, headers=headers)).text)
            bodies.append((await client.post(f"{p}/articles", content=b"{broken", headers=bearer(WRITE))).text)
            # A whole article: pushed with a write token, analysed by the worker through the inference
            # service (the worker presents API_TOKEN), stored, and delivered live to a ticket holder.
            tickets = [await ticket(c, READ), (await client.post(f"{d}/api/ws/ticket")).json()["ticket"]]
            secrets += tickets
            async with websockets.connect(f"{ws}?ticket={tickets[0]}") as live:
                assert json.loads(await asyncio.wait_for(live.recv(), 15))["type"] == "initial_data"
                item = {
                    "url": f"https://leak.example/{tmp_path.name}",
                    "title": "Bank holds rates",
                    "source": "Leak Wire",
                }
                pushed = await client.post(f"{p}/articles", json={"articles": [item]}, headers=bearer(WRITE))
                assert pushed.json()["accepted"] == 1, pushed.text
                while (message := json.loads(await asyncio.wait_for(live.recv(), 120)))["type"] != "new_analysis":
                    pass
                assert message["data"]["url"] == item["url"]
            assert await ws_close_code(f"{ws}?ticket={tickets[0]}") == UNAUTHORIZED  # used: logged, refused
            assert await ws_close_code(f"{ws}?token={READ}") == UNAUTHORIZED
            assert (await ws_first(f"{ws}?ticket={tickets[1]}"))["type"] == "initial_data"
            for base in (p, c, i, f"http://127.0.0.1:{worker.port}"):
                bodies.append((await client.get(f"{base}/metrics")).text)
        assert any(r["headers"].get("x-api-key") == NEWSAPI_KEY for r in news.requests), "the key was never used"
    for service in services:
        service.stop()
    logs = {s.name: s.log_path.read_text(errors="replace") for s in services}
    assert "ticket=[redacted]" in logs[consumer.name], "the WebSocket handshakes were not logged at all"
    for secret in secrets:
        leaked_logs = [name for name, text in logs.items() if secret in text]
        assert not leaked_logs, (secret[:12], leaked_logs)
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
