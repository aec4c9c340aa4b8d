"""Serving benchmark: the consumer's REST reads under load (the WebSocket fan-out is bench/websocket.py).

REST: one consumer process (uvicorn, no access log) over a Redis slice seeded with BENCH_REST_ARTICLES (1,000)
real corpus articles; `GET /news/recent?limit=20` driven by wrk (closed loop, BENCH_REST_CONNECTIONS
connections, BENCH_REST_SECONDS each) for the most requests/s, side by side with the same request to a bare
FastAPI app doing the same Redis reads (bench/bare_app.py, started the same way on the same slice):
BENCH_REST_ROUNDS alternating rounds of each, the best round of each kept (the least disturbed on a shared
machine) and their ratio reported. Then, once each: `/news/top`, `/news/recent` with gzip accepted, with
`view=full`, with a matching `If-None-Match` (304), and on a second consumer started with two uvicorn workers
(BENCH_REST_WORKERS2=0 skips it); then `/news/recent?limit=20` at a fixed 500 requests/s by an open-loop
Python generator (latency counted from each request's scheduled time, so a stall is not hidden), for the p99
target.

The analyses in the seeded articles are synthetic (real titles and bodies, fixed-shape analysis): serving
cost depends on the records' size and count, not on what the models said. Loopback only; every load is
bounded in count and time.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from redis.asyncio import Redis

from bench.common import corpus, cpu_seconds, env_float, env_int, latency_summary, pct, save_section
from bench.profiling import record_pid, top_inclusive
from bench.services import Slice, start_infra, stop_infra
from common.schemas import Analysis, AnalyzedArticle, Entity, RawArticle
from common.store import ArticleStore
from harness.infra import free_port
from harness.processes import ServiceProcess, python

__all__ = ["run"]

_SENTIMENTS = ("positive", "neutral", "negative")
_CATEGORIES = ("world", "politics", "business", "technology", "sport", "science", "health", "entertainment")


def _analysed(i: int, raw: RawArticle) -> AnalyzedArticle:
    words = re.findall(r"[A-Za-z]{4,}", raw.title)[:5]
    analysis = Analysis(
        sentiment=_SENTIMENTS[i % 3],  # type: ignore[arg-type]
        sentiment_score=round(((i % 21) - 10) / 10, 2),
        keywords=words,
        entities=[Entity(text=w, type="ORG") for w in words[:2]],
        category=_CATEGORIES[i % len(_CATEGORIES)],
        language="en",
        importance_score=float(i % 11) if i % 11 <= 10 else 5.0,
        providers={"sentiment": "bench"},
        models={"sentiment": "synthetic"},
    )
    return AnalyzedArticle.from_raw(raw, analysis)


async def _seed(slice_: Slice, n: int) -> None:
    redis = Redis.from_url(slice_.infra.redis_url)
    store = ArticleStore(redis, prefix=slice_.key_prefix)
    try:
        for i, raw in enumerate(corpus()[:n]):
            await store.put(_analysed(i, raw))
    finally:
        await redis.aclose()


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, seconds: float, connections: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    extra = [a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")]
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout", "5s", *extra, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    shown = " ".join(f"-H '{k}: {v}'" for k, v in (headers or {}).items())
    tool = f"wrk -t1 -c{connections} -d{int(seconds)}s --latency" + (f" {shown}" if shown else "")
    result: dict[str, Any] = {"tool": tool, "raw": out[-800:]}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    result["requests"] = int(done.group(1)) if done else None
    result["requests_per_s"] = round(float(rps.group(1)), 1) if rps else None
    for q in ("50", "90", "99"):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        result[f"p{q}_ms"] = round(float(m.group(1)) * _WRK_UNITS[m.group(2)], 2) if m else None
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    result["socket_errors"] = socket_errors.group(1) if socket_errors else None
    return result


async def _closed_loop(
    url: str, seconds: float, connections: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Fallback when wrk is missing: `connections` loops of back-to-back requests for `seconds`."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            async with session.get(url, headers=headers, auto_decompress=False) as resp:
                await resp.read()
                if resp.status not in (200, 304):
                    errors += 1
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        await asyncio.gather(*(loop(session) for _ in range(connections)))
    wall = time.perf_counter() - start
    s = latency_summary(latencies)
    return {
        "tool": f"python aiohttp closed loop, {connections} connections, {seconds:.0f}s",
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": s["p50_ms"],
        "p90_ms": round(pct(latencies, 90) * 1000, 2),
        "p99_ms": s["p99_ms"],
        "non_2xx": errors,
    }


class _Http:
    """One keep-alive HTTP/1.1 connection speaking just enough to GET: the open-loop generator shares the
    server's 2 cores, and aiohttp's client cost about as much CPU per request as the server it measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, request: bytes) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            await self.reader.readexactly(int(length.group(1)) if length else 0)
            return int(head[9:12])
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _open_loop(url: str, rate: float, seconds: float, connections: int = 64) -> dict[str, Any]:
    """A fixed arrival rate; each latency runs from the request's scheduled send time to its full response
    (a request that waits for a free connection waits on the clock, so a stall is not hidden)."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    # Uncompressed, like wrk's requests (the gzip row measures compression apart).
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: identity\r\n\r\n"
    ).encode()
    pool: asyncio.Queue[_Http] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Http(host, port))

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            if await conn.get(request) != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            errors += 1
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    # Bounded: what is not answered 5 s after the last send is cut off and counted as unfinished,
    # with the time it had waited so far (so the percentiles are a lower bound when that happens).
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, start + seconds + 5 - time.perf_counter()))
    cut = time.perf_counter()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    while not pool.empty():
        pool.get_nowait().close()
    wall = cut - start
    unfinished = len(pending)
    done = len(latencies)
    latencies += [cut - (start + i / rate) for i in range(total - unfinished, total)]
    s = latency_summary(latencies)
    return {
        "tool": f"python asyncio open loop ({connections} keep-alive connections) at {rate:.0f} requests/s for "
        f"{seconds:.0f}s",
        "rate_asked": rate,
        "requests": total,
        "answered": done,
        "unfinished": unfinished,
        "achieved_per_s": round(done / wall, 1),
        "p50_ms": s["p50_ms"],
        "p95_ms": s["p95_ms"],
        "p99_ms": s["p99_ms"],
        "errors": errors,
    }


def _start_bare(slice_: Slice) -> ServiceProcess:
    """bench/bare_app.py on the slice's Redis, started exactly like the consumer (one uvicorn process)."""
    port = free_port()
    argv = python("-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(port))
    argv += ["--no-access-log", "--log-level", "warning"]
    proc = ServiceProcess(
        "bare", argv, slice_.env, slice_.tmp, port=port, ready_url=f"http://127.0.0.1:{port}/readyz"
    ).start()
    slice_.procs.append(proc)
    return proc


def _start_consumer_workers(slice_: Slice, workers: int) -> ServiceProcess:
    """A second consumer on the slice with `workers` uvicorn worker processes (one port, the kernel shares it)."""
    port = free_port()
    argv = python("-m", "uvicorn", "consumer.main:app", "--host", "127.0.0.1", "--port", str(port))
    argv += ["--no-access-log", "--log-level", "warning", "--workers", str(workers)]
    env = {**slice_.env, "CONSUMER__GROUP_ID": f"{slice_.consumer_group}-w{workers}"}
    proc = ServiceProcess(
        f"consumer-w{workers}", argv, env, slice_.tmp, port=port, ready_url=f"http://127.0.0.1:{port}/readyz"
    ).start()
    slice_.procs.append(proc)
    return proc


async def _load(
    url: str, seconds: float, connections: int, headers: dict[str, str] | None = None, *, pid: int | None = None
) -> dict[str, Any]:
    """Closed-loop load; with the server's `pid`, also its CPU time per request (user + system): a figure a
    shared, busy machine disturbs far less than requests/s."""
    cpu = None if pid is None else cpu_seconds(pid)
    if shutil.which("wrk") is not None:
        result = await asyncio.to_thread(_wrk, url, seconds, connections, headers)
    else:
        result = await _closed_loop(url, seconds, connections, headers)
    after = None if pid is None else cpu_seconds(pid)
    if cpu is not None and after is not None and result.get("requests"):
        result["cpu_us_per_request"] = round((after - cpu) / result["requests"] * 1e6, 1)
    return result


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    # aiohttp asks for gzip by default; a plain request says identity, as wrk's do.
    headers = {"Accept-Encoding": "identity", **(headers or {})}
    async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(url, headers=headers) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


async def _rest(slice_: Slice, log: Callable[[str], None]) -> dict[str, Any]:
    n = env_int("BENCH_REST_ARTICLES", 1000, 200)
    seconds = env_float("BENCH_REST_SECONDS", 10, 3)
    connections = env_int("BENCH_REST_CONNECTIONS", 16)
    rounds = env_int("BENCH_REST_ROUNDS", 2, 1)
    await _seed(slice_, n)
    consumer = slice_.start_consumer()
    bare = _start_bare(slice_)
    consumer.wait_ready(timeout=120)
    bare.wait_ready(timeout=120)
    base = f"http://127.0.0.1:{consumer.port}"
    recent_url = f"{base}/news/recent?limit=20"
    bare_url = f"http://127.0.0.1:{bare.port}/news/recent?limit=20"
    for url in (recent_url, bare_url):  # warm: first requests load scripts, fill caches
        for _ in range(20):
            status, headers, body = await _get(url)
            assert status == 200, (url, status, body[:200])
    _, headers, body = await _get(recent_url)
    _, _, full_body = await _get(recent_url + "&view=full")
    _, _, bare_body = await _get(bare_url)
    _, gz_headers, gz_body = await _get(recent_url, {"Accept-Encoding": "gzip"})
    etag = headers["etag"]
    not_modified, _, _ = await _get(recent_url, {"If-None-Match": etag})
    result: dict[str, Any] = {
        "seeded_articles": n,
        "recent_response_bytes": len(body),
        "recent_full_response_bytes": len(full_body),
        "recent_gzip_response_bytes": len(gz_body) if gz_headers.get("content-encoding") == "gzip" else None,
        "bare_response_bytes": len(bare_body),
        "recent_304_status": not_modified,
    }
    # Side by side: alternating rounds, so a burst of load from elsewhere hits both alike; the best of each.
    runs: dict[str, list[dict[str, Any]]] = {"recent": [], "bare_recent": []}
    for i in range(rounds):
        for name, url in (("recent", recent_url), ("bare_recent", bare_url)):
            spy = None
            if name == "recent" and i == 0 and consumer.proc is not None:
                spy = asyncio.create_task(record_pid(consumer.proc.pid, max(2, seconds - 2)))
            server = consumer if name == "recent" else bare
            r = await _load(url, seconds, connections, pid=server.proc.pid if server.proc else None)
            if spy is not None:
                result["recent_profile"] = top_inclusive(await spy, 40)
            runs[name].append(r)
            cpu = r.get("cpu_us_per_request")
            log(f"  round {i + 1} {name}: {r['requests_per_s']} req/s, p99 {r['p99_ms']} ms, {cpu} CPU-us/request")
    for name, got in runs.items():
        result[name] = max(got, key=lambda r: r["requests_per_s"] or 0)
        result[name]["rounds_requests_per_s"] = [r["requests_per_s"] for r in got]
    ours, theirs = result["recent"]["requests_per_s"], result["bare_recent"]["requests_per_s"]
    result["recent_vs_bare"] = round(ours / theirs, 3) if ours and theirs else None
    # The same comparison in server CPU per request (best round of each), less disturbed by other load.
    cpu = {
        k: min((r["cpu_us_per_request"] for r in got if r.get("cpu_us_per_request")), default=None)
        for k, got in runs.items()
    }
    result["recent_cpu_us_per_request"], result["bare_cpu_us_per_request"] = cpu["recent"], cpu["bare_recent"]
    result["recent_vs_bare_cpu"] = (
        round(cpu["bare_recent"] / cpu["recent"], 3) if cpu["recent"] and cpu["bare_recent"] else None
    )
    log(f"  GET /news/recent?limit=20: {ours} req/s = {result['recent_vs_bare']} of the bare app's {theirs}")
    extra: list[tuple[str, str, dict[str, str] | None]] = [
        ("top", f"{base}/news/top", None),
        ("recent_gzip", recent_url, {"Accept-Encoding": "gzip"}),
        ("recent_full", recent_url + "&view=full", None),
        ("recent_304", recent_url, {"If-None-Match": etag}),
    ]
    for name, url, hdrs in extra:
        result[name] = r = await _load(
            url, seconds, connections, hdrs, pid=consumer.proc.pid if consumer.proc else None
        )
        cpu = r.get("cpu_us_per_request")
        log(f"  {name}: {r['requests_per_s']} req/s, p99 {r['p99_ms']} ms, {cpu} CPU-us/request")
    if env_int("BENCH_REST_WORKERS2", 1) and slice_.consumer is not None:
        two = _start_consumer_workers(slice_, 2)
        two.wait_ready(timeout=120)
        two_url = f"http://127.0.0.1:{two.port}/news/recent?limit=20"
        for _ in range(40):  # both workers warm
            await _get(two_url)
        result["recent_2_workers"] = r = await _load(two_url, seconds, connections)
        log(f"  recent, 2 uvicorn workers: {r['requests_per_s']} req/s, p99 {r['p99_ms']} ms")
        two.stop()
    rate = env_float("BENCH_REST_RATE", 500)
    result["recent_paced"] = await _open_loop(recent_url, rate, seconds)
    r = result["recent_paced"]
    log(f"  GET /news/recent?limit=20 at {rate:.0f}/s: achieved {r['achieved_per_s']}/s, p99 {r['p99_ms']} ms")
    result["consumer_peak_rss_mb"] = slice_.peak_rss().get("consumer")
    return result


async def _main(log: Callable[[str], None]) -> dict[str, Any]:
    infra = start_infra()
    section: dict[str, Any] = {"load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        for name, fn in (("rest", _rest),):
            slice_ = Slice(infra, name)
            try:
                section[name] = await fn(slice_, log)
            finally:
                await slice_.close()
    finally:
        stop_infra(infra)
    return section


def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    section = asyncio.run(_main(log))
    save_section("serving", section, command="make bench-serving", started=started)
    return section


if __name__ == "__main__":
    run()
