"""Serve the built dashboard (frontend/dist) for `make up`, with its runtime config.

`/config.js` is generated from the command line so the same build works against any API:
    python scripts/serve_dashboard.py --port 5173 --api http://127.0.0.1:8002 [--token TOKEN]
(Containers do the same with nginx; see Dockerfile.dashboard.)
"""

from __future__ import annotations

import argparse
import functools
import json
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"


def config_js(api: str, token: str | None) -> bytes:
    ws = api.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + "/ws"
    config = {"apiBase": api.rstrip("/"), "wsUrl": ws, "token": token or ""}
    return f"window.__NEWS_CONFIG__ = {json.dumps(config)};\n".encode()


class Handler(SimpleHTTPRequestHandler):
    config: bytes = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] == "/config.js":
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5173)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api", default="http://127.0.0.1:8002", help="consumer base URL")
    parser.add_argument("--token", default=None, help="API token the dashboard sends (if the API needs one)")
    parser.add_argument("--dist", type=Path, default=DIST)
    args = parser.parse_args()
    Handler.config = config_js(args.api, args.token)
    handler = functools.partial(Handler, directory=str(args.dist))
    ThreadingHTTPServer((args.host, args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
