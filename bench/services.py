"""The suite's services as child processes on a private slice of the real Kafka and Redis, for the benchmarks.

A `Slice` is one isolated deployment: its own topic prefix, Redis key prefix, consumer groups and ports.
Everything it starts is stopped, its topics deleted, its Redis keys and temporary files (service logs,
faust's data dir; BENCH_KEEP_LOGS=1 keeps them) removed when it closes.
Reuses the process harness (harness/): Kafka/Redis started by scripts/ only when not already running.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.common import peak_rss_mb, rss_mb
from common.kafka import ensure_topics
from common.settings import KafkaSettings, TopicNames
from harness.infra import Infra, free_port, start_infra, stop_infra
from harness.processes import ServiceProcess, python

__all__ = ["Infra", "Slice", "infra_pids", "start_infra", "stop_infra"]


def infra_pids(infra: Infra) -> dict[str, int]:
    """PIDs of the processes listening on the Kafka and Redis ports (for their memory)."""
    pids: dict[str, int] = {}
    for name, port in (("kafka", infra.kafka_port), ("redis", infra.redis_port)):
        try:
            out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
        except OSError:
            continue
        found = re.search(r"pid=(\d+)", out)
        if found:
            pids[name] = int(found.group(1))
    return pids


@dataclass
class Slice:
    infra: Infra
    name: str
    tier: str = "standard"
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[ServiceProcess] = field(default_factory=list)
    consumer: ServiceProcess | None = None
    workers: list[ServiceProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.topic_prefix = f"bench.{self.run_id}.{self.name}."
        self.key_prefix = f"bench:{self.run_id}:{self.name}:"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.kafka = KafkaSettings(bootstrap_servers=self.infra.bootstrap, topics=TopicNames(prefix=self.topic_prefix))

    @property
    def env(self) -> dict[str, str]:
        return {
            "ENVIRONMENT": "local",
            "LOG_LEVEL": "WARNING",
            "KAFKA__BOOTSTRAP_SERVERS": self.infra.bootstrap,
            "KAFKA__TOPICS__PREFIX": self.topic_prefix,
            "REDIS__URL": self.infra.redis_url,
            "REDIS__KEY_PREFIX": self.key_prefix,
            "CONSUMER__GROUP_ID": f"bench-{self.run_id}-{self.name}-consumer",
            "WORKER__APP_ID": self.worker_group,
            "INFERENCE__TIER": self.tier,
            **self.extra_env,
        }

    @property
    def worker_group(self) -> str:
        return f"bench-{self.run_id}-{self.name}-worker"

    @property
    def consumer_group(self) -> str:
        return self.env["CONSUMER__GROUP_ID"]

    async def create_topics(self) -> None:
        t = self.kafka.topics
        await ensure_topics(self.kafka, [t.raw_topic, t.analyzed_topic, t.dlq_topic])

    def start_consumer(self) -> ServiceProcess:
        port = free_port()
        argv = python("-m", "uvicorn", "consumer.main:app", "--host", "127.0.0.1", "--port", str(port))
        argv += ["--no-access-log", "--log-level", "warning"]
        self.consumer = ServiceProcess(
            "consumer", argv, self.env, self.tmp, port=port, ready_url=f"http://127.0.0.1:{port}/readyz"
        ).start()
        self.procs.append(self.consumer)
        return self.consumer

    def start_worker(self) -> ServiceProcess:
        port = free_port()
        i = len(self.workers)
        env = {**self.env, "WORKER__WEB_PORT": str(port), "WORKER__DATADIR": str(self.tmp / f"worker{i}")}
        proc = ServiceProcess(
            f"worker{i}",
            python("-m", "stream_worker", "worker", "-l", "warn"),
            env,
            self.tmp,
            port=port,
            ready_url=f"http://127.0.0.1:{port}/readyz",
        ).start()
        self.workers.append(proc)
        self.procs.append(proc)
        return proc

    def wait_workers_assigned(self, partitions: int, timeout: float = 120.0) -> None:
        """Until every worker answers ready and the partitions of `news.raw` are all assigned."""
        for w in self.workers:
            w.wait_ready(timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total, ready = 0, True
            for w in self.workers:
                try:
                    body = httpx.get(w.ready_url, timeout=2).json()
                except (httpx.HTTPError, ValueError):
                    ready = False
                    break
                ready = ready and bool(body.get("ready"))
                total += int(body.get("assigned_partitions", 0))
            # faust also assigns its own changelog/table topics: at least the raw topic's partitions.
            if ready and total >= partitions and all(self._assigned(w) for w in self.workers):
                return
            time.sleep(0.5)
        raise TimeoutError(f"workers of {self.name} not assigned within {timeout}s")

    @staticmethod
    def _assigned(w: ServiceProcess) -> bool:
        try:
            return int(httpx.get(w.ready_url, timeout=2).json().get("assigned_partitions", 0)) > 0
        except (httpx.HTTPError, ValueError):
            return False

    def peak_rss(self) -> dict[str, float | None]:
        """VmHWM of each running service (call before stopping them)."""
        return {p.name: peak_rss_mb(p.proc.pid) for p in self.procs if p.proc is not None}

    def rss(self) -> dict[str, float | None]:
        return {p.name: rss_mb(p.proc.pid) for p in self.procs if p.proc is not None}

    def log_tails(self) -> dict[str, str]:
        return {p.name: p.tail(15) for p in self.procs}

    async def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        await self._drop_data()
        if os.environ.get("BENCH_KEEP_LOGS") != "1":  # services' logs and faust's data dir
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def _drop_data(self) -> None:
        redis = Redis.from_url(self.infra.redis_url)
        try:
            batch: list[Any] = []
            async for key in redis.scan_iter(match=f"{self.key_prefix}*", count=1_000):
                batch.append(key)
                if len(batch) >= 500:
                    await redis.unlink(*batch)
                    batch = []
            if batch:
                await redis.unlink(*batch)
        finally:
            await redis.aclose()
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.infra.bootstrap, request_timeout_ms=15_000)
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(self.topic_prefix)]
            names += [t for t in await admin.list_topics() if t.startswith(self.worker_group)]  # faust's own
            if names:
                await admin.delete_topics(sorted(set(names)))
        except Exception as exc:  # cleanup is best effort; say what was left
            print(f"could not delete topics of {self.name}: {exc}")
        finally:
            await admin.close()


def env_for_replay(slice_: Slice) -> dict[str, str]:
    return {**os.environ, **slice_.env, "PRODUCER__DEDUP": "false", "PYTHONUNBUFFERED": "1"}


async def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())
