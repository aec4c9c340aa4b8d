"""The default destination of Alertmanager's webhook receivers (monitoring/alertmanager.yml): one JSON line per
notification appended to a file, and a one-line summary on stderr, so a local suite's alerts land somewhere
readable without a chat or mail account.

    python scripts/alert_log.py --port 9095 --file alerts.log

Replace the receivers' URLs (or add Slack, email, PagerDuty receivers) to send them elsewhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["main"]

_MAX_BODY = 1 << 20  # Alertmanager's groups are small; refuse anything that is not one


class _Handler(BaseHTTPRequestHandler):
    path_out: Path
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_BODY:
            self.send_error(413 if length else 411)
            return
        try:
            body = json.loads(self.rfile.read(length))
            alerts = body["alerts"]
        except (ValueError, KeyError, TypeError):
            self.send_error(400, "not an Alertmanager webhook payload")
            return
        record = {"receiver": self.path.strip("/"), **body}
        with self.lock, self.path_out.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")
        names = ", ".join(sorted({a.get("labels", {}).get("alertname", "?") for a in alerts}))
        print(f"alert {body.get('status')} -> {record['receiver']}: {names}", file=sys.stderr, flush=True)  # noqa: T201
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass  # the summary line above is the log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--file", type=Path, default=Path("alerts.log"))
    args = parser.parse_args()
    _Handler.path_out = args.file
    ThreadingHTTPServer((args.host, args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
