"""Serve the built dashboard (frontend/dist) for `make up`: its runtime config, and the consumer's API behind it.

    DASHBOARD_READ_TOKEN=... python scripts/serve_dashboard.py --port 5173 --api http://127.0.0.1:8002

Browsers hold no API token (docs/security.md). This server proxies the consumer's API under `/api/` and adds
the read credential itself, so `/config.js` carries none:

    GET|HEAD /api/<path>?<query>  ->  GET|HEAD <api>/<path>?<query>   with `Authorization: Bearer <read token>`
    POST /api/ws/ticket           ->  POST <api>/ws/ticket            (same header; answers {"ticket", "expires_in"})
    anything else under /api/     ->  405: the dashboard never writes, and a read token could not anyway

The browser's own Authorization and Cookie headers are never forwarded. The live feed asks `/api/ws/ticket`
for a single-use ticket and opens `<consumer>/ws?ticket=...` itself (`wsUrl` in /config.js).
The containers' nginx (docker/dashboard) keeps the same contract: the same paths and methods, the read
token from `DASHBOARD_READ_TOKEN` in the container's environment, `/config.js` without a token, and no
query string (a ticket) in its access log.

The read token comes from the environment (`DASHBOARD_READ_TOKEN`, else the first of `API_READ_TOKENS`, as the
containers do), never the command line, where `ps` would show it. Neither set: the API is expected to be
open (local development), and nothing is added.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.webapp import redact  # noqa: E402 (the repository root is put on the path just above)

__all__ = ["READ_TOKEN_ENV", "Handler", "config_js", "main"]

DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"
READ_TOKEN_ENV = "DASHBOARD_READ_TOKEN"  # noqa: S105 (the variable's name, not a token)
API_PREFIX = "/api"
TICKET_PATH = "/ws/ticket"

# Request headers passed on to the API (conditional requests, content negotiation), and response headers
# passed back (the list cursor, caching, downloads); hop-by-hop and credential headers never are.
_FORWARD_REQUEST = ("accept", "accept-language", "if-none-match", "if-modified-since")
_FORWARD_RESPONSE = (
    "content-type",
    "content-encoding",
    "etag",
    "cache-control",
    "last-modified",
    "content-disposition",
    "x-next-cursor",
    "retry-after",
    "www-authenticate",
)


def config_js(api_ws: str) -> bytes:
    """`window.__NEWS_CONFIG__`: the API is this origin's /api (proxied), the live feed the consumer's /ws."""
    ws = api_ws.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + "/ws"
    config = {"apiBase": API_PREFIX, "wsUrl": ws}
    return f"window.__NEWS_CONFIG__ = {json.dumps(config)};\n".encode()


class Handler(SimpleHTTPRequestHandler):
    config: bytes = b""
    api: str = "http://127.0.0.1:8002"
    read_token: str | None = None
    client: httpx.Client | None = None

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/config.js":
            self._send(200, self.config, "application/javascript; charset=utf-8", {"Cache-Control": "no-store"})
        elif path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            self._proxy("GET")
        else:
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if self.path.startswith(API_PREFIX + "/"):
            self._proxy("HEAD")
        else:
            super().do_HEAD()

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] == API_PREFIX + TICKET_PATH:
            self._proxy("POST")
        else:
            self._send(405, b'{"detail":"the dashboard proxy only reads"}', "application/json", {"Allow": "GET, HEAD"})

    do_PUT = do_PATCH = do_DELETE = do_POST  # noqa: N815 (refused the same way)

    def _proxy(self, method: str) -> None:
        client = self.client or httpx.Client()
        target = self.api.rstrip("/") + self.path[len(API_PREFIX) :]
        headers = {k: v for k in _FORWARD_REQUEST if (v := self.headers.get(k)) is not None}
        if self.read_token:
            headers["Authorization"] = f"Bearer {self.read_token}"
        try:
            with client.stream(method, target, headers=headers) as answer:
                self.send_response(answer.status_code)
                for name in _FORWARD_RESPONSE:
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                # HTTP/1.0 (http.server's default): the body, streamed as it comes, ends when the connection does.
                self.end_headers()
                if method != "HEAD":
                    for chunk in answer.iter_raw():
                        self.wfile.write(chunk)
        except httpx.HTTPError as exc:
            body = json.dumps({"detail": f"the API did not answer ({type(exc).__name__})"}).encode()
            self._send(502, body, "application/json")

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        sys.stderr.write(redact(f"{self.address_string()} - - [{self.log_date_time_string()}] {format % args}") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5173)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api", default="http://127.0.0.1:8002", help="consumer base URL (REST, proxied)")
    parser.add_argument("--ws", default=None, help="consumer base URL the browser opens /ws on (default: --api)")
    parser.add_argument("--dist", type=Path, default=DIST)
    args = parser.parse_args()
    Handler.config = config_js(args.ws or args.api)
    Handler.api = args.api
    # Like the containers' nginx, the first of API_READ_TOKENS when no token is named for the dashboard.
    first_read = os.environ.get("API_READ_TOKENS", "").split(",", 1)[0]
    Handler.read_token = (os.environ.get(READ_TOKEN_ENV, "") or first_read).strip() or None
    Handler.client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0))
    if Handler.read_token is None:
        note = f"serve_dashboard: no {READ_TOKEN_ENV} or API_READ_TOKENS: the API is expected to be open"
        print(note, file=sys.stderr)
    handler = functools.partial(Handler, directory=str(args.dist))
    ThreadingHTTPServer((args.host, args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
