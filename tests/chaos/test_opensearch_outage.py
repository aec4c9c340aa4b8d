"""OpenSearch stopped for 10 s while articles stream in, then restarted: the indexer holds its batch
(backpressure), reports not-ready meanwhile, and afterwards every article is in the index exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from urllib.parse import urlsplit

import httpx
import pytest
from opensearchpy import AsyncOpenSearch

from common.settings import KafkaSettings
from harness.infra import ROOT, opensearch_ready
from tests.integration.test_consumer import produce
from tests.integration.test_indexer import Spawn, indexed_ids, indexer_env, metric, spawn_indexer, wait_indexed
from tests.integration.test_store import make_article
from tests.support.chaos import Outcome

__all__ = ["indexer_env", "spawn_indexer"]  # fixtures, re-used from the integration tests

pytestmark = pytest.mark.slow_chaos

OUTAGE_S = 10.0


def _opensearch(action: str, url: str) -> None:
    port = str(urlsplit(url).port)
    subprocess.run(
        ["scripts/opensearch.sh", action],
        cwd=ROOT,
        env={**os.environ, "OPENSEARCH_PORT": port},
        check=True,
        capture_output=True,
        timeout=180,
    )


async def test_opensearch_down_10s_mid_stream_loses_and_duplicates_nothing(
    spawn_indexer: Spawn,
    kafka_settings: KafkaSettings,
    opensearch: AsyncOpenSearch,
    opensearch_url: str,
    search_prefix: str,
) -> None:
    articles = [make_article(n, content="Some text of a news story. " * 30) for n in range(400)]
    proc = spawn_indexer({"INDEXER__BATCH_SIZE": "20"})

    async def stream() -> None:
        for start in range(0, len(articles), 10):
            await produce(kafka_settings, articles[start : start + 10])
            await asyncio.sleep(0.1)

    producing = asyncio.create_task(stream())
    await wait_indexed(opensearch, search_prefix, [a.id for a in articles[:20]])
    _opensearch("stop", opensearch_url)
    stopped = time.monotonic()
    try:
        await asyncio.sleep(2)
        readiness = httpx.get(proc.ready_url, timeout=5)
        assert readiness.status_code == 503 and readiness.json()["checks"]["opensearch"] is False
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    finally:
        _opensearch("start", opensearch_url)
    restarted = time.monotonic()
    assert opensearch_ready(opensearch_url)
    await producing
    found = await wait_indexed(opensearch, search_prefix, [a.id for a in articles], timeout=120)
    recovery = time.monotonic() - restarted
    # Nothing more arrives late: the count stays at one per article.
    await asyncio.sleep(2)
    found = await indexed_ids(opensearch, search_prefix)
    assert len(found) == len(set(found)) == len(articles)
    assert metric(proc, "news_indexer_bulk_errors_total") > 0, "the outage was never seen by the indexer"
    assert metric(proc, 'news_indexer_documents_total{result="failed"}') == 0

    outcome = Outcome(
        "opensearch-restart", f"OpenSearch stopped for {OUTAGE_S:.0f} s mid-stream, restarted", len(articles)
    )
    outcome.slow = True
    outcome.recovery_s = round(recovery, 1)
    outcome.count([a.id for a in articles], found)
    outcome.notes.append("counted in the index (search), not the REST listing; restart itself takes ~20 s")
    outcome.write()
