"""WebSocket fan-out benchmark: one consumer process serving many live clients, store-to-client delivery time.

BENCH_WS_CLIENTS (10,000) clients connect to one consumer (uvicorn, started as scripts/up.sh starts it: no
permessage-deflate) on a fresh, empty slice; BENCH_WS_MESSAGES (20) analysed articles are produced to
`news.analyzed` at BENCH_WS_RATE (1/s: 10,000 frames/s at 10,000 clients); the consumer stores each and fans it
out to every client. Delivery latency = the client's receive time - the store time (the Redis stream entry id,
same machine clock).
`missing` = articles a reading client never received; `lagged_reported` = drops the server reported to reading
clients (both must be 0: only a client that does not read may lose messages). BENCH_WS_STUCK (10) more clients
complete the handshake and then never read: the server's `ws_messages_dropped_total` counts what they lost.

The clients must not be what is measured: BENCH_WS_CLIENT_PROCS (2) processes, each holding its share of the
connections as bare asyncio Protocols on uvloop (a few microseconds per frame: a WebSocket library's client
costs ~10x that and, at 10,000 clients, saturates the shared cores before the server does). They offer
permessage-deflate as browsers do and inflate when the server accepts it (BENCH_WS_DEFLATE=1 starts the
server with it on, for comparison). Loopback only; bounded in count and time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing as mp
import os
import resource
import socket
import time
import zlib
from array import array
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

import httpx

from bench.common import corpus, cpu_seconds, env_float, env_int, latency_summary, peak_rss_mb, rss_mb, save_section
from bench.profiling import record_pid, top_inclusive
from bench.services import Slice, start_infra, stop_infra
from bench.serving import _analysed
from common.kafka import make_producer
from harness.infra import free_port
from harness.processes import ServiceProcess, python

__all__ = ["run"]

_NEW = b'{"type":"new_analysis"'
_INITIAL = b'{"type":"initial_data"'
_LAGGED = b'{"type":"lagged"'
_CURSOR = b'"cursor":"'


class _Totals:
    """What one client process saw, over all its connections."""

    def __init__(self) -> None:
        self.delays_ms = array("d")
        self.first: dict[int, float] = {}  # store time (ms) -> the earliest and latest delay of that message
        self.last: dict[int, float] = {}
        self.lagged = 0
        self.deflate = 0
        self.closed = 0


class _Client(asyncio.Protocol):
    """One WebSocket client: the handshake, then unmasked server frames parsed by hand (RFC 6455 section 5.2)."""

    def __init__(self, host: str, path: str, totals: _Totals, *, reads: bool = True) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode()
        self.totals = totals
        self.reads = reads
        self.buf = bytearray()
        self.upgraded = False
        self.inflate: Any = None
        self.partial: bytearray | None = None
        self.compressed = False
        self.received = 0  # new_analysis frames
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        if not self.reads:  # a small receive buffer, so the server's send buffer fills soon
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.totals.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before initial_data: {exc}"))

    def data_received(self, data: bytes) -> None:
        now_ms = time.time() * 1000
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            if not head.startswith("HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(head.split("\r\n", 1)[0][:120]))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            if "permessage-deflate" in head.lower():
                self.inflate = zlib.decompressobj(-15)
                self.totals.deflate += 1
        while len(buf) >= 2:
            b0, n = buf[0], buf[1] & 0x7F
            at = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + n:
                return
            payload = bytes(buf[at : at + n])
            del buf[: at + n]
            self._frame(b0, payload, now_ms)

    def _frame(self, b0: int, payload: bytes, now_ms: float) -> None:
        opcode = b0 & 0x0F
        if opcode == 0x9:  # ping: a pong, masked with a zero key (any key is valid)
            assert self.transport is not None and len(payload) < 126
            self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
            return
        if opcode == 0x8:
            assert self.transport is not None
            self.transport.close()
            return
        if opcode in (0x1, 0x2):
            self.partial = bytearray(payload) if not b0 & 0x80 else None
            self.compressed = bool(b0 & 0x40)
            if self.partial is not None:
                return
        elif opcode == 0x0 and self.partial is not None:  # a continuation
            self.partial += payload
            if not b0 & 0x80:
                return
            payload, self.partial = bytes(self.partial), None
        else:
            return
        if self.compressed:
            payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
        if payload.startswith(_NEW):
            self.received += 1
            at = payload.rfind(_CURSOR) + len(_CURSOR)
            stored = int(payload[at : payload.index(b"-", at)])
            delay = now_ms - stored
            t = self.totals
            t.delays_ms.append(delay)
            if delay < t.first.get(stored, 1e12):
                t.first[stored] = delay
            if delay > t.last.get(stored, -1e12):
                t.last[stored] = delay
        elif payload.startswith(_INITIAL):
            if not self.ready.done():
                self.ready.set_result(None)
            if not self.reads:
                assert self.transport is not None
                self.transport.pause_reading()
        elif payload.startswith(_LAGGED):
            self.totals.lagged += int(payload.split(b":")[-1].rstrip(b"}"))


async def _clients(port: int, n: int, stuck: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    host = f"127.0.0.1:{port}"
    totals = _Totals()
    gate = asyncio.Semaphore(64)  # connections opening at once: the server's accept backlog is not the test
    errors: dict[str, int] = {}

    async def one(reads: bool) -> _Client | None:
        async with gate:
            try:
                _, client = await loop.create_connection(
                    lambda: _Client(host, "/ws", totals, reads=reads), "127.0.0.1", port
                )
                await asyncio.wait_for(client.ready, 60)
                return client
            except (OSError, ConnectionError, TimeoutError) as exc:
                key = f"{type(exc).__name__}: {exc}"[:160]
                errors[key] = errors.get(key, 0) + 1
                return None

    started = time.monotonic()
    got = await asyncio.gather(*(one(i < n) for i in range(n + stuck)))
    live = [c for c in got[:n] if c is not None]
    pipe.send({"connected": len(live), "stuck": sum(c is not None for c in got[n:]), "errors": errors,
               "connect_s": time.monotonic() - started})  # fmt: skip
    messages, wait_s = await loop.run_in_executor(None, pipe.recv)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(c.received < messages for c in live):
        await asyncio.sleep(0.2)
    pipe.send(
        {
            "received": sum(c.received for c in live),
            "missing": sum(max(0, messages - c.received) for c in live),
            "lagged": totals.lagged,
            "deflate": totals.deflate,
            "closed_early": totals.closed,
            "delays_ms": totals.delays_ms.tobytes(),
            "first": totals.first,
            "last": totals.last,
        }
    )
    for c in got:
        if c is not None and c.transport is not None:
            c.transport.abort()


def _client_process(port: int, n: int, stuck: int, pipe: Connection) -> None:
    try:
        import uvloop

        uvloop.run(_clients(port, n, stuck, pipe))
    except ImportError:
        asyncio.run(_clients(port, n, stuck, pipe))


def _raise_fd_limit(need: int) -> int:
    """The soft descriptor limit up to the hard one (children inherit it); an error when even that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else need, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < need:
        raise SystemExit(f"bench websocket: needs {need} open files, the hard limit is {hard} (ulimit -Hn)")
    return soft


def _start_consumer(slice_: Slice, deflate: bool) -> ServiceProcess:
    """The consumer as scripts/up.sh starts it (permessage-deflate off unless `deflate`)."""
    port = free_port()
    argv = python("-m", "uvicorn", "consumer.main:app", "--host", "127.0.0.1", "--port", str(port))
    argv += ["--no-access-log", "--log-level", "warning", "--backlog", "4096"]
    if not deflate:
        argv += ["--ws-per-message-deflate", "false"]
    proc = ServiceProcess(
        "consumer", argv, slice_.env, slice_.tmp, port=port, ready_url=f"http://127.0.0.1:{port}/readyz"
    ).start()
    slice_.procs.append(proc)
    slice_.consumer = proc
    return proc


def _user_system_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (a loopback send's kernel work shows as the sender's system time)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _receive(pipe: Connection, child: Any, timeout: float) -> Any:
    """The client process's next report; an error when it died or went silent (never a hang)."""
    deadline = time.monotonic() + timeout
    while not pipe.poll(1):
        if not child.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"bench websocket: client process {child.pid} died or is stuck (exit {child.exitcode})")
    return pipe.recv()


def _metric(base: str, name: str) -> float | None:
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def _fan_out(slice_: Slice, log: Callable[[str], None]) -> dict[str, Any]:
    clients_n = env_int("BENCH_WS_CLIENTS", 10_000, 1_000)
    stuck = env_int("BENCH_WS_STUCK", 10)
    procs_n = max(1, env_int("BENCH_WS_CLIENT_PROCS", 2))
    messages = env_int("BENCH_WS_MESSAGES", 20, 10)
    rate = env_float("BENCH_WS_RATE", 1)
    deflate = bool(env_int("BENCH_WS_DEFLATE", 0))
    fd_limit = _raise_fd_limit(clients_n + stuck + 1_000)
    await slice_.create_topics()
    consumer = _start_consumer(slice_, deflate)
    consumer.wait_ready(timeout=120)
    assert consumer.proc is not None
    pid = consumer.proc.pid
    base = f"http://127.0.0.1:{consumer.port}"
    ctx = mp.get_context("spawn")
    shares = [clients_n // procs_n + (i < clients_n % procs_n) for i in range(procs_n)]
    pipes, children = [], []
    for i, share in enumerate(shares):
        ours, theirs = ctx.Pipe()
        child = ctx.Process(
            target=_client_process, args=(consumer.port, share, stuck if i == 0 else 0, theirs), daemon=True
        )
        child.start()
        pipes.append(ours)
        children.append(child)
    try:
        t = time.monotonic()
        hello = [await asyncio.to_thread(_receive, p, c, 600) for p, c in zip(pipes, children, strict=True)]
        connected = sum(h["connected"] for h in hello)
        errors: dict[str, int] = {}
        for h in hello:
            for k, v in h["errors"].items():
                errors[k] = errors.get(k, 0) + v
        log(f"  {connected} of {clients_n} clients (+{sum(h['stuck'] for h in hello)} that never read) "
            f"connected in {time.monotonic() - t:.1f}s; errors {errors or 'none'}")  # fmt: skip
        rss_connected = rss_mb(pid)
        await asyncio.sleep(1)
        cpu_before = cpu_seconds(pid)
        split_before = _user_system_s(pid)
        ticks = time.monotonic()
        for p in pipes:
            p.send((messages, messages / rate + 60))
        # BENCH_WS_PROFILE=1: where the consumer's time goes while it fans out (py-spy, when installed).
        spy = asyncio.create_task(record_pid(pid, messages / rate)) if env_int("BENCH_WS_PROFILE", 0) else None
        producer = make_producer(slice_.kafka, client_id="bench-websocket")
        await producer.start()
        try:
            start = time.perf_counter()
            for i, raw in enumerate(corpus()[:messages]):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                a = _analysed(i, raw)
                await producer.send(slice_.kafka.topics.analyzed_topic, a.model_dump_json().encode(), key=a.id.encode())
            await producer.flush()
        finally:
            await producer.stop()
        profile = top_inclusive(await spy, 30) if spy is not None else None
        done = [
            await asyncio.to_thread(_receive, p, c, messages / rate + 120) for p, c in zip(pipes, children, strict=True)
        ]
        cpu_after = cpu_seconds(pid)
        split_after = _user_system_s(pid)
        busy_s = time.monotonic() - ticks
        dropped = await asyncio.to_thread(_metric, base, "ws_messages_dropped_total")
        peak = peak_rss_mb(pid)
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    delays = array("d")
    for d in done:
        delays.frombytes(d["delays_ms"])
    s = latency_summary([x / 1000 for x in delays])
    # Per message: the first client's delay (store -> the fan-out starts) and first-to-last (the fan-out itself).
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for d in done:
        for k, v in d["first"].items():
            first[k] = min(v, first.get(k, v))
        for k, v in d["last"].items():
            last[k] = max(v, last.get(k, v))
    to_first = latency_summary([first[k] / 1000 for k in sorted(first)])
    spread = latency_summary([(last[k] - first[k]) / 1000 for k in sorted(first)])
    cpu = round(cpu_after - cpu_before, 2) if cpu_after is not None and cpu_before is not None else None
    result = {
        "clients": clients_n,
        "connected": connected,
        "connect_errors": errors,
        "connect_s": round(max(h["connect_s"] for h in hello), 1),
        "client_processes": procs_n,
        "messages": messages,
        "rate_per_s": rate,
        "frames_per_s": round(rate * connected),
        "permessage_deflate": deflate,
        "deflate_negotiated": sum(d["deflate"] for d in done),
        "deliveries": len(delays),
        "expected_deliveries": messages * connected,
        "missing": sum(d["missing"] for d in done),
        "lagged_reported": sum(d["lagged"] for d in done),
        "closed_early": sum(d["closed_early"] for d in done),
        "stuck_clients": sum(h["stuck"] for h in hello),
        "dropped_by_server": dropped,
        "p50_ms": s["p50_ms"],
        "p95_ms": s["p95_ms"],
        "p99_ms": s["p99_ms"],
        "max_ms": s["max_ms"],
        "first_client_p50_ms": to_first["p50_ms"],
        "first_client_max_ms": to_first["max_ms"],
        "first_to_last_p50_ms": spread["p50_ms"],
        "first_to_last_max_ms": spread["max_ms"],
        "consumer_rss_connected_mb": rss_connected,
        "consumer_peak_rss_mb": peak,
        "consumer_cpu_s": cpu,
        "consumer_cpu_user_s": round(split_after[0] - split_before[0], 2),
        "consumer_cpu_system_s": round(split_after[1] - split_before[1], 2),
        "consumer_cpu_pct": round(cpu / busy_s * 100, 1) if cpu is not None else None,
        "consumer_cpu_us_per_frame": round(cpu / len(delays) * 1e6, 1) if cpu and delays else None,
        "fd_limit": fd_limit,
    }
    if profile is not None:
        result["consumer_profile"] = profile
    log(
        f"  fan-out: {len(delays)}/{messages * connected} delivered at {rate:g}/s, p50 {s['p50_ms']} p95 "
        f"{s['p95_ms']} p99 {s['p99_ms']} ms (first client p50 {to_first['p50_ms']} ms, first to last p50 "
        f"{spread['p50_ms']} ms), missing {result['missing']}, lagged {result['lagged_reported']}, "
        f"dropped (never-reading clients) {dropped}; consumer {cpu} CPU-s ({result['consumer_cpu_pct']} %), "
        f"RSS {rss_connected} MiB connected"
    )
    return result


async def _main(log: Callable[[str], None]) -> dict[str, Any]:
    infra = start_infra()
    section: dict[str, Any] = {"load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        slice_ = Slice(infra, "websocket")
        try:
            section.update(await _fan_out(slice_, log))
        finally:
            await slice_.close()
    finally:
        stop_infra(infra)
    section["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return section


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    section = asyncio.run(_main(log))
    save_section("websocket", section, command="make bench-websocket", started=started)
    return section


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        run()
