"""Real articles through the real pipeline: replay -> Kafka -> faust worker -> Kafka -> consumer -> Redis/WS."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from itertools import islice
from typing import Any

import httpx
import pytest
import websockets
from pydantic import ValidationError

from common.schemas import RawArticle
from harness.infra import ROOT
from harness.processes import ServiceProcess
from producer.corpus import read_corpus

pytestmark = pytest.mark.e2e

N = 40


def corpus_ids(n: int) -> set[str]:
    ids = set()
    for item in islice(read_corpus(), n):
        try:
            ids.add(RawArticle.model_validate(item).id)
        except ValidationError:
            pass  # the corpus has rows with empty titles; the replay dead-letters them
    return ids


async def test_replayed_articles_reach_websocket_and_rest(
    spawn: Callable[..., ServiceProcess], service_env: dict[str, str], search_env: dict[str, str]
) -> None:
    expected = corpus_ids(N)
    assert len(expected) >= N - 5
    consumer = spawn("consumer", env=search_env)
    spawn("worker")
    base = f"http://127.0.0.1:{consumer.port}"

    received: dict[str, dict[str, Any]] = {}
    async with websockets.connect(f"ws://127.0.0.1:{consumer.port}/ws") as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first == {"type": "initial_data", "data": []}

        replay = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "producer.replay",
            "--limit",
            str(N),
            "--rate",
            "0",
            "--no-progress",
            cwd=ROOT,
            env={**service_env, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(replay.communicate(), 120)
        assert replay.returncode == 0, out.decode()
        assert f"{len(expected)} accepted" in out.decode()

        async def collect() -> None:
            while not expected <= received.keys():
                message = json.loads(await ws.recv())
                if message["type"] == "new_analysis":
                    received[message["data"]["id"]] = message["data"]

        await asyncio.wait_for(collect(), 120)

    assert received.keys() == expected  # every article once, nothing else
    sample = next(iter(received.values()))
    assert sample["analysis"]["sentiment"] in {"positive", "neutral", "negative"}
    assert -1 <= sample["analysis"]["sentiment_score"] <= 1

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for article_id in expected:
            response = await client.get(f"/news/{article_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["id"] == article_id
            assert body["title"] == received[article_id]["title"]
        recent = (await client.get("/news/recent", params={"limit": 200})).json()
        assert {a["id"] for a in recent} == expected
        missing = await client.get("/news/" + "0" * 32)
        assert missing.status_code == 404
        assert "no article" in missing.json()["detail"]
        assert (await client.get("/news/not-an-id")).status_code == 422
