"""A local HTTP server for the saved pages beside this file, with what a polite fetcher must cope with:
`/robots.txt` (disallowing `/private/`), `/slow/...` (answers after `slow_seconds`), `/huge.html` (a page
larger than any sane limit), and a record of requests and of the most requests in flight at once per path
prefix, so a test can check the per-host limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.infra import free_port

__all__ = ["PAGES", "PageServer", "page_server"]

PAGES = Path(__file__).resolve().parent


class PageServer:
    def __init__(self, port: int | None = None, slow_seconds: float = 3.0) -> None:
        self.port = port or free_port()
        self.slow_seconds = slow_seconds
        self.requests: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page(self, name: str) -> str:
        return f"{self.url}/{name}"

    def text(self, name: str) -> str:
        return (PAGES / name).read_text(encoding="utf-8")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(self.path)
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                path = self.path.split("?")[0]
                if path.startswith("/slow/"):
                    time.sleep(server.slow_seconds)
                    path = "/" + path.removeprefix("/slow/")
                if path == "/huge.html":
                    body = b"<html><body><article>" + b"<p>filler text</p>" * 400_000 + b"</article></body></html>"
                    return self._send(200, body, "text/html; charset=utf-8")
                file = (PAGES / path.lstrip("/")).resolve()
                if PAGES not in file.parents or not file.is_file() or file.suffix not in (".html", ".txt"):
                    return self._send(404, b"<html><body>Not found</body></html>", "text/html")
                kind = "text/plain" if file.suffix == ".txt" else "text/html; charset=utf-8"
                # Paced a little, so that fetches that overlap are seen to overlap.
                time.sleep(0.05)
                self._send(200, file.read_bytes(), kind)

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher stopped reading (a page over its size limit)

        return Handler

    @contextmanager
    def serve(self) -> Iterator[PageServer]:
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=10)


@contextmanager
def page_server(slow_seconds: float = 3.0) -> Iterator[PageServer]:
    with PageServer(slow_seconds=slow_seconds).serve() as server:
        yield server
