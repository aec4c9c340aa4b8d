"""Real Kafka, Redis and OpenSearch for the tests, started by the project's own scripts (or reused when running).

Kafka and Redis start with the session; OpenSearch only when something asks for it
(`Infra.ensure_opensearch`), because it costs half a gigabyte and ~20 s of start-up that most tests
never need.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["ROOT", "Infra", "free_port", "opensearch_ready", "port_open", "start_infra", "stop_infra"]

ROOT = Path(__file__).resolve().parents[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def opensearch_ready(url: str) -> bool:
    """True when the cluster at `url` answers and its primaries are allocated (status yellow or green)."""
    try:
        answer = httpx.get(f"{url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "1s"}, timeout=3)
        # A 408 means still red after the 1 s wait; a node still starting refuses or answers 503.
        return answer.status_code == 200 and answer.json().get("status") in {"yellow", "green"}
    except (httpx.HTTPError, ValueError):
        return False


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


@dataclass
class Infra:
    kafka_port: int
    redis_port: int
    started: list[str]
    opensearch_port: int = field(default_factory=lambda: _env_port("OPENSEARCH_PORT", 9200))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def opensearch_url(self) -> str:
        return f"http://127.0.0.1:{self.opensearch_port}"

    def script(self, name: str, action: str) -> None:
        env = {
            **os.environ,
            "KAFKA_PORT": str(self.kafka_port),
            "REDIS_PORT": str(self.redis_port),
            "OPENSEARCH_PORT": str(self.opensearch_port),
        }
        subprocess.run([str(ROOT / "scripts" / f"{name}.sh"), action], check=True, env=env, timeout=240)

    def ensure_opensearch(self, timeout: float = 180.0) -> str:
        """Reuse the OpenSearch answering on `opensearch_port`, else start one with scripts/opensearch.sh.

        Returns its URL once the cluster is at least yellow. A node that listens but is still
        starting (another session's) is waited for, not started twice.
        """
        if opensearch_ready(self.opensearch_url):
            return self.opensearch_url
        if not port_open(self.opensearch_port):
            self.script("opensearch", "start")
            self.started.append("opensearch")
        deadline = time.monotonic() + timeout
        while not opensearch_ready(self.opensearch_url):
            if time.monotonic() > deadline:
                raise TimeoutError(f"OpenSearch at {self.opensearch_url} did not become ready within {timeout:.0f}s")
            time.sleep(0.5)
        return self.opensearch_url


def start_infra(*, opensearch: bool = False) -> Infra:
    """Reuse Kafka/Redis already listening on the configured ports, else start them with scripts/.

    `opensearch=True` also ensures OpenSearch now; otherwise call `Infra.ensure_opensearch` when needed.
    """
    infra = Infra(
        kafka_port=_env_port("KAFKA_PORT", 9092),
        redis_port=_env_port("REDIS_PORT", 6379),
        started=[],
    )
    for name, port in (("kafka", infra.kafka_port), ("redis", infra.redis_port)):
        if not port_open(port):
            infra.script(name, "start")
            infra.started.append(name)
    if opensearch:
        infra.ensure_opensearch()
    return infra


def stop_infra(infra: Infra) -> None:
    """Stop what this process started (and only that), newest first."""
    for name in reversed(infra.started):
        infra.script(name, "stop")
