"""Real Kafka and Redis for the tests, started by the project's own scripts (or reused when running)."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Infra:
    kafka_port: int
    redis_port: int
    started: list[str]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def script(self, name: str, action: str) -> None:
        env = {**os.environ, "KAFKA_PORT": str(self.kafka_port), "REDIS_PORT": str(self.redis_port)}
        subprocess.run([str(ROOT / "scripts" / f"{name}.sh"), action], check=True, env=env, timeout=180)


def start_infra() -> Infra:
    """Reuse Kafka/Redis already listening on the configured ports, else start them with scripts/."""
    infra = Infra(
        kafka_port=int(os.environ.get("KAFKA_PORT", "9092")),
        redis_port=int(os.environ.get("REDIS_PORT", "6379")),
        started=[],
    )
    for name, port in (("kafka", infra.kafka_port), ("redis", infra.redis_port)):
        if not port_open(port):
            infra.script(name, "start")
            infra.started.append(name)
    return infra


def stop_infra(infra: Infra) -> None:
    for name in reversed(infra.started):
        infra.script(name, "stop")
