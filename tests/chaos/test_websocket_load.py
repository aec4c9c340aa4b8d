"""A WebSocket client that never reads, and 200 clients that connect and drop again and again, while articles
stream in: the consumer keeps answering, a normal client gets everything, memory stays bounded, nothing leaks."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import Callable

import httpx
import pytest
import websockets

from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from tests.support.chaos import Outcome, WsWatcher, analyzed, rss_mb, stored_ids, wait_until
from tests.support.worker_support import produce, real_articles

CLIENTS = 200
ROUNDS = 3


def _stuck_client(port: int) -> socket.socket:
    """Completes the WebSocket handshake, then never reads a byte (a tiny receive buffer fills at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


def _gauge(base: str, name: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not exported")


async def _churn(port: int, errors: list[str], wave: int) -> None:
    async def one(i: int) -> None:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=20) as ws:
                await asyncio.wait_for(ws.recv(), 20)  # initial_data
                if i % 2:  # half leave politely, half just vanish (TCP reset, no close frame)
                    ws.transport.abort()
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            errors.append(type(exc).__name__)

    for start in range(0, CLIENTS, wave):
        await asyncio.gather(*(one(i) for i in range(start, min(start + wave, CLIENTS))))


@pytest.mark.parametrize(
    "wave",
    [
        pytest.param(50, id="waves-of-50"),
        pytest.param(CLIENTS, id="all-at-once"),
    ],
)
async def test_stuck_and_churning_websocket_clients(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, wave: int
) -> None:
    consumer = spawn("consumer", env={"CONSUMER__WS_QUEUE_SIZE": "64"})
    assert consumer.proc is not None
    base = f"http://127.0.0.1:{consumer.port}"
    n = 200
    articles = [
        analyzed(a.model_copy(update={"content": (a.content or a.title) * 20}), i)
        for i, a in enumerate(real_articles(n))
    ]
    expected = {a.id for a in articles}
    watcher = await WsWatcher(f"ws://127.0.0.1:{consumer.port}/ws").start()
    stuck = _stuck_client(consumer.port)
    await asyncio.sleep(0.5)
    memory_start = rss_mb(consumer.proc.pid)
    health: list[float] = []
    failures: list[int] = []
    errors: list[str] = []
    done = asyncio.Event()

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while not done.is_set():
                started = time.monotonic()
                response = await client.get("/news/recent", params={"limit": 5})
                health.append(time.monotonic() - started)
                if response.status_code != 200:
                    failures.append(response.status_code)
                await asyncio.sleep(0.2)

    async def stream() -> None:
        for i in range(0, n, 20):
            chunk = articles[i : i + 20]
            await produce(
                kafka_settings,
                kafka_settings.topics.analyzed_topic,
                [(a.id.encode(), a.model_dump_json().encode()) for a in chunk],
            )
            await asyncio.sleep(0.3)

    prober = asyncio.create_task(probe())
    feeder = asyncio.create_task(stream())
    started = time.monotonic()
    for _ in range(ROUNDS):
        await _churn(consumer.port, errors, wave)
    await feeder
    await wait_until(lambda: _delivered(watcher, expected), 60, "the normal client got every article")
    settle = time.monotonic()
    await wait_until(lambda: _connections(base, 2), 30, "dropped connections unregistered")
    settled_s = time.monotonic() - settle
    churn_s = settle - started
    done.set()
    await prober
    memory_end = rss_mb(consumer.proc.pid)
    dropped = _gauge(base, "ws_messages_dropped_total")
    listed = await stored_ids(base)
    await watcher.stop()
    stuck.close()

    outcome = Outcome(
        f"websocket-load-{'burst' if wave >= CLIENTS else f'waves{wave}'}",
        f"1 WebSocket client that never reads + {CLIENTS} clients x {ROUNDS} rounds connecting and dropping "
        + ("all at once" if wave >= CLIENTS else f"in waves of {wave}"),
        n,
    )
    outcome.recovery_s = round(settled_s, 1)
    outcome.count(expected, listed)
    outcome.duplicates_ws = watcher.duplicates
    outcome.notes.append(
        f"{CLIENTS * ROUNDS} connections in {churn_s:.1f} s ({len(errors)} failed: {sorted(set(errors))}); "
        f"REST worst {max(health):.2f} s, {len(failures)} REST errors {sorted(set(failures))}; "
        f"memory {memory_start:.0f} -> {memory_end:.0f} MiB; "
        f"{dropped:.0f} messages dropped for the stuck client; recovery = last drop -> connection gauge back to 2"
    )
    outcome.write()
    assert outcome.lost == 0 and outcome.duplicates_rest == 0 and outcome.duplicates_ws == 0
    assert not errors and not failures
    # Responsive: every REST request answered 200 within 5 s on a shared 2-core machine (worst one measured above).
    assert max(health) < 5.0
    assert memory_end - memory_start < 150, (memory_start, memory_end)


async def _delivered(watcher: WsWatcher, expected: set[str]) -> bool:
    return watcher.deliveries.keys() >= expected


async def _connections(base: str, k: float) -> bool:
    return _gauge(base, "active_websocket_connections") == k
