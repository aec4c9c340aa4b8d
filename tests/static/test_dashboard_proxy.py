"""The dashboard's nginx (docker/dashboard/) run for real: the entrypoint script renders the server block from
the environment, nginx serves it, and a recording upstream stands in for the consumer. Browsers must hold no
credential: /config.js carries none, /api/ gets the read token added server-side (replacing whatever the browser
sent), the WebSocket passes its ticket through, and the access log never carries a query string or a token."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.infra import free_port
from tests.static.tools import ROOT, tool

pytestmark = pytest.mark.unit

DASHBOARD = ROOT / "docker" / "dashboard"
READ = "read-token-1"
TICKET = "ticket-that-must-not-be-logged"


@dataclass
class Upstream:
    """A stand-in for the consumer that records each request's path and Authorization header."""

    port: int
    seen: list[tuple[str, str | None]] = field(default_factory=list)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    record = Upstream(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            record.seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", record.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


def render(tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the image's entrypoint script with its two paths moved under `tmp` (nothing else changed)."""
    script = (DASHBOARD / "40-news-config.sh").read_text()
    script = script.replace("/etc/nginx/news/default.conf.template", str(DASHBOARD / "default.conf.template"))
    script = script.replace("/tmp/nginx", str(tmp / "conf.d"))  # noqa: S108 (the image's path, replaced)
    path = tmp / "render.sh"
    path.write_text(script)
    return subprocess.run(
        ["sh", str(path)], env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, check=False
    )


@dataclass
class Nginx:
    url: str
    log: Path


@pytest.fixture
def nginx(tmp_path: Path, upstream: Upstream) -> Iterator[Nginx]:
    binary = tool("nginx", hint="apt-get install nginx (make system-deps installs it: mk/deploy.mk)")
    tmp_path.chmod(0o755)  # nginx's workers run as nobody when the test runs as root
    result = render(tmp_path, {"CONSUMER_URL": f"http://127.0.0.1:{upstream.port}", "API_READ_TOKENS": f"{READ},old"})
    assert result.returncode == 0, result.stderr
    port = free_port()
    server = tmp_path / "conf.d" / "default.conf"
    server.write_text(server.read_text().replace("listen 8080;", f"listen 127.0.0.1:{port};"))
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("<html></html>")
    server.write_text(server.read_text().replace("root /usr/share/nginx/html;", f"root {tmp_path / 'html'};"))
    main = (DASHBOARD / "nginx.conf").read_text()
    # the image's paths under /tmp (pid, temp files, the rendered server block) become this test's own
    main = main.replace("/tmp/nginx/", "/tmp/conf.d/").replace("/tmp/", f"{tmp_path}/")  # noqa: S108
    main = main.replace("access_log /dev/stdout", f"access_log {tmp_path / 'access.log'}")
    (tmp_path / "nginx.conf").write_text(main)
    output = (tmp_path / "nginx.out").open("w")  # a file, not a pipe: nothing blocks on nginx's output
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()  # noqa: S310 (a loopback URL)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.terminate()  # not kill: nginx's master stops its workers on SIGTERM only
                process.wait(timeout=10)
                pytest.fail(f"nginx did not start: {(tmp_path / 'nginx.out').read_text()}")
            time.sleep(0.05)
    try:
        yield Nginx(url, tmp_path / "access.log")
    finally:
        process.terminate()  # SIGTERM: nginx's fast shutdown, workers included
        process.wait(timeout=10)
        output.close()


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> bytes:
    request = urllib.request.Request(url, headers=headers or {}, method=method)  # noqa: S310 (a loopback URL)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        body: bytes = response.read()
        return body


def test_browsers_get_no_token_and_the_api_gets_the_read_token(nginx: Nginx, upstream: Upstream) -> None:
    config = get(f"{nginx.url}/config.js").decode()
    assert "__NEWS_CONFIG__" in config and "/api" in config
    assert READ not in config and "token" not in config.lower(), config
    # a browser's own header (say, a stolen write token) is replaced, never passed on
    get(f"{nginx.url}/api/news/recent?limit=5", {"Authorization": "Bearer browser-write-token"})
    get(f"{nginx.url}/api/ws/ticket", method="POST")
    assert upstream.seen[0] == ("/news/recent?limit=5", f"Bearer {READ}")
    assert upstream.seen[1] == ("/ws/ticket", f"Bearer {READ}"), "the ticket is bought with the read token"


def test_the_websocket_passes_its_ticket_and_nothing_secret_is_logged(nginx: Nginx, upstream: Upstream) -> None:
    get(f"{nginx.url}/ws?ticket={TICKET}", {"Authorization": "Bearer browser-write-token"})
    assert upstream.seen == [(f"/ws?ticket={TICKET}", None)], "the ticket is the credential; no header passes"
    get(f"{nginx.url}/api/news/top?token=planted-{READ}")
    time.sleep(0.2)  # nginx writes the access log line after the answer
    log = nginx.log.read_text()
    assert "/ws " in log and "/api/news/top " in log, log
    assert TICKET not in log and READ not in log and "?" not in log, log


def test_entrypoint_takes_the_first_read_token_and_refuses_unsafe_ones(tmp_path: Path) -> None:
    ok = render(tmp_path, {"CONSUMER_URL": "http://consumer:8002", "API_READ_TOKENS": f" {READ} , second"})
    assert ok.returncode == 0, ok.stderr
    text = (tmp_path / "conf.d" / "default.conf").read_text()
    assert f'proxy_set_header Authorization "Bearer {READ}";' in text
    assert "second" not in text and "${" not in text
    none = render(tmp_path, {"CONSUMER_URL": "http://consumer:8002"})
    assert none.returncode == 0, none.stderr
    assert 'proxy_set_header Authorization "";' in (tmp_path / "conf.d" / "default.conf").read_text()
    for unsafe in ('abc";return', "a$host", "a;b"):
        bad = render(tmp_path, {"CONSUMER_URL": "http://consumer:8002", "API_READ_TOKENS": unsafe})
        assert bad.returncode != 0, f"{unsafe!r} was accepted"
        assert "bearer token" in bad.stderr
