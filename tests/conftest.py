"""Session fixtures: real Kafka, Redis and OpenSearch (scripts/), and per-test isolation by topic, key and index prefix.

OpenSearch starts only for a session in which some test asks for `opensearch_url` (or a fixture built
on it): most tests never need its half gigabyte and ~20 s start-up.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opensearchpy import AsyncOpenSearch
from redis.asyncio import Redis

from common.settings import KafkaSettings, RedisSettings, TopicNames
from common.webapp import RepeatFilter
from harness.infra import Infra, free_port, start_infra, stop_infra
from harness.processes import ServiceProcess, python


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    started = start_infra()
    yield started
    stop_infra(started)


@pytest.fixture
def namespace() -> str:
    """A fresh prefix for this test's topics, consumer groups and Redis keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def opensearch_url(infra: Infra) -> str:
    """URL of a real OpenSearch (reused when one answers on OPENSEARCH_PORT, else started; stopped at the end)."""
    return infra.ensure_opensearch()


def _opensearch_call(method: str, url: str) -> Any:
    """The JSON answer, or None for a 404 (nothing of that name); other errors raise."""
    answer = httpx.request(method, url, timeout=30)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.json()


def _drop_prefixed(url: str, prefix: str) -> None:
    """Delete this test's indices and index templates (by name: the node refuses wildcard deletes)."""
    resolved = _opensearch_call("GET", f"{url}/_resolve/index/{prefix}*?expand_wildcards=all")
    names = [entry["name"] for entry in (resolved or {}).get("indices", [])]
    if names:
        _opensearch_call("DELETE", f"{url}/{','.join(names)}")
    templates = _opensearch_call("GET", f"{url}/_index_template/{prefix}*")
    for template in (templates or {}).get("index_templates", []):
        _opensearch_call("DELETE", f"{url}/_index_template/{template['name']}")


@pytest.fixture
def search_prefix(opensearch_url: str, namespace: str) -> Iterator[str]:
    """A fresh prefix for this test's OpenSearch indices, aliases and templates (`<namespace>-`); dropped after."""
    prefix = f"{namespace}-"
    yield prefix
    _drop_prefixed(opensearch_url, prefix)


@pytest.fixture
async def opensearch(opensearch_url: str) -> AsyncIterator[AsyncOpenSearch]:
    """An async opensearch-py client on the session's OpenSearch (use `search_prefix` for index names)."""
    client = AsyncOpenSearch(hosts=[opensearch_url])
    yield client
    await client.close()


@pytest.fixture
async def search_env(opensearch: AsyncOpenSearch, opensearch_url: str, search_prefix: str) -> dict[str, str]:
    """Environment that gives a spawned consumer a real OpenSearch (search, and the archive behind /news/{id}),
    with this test's index already created. A consumer is part of a suite that has OpenSearch: without it,
    a miss in Redis is 503 (the archive did not answer), not 404."""
    from common.search_index import ensure_index
    from common.settings import OpenSearchSettings

    await ensure_index(opensearch, OpenSearchSettings(url=opensearch_url, index_prefix=search_prefix))
    return {"OPENSEARCH__URL": opensearch_url, "OPENSEARCH__INDEX_PREFIX": search_prefix}


@pytest.fixture
def kafka_settings(infra: Infra, namespace: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=infra.bootstrap, partitions=3, linger_ms=5, topics=TopicNames(prefix=f"{namespace}.")
    )


@pytest.fixture
def redis_settings(infra: Infra, namespace: str) -> RedisSettings:
    return RedisSettings(url=infra.redis_url, key_prefix=f"{namespace}:")


@pytest.fixture
async def redis(infra: Infra, namespace: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def service_env(infra: Infra, namespace: str) -> dict[str, str]:
    """Environment that points a service process at this test's topics and keys."""
    return {
        "ENVIRONMENT": "test",
        "KAFKA__BOOTSTRAP_SERVERS": infra.bootstrap,
        "KAFKA__PARTITIONS": "3",
        "KAFKA__LINGER_MS": "5",
        "KAFKA__TOPICS__PREFIX": f"{namespace}.",
        "REDIS__URL": infra.redis_url,
        "REDIS__KEY_PREFIX": f"{namespace}:",
        "CONSUMER__GROUP_ID": f"{namespace}-consumer",
        "WORKER__APP_ID": f"{namespace}-worker",
    }


@pytest.fixture
def spawn(tmp_path: Path, service_env: dict[str, str]) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services as real processes; every one is stopped at teardown (its log is in tmp_path)."""
    started: list[ServiceProcess] = []

    def _spawn(kind: str, name: str | None = None, env: dict[str, str] | None = None) -> ServiceProcess:
        port = free_port()
        extra = dict(env or {})
        if kind == "consumer":
            argv = python("-m", "uvicorn", "consumer.main:app", "--host", "127.0.0.1", "--port", str(port))
            ready = f"http://127.0.0.1:{port}/readyz"
        elif kind == "producer":
            argv = python("-m", "uvicorn", "producer.main:app", "--host", "127.0.0.1", "--port", str(port))
            ready = f"http://127.0.0.1:{port}/readyz"
        elif kind == "inference":
            argv = python("-m", "uvicorn", "inference.main:app", "--host", "127.0.0.1", "--port", str(port))
            ready = f"http://127.0.0.1:{port}/readyz"
        elif kind == "worker":
            extra.setdefault("WORKER__WEB_PORT", str(port))
            extra.setdefault("WORKER__DATADIR", str(tmp_path / f"worker-{port}"))
            argv = python("-m", "stream_worker", "worker", "-l", "info")
            ready = f"http://127.0.0.1:{extra['WORKER__WEB_PORT']}/readyz"
        else:
            raise ValueError(kind)
        proc = ServiceProcess(
            name or f"{kind}-{port}", argv, {**service_env, **extra}, tmp_path, port=port, ready_url=ready
        )
        started.append(proc.start())
        proc.wait_ready()
        return proc

    yield _spawn
    for proc in reversed(started):
        proc.stop()


@pytest.fixture(autouse=True)
def _every_log_record() -> None:
    """An app built in this process earlier (configure_logging) leaves the process-wide RepeatFilter on the
    handlers it found, pytest's included; a test that counts log records must see each one."""
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            for found in [f for f in handler.filters if isinstance(f, RepeatFilter)]:
                handler.removeFilter(found)
