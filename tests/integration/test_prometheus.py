"""A real Prometheus (the Debian binary) scrapes real producer, consumer and stream worker processes
with this repository's scrape config and rules: the key series of each service arrive, the rules
load, every PromQL expression of the Grafana dashboard is accepted, and a firing alert travels through a real
Alertmanager (Debian's prometheus-alertmanager, with monitoring/alertmanager.yml) to the alert log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.infra import free_port
from harness.processes import ServiceProcess
from tests.static.tools import MONITORING, ROOT, tool

pytestmark = pytest.mark.integration

KEY_SERIES = {
    "producer": ["news_sent_total", "news_duplicates_total", "news_invalid_total", 'news_fetched_total{source="push"}'],
    "consumer": [
        "news_consumed_total",
        "news_analyzed_total",
        "active_websocket_connections",
        "ws_messages_sent_total",
    ],
    "stream-worker": ["worker_processed_total", "worker_batch_size_bucket", "worker_batch_duration_seconds_count"],
}
ARTICLE = {
    "url": "https://example.org/world/2024/prometheus-scrape-check",
    "title": "Observers report calm markets as central banks hold rates",
    "description": "A short article pushed by the Prometheus integration test.",
    "published_at": "2024-11-26T05:00:00Z",
    "source": "test",
}


# An alert that fires at once, to follow the path Prometheus -> Alertmanager -> receiver -> alert log.
PATH_CHECK_RULES = {
    "groups": [
        {
            "name": "alert-path-check",
            "rules": [{"alert": "NewsAlertPathCheck", "expr": "vector(1)", "labels": {"severity": "critical"}}],
        }
    ]
}


class Prometheus:
    def __init__(self, url: str, alert_log: Path) -> None:
        self.url = url
        self.alert_log = alert_log

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5).json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := self.query(expr):
                return result
            time.sleep(0.5)
        raise AssertionError(f"no result for {expr} within {timeout}s")


def scrape_config(targets: dict[str, int], alertmanager: int, extra_rules: Path) -> dict[str, Any]:
    """monitoring/prometheus.yml with the compose host names swapped for the local ports."""
    config: dict[str, Any] = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / "rules" / "*.yml"), str(extra_rules)]
    (compose_target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert compose_target == "alertmanager:9093"
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{alertmanager}"]}]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
            jobs.append(job)
    assert {j["job_name"] for j in jobs} == set(targets)
    config["scrape_configs"] = jobs
    return config


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not become ready: {log.read_text()}"
        time.sleep(0.2)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Alertmanager with monitoring/alertmanager.yml (only the alert log's port changed) and the alert log."""
    binary = tool("prometheus-alertmanager", hint="apt-get install prometheus-alertmanager (make system-deps)")
    sink_port, port = free_port(), free_port()
    alerts = tmp_path / "alerts.log"
    config = tmp_path / "alertmanager.yml"
    original = (MONITORING / "alertmanager.yml").read_text()
    assert "http://127.0.0.1:9095/" in original
    config.write_text(original.replace("http://127.0.0.1:9095/", f"http://127.0.0.1:{sink_port}/"))
    log_path = tmp_path / "alertmanager.log"
    log = log_path.open("wb")
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "alert_log.py"), "--port", str(sink_port), "--file", str(alerts)],
            stdout=log, stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        _wait_ready(procs[1], f"http://127.0.0.1:{port}/-/ready", log_path)
        yield port, alerts
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        log.close()


@pytest.fixture
def prometheus(
    tmp_path: Path, spawn: Callable[..., ServiceProcess], alertmanager: tuple[int, Path]
) -> Iterator[Prometheus]:
    services = {"producer": spawn("producer"), "consumer": spawn("consumer"), "stream-worker": spawn("worker")}
    httpx.post(
        f"http://127.0.0.1:{services['producer'].port}/articles", json={"articles": [ARTICLE]}, timeout=10
    ).raise_for_status()
    ports = {name: s.port for name, s in services.items()}
    yield from _run_prometheus(tmp_path, ports, alertmanager)


@pytest.fixture
def prometheus_alone(tmp_path: Path, alertmanager: tuple[int, Path]) -> Iterator[Prometheus]:
    """The repository's Prometheus config scraping only itself: enough to evaluate the rules and send alerts."""
    yield from _run_prometheus(tmp_path, {}, alertmanager)


def _run_prometheus(tmp_path: Path, ports: dict[str, int], alertmanager: tuple[int, Path]) -> Iterator[Prometheus]:
    binary = tool("prometheus", hint="apt-get install prometheus (make system-deps)")
    config = tmp_path / "prometheus.yml"
    extra_rules = tmp_path / "alert-path-check.yml"
    extra_rules.write_text(yaml.safe_dump(PATH_CHECK_RULES))
    am_port, alert_log = alertmanager
    config.write_text(yaml.safe_dump(scrape_config(ports, am_port, extra_rules)))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
         # an alert that fires before Alertmanager is discovered is dropped and resent after this (default 1m)
         "--rules.alert.resend-delay=2s"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, f"{url}/-/ready", tmp_path / "prometheus.log")
        yield Prometheus(url, alert_log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def targets(prometheus: Prometheus) -> dict[str, dict[str, Any]]:
    active = httpx.get(f"{prometheus.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return {t["labels"]["job"]: t for t in active}


def assert_series(prometheus: Prometheus, job: str) -> None:
    for selector in KEY_SERIES[job]:
        name, _, labels = selector.partition("{")
        matcher = f'{{job="{job}"{"," + labels.rstrip("}") if labels else ""}}}'
        assert prometheus.wait_for(f"{name}{matcher}", timeout=20), f"{job}: {selector} missing"


def test_prometheus_scrapes_every_service_and_loads_the_rules(prometheus: Prometheus) -> None:
    try:
        prometheus.wait_for('count(up{job=~"producer|consumer"} == 1) == 2', timeout=30)
    except AssertionError:
        raise AssertionError({j: (t["health"], t["lastError"]) for j, t in targets(prometheus).items()}) from None
    assert_series(prometheus, "producer")
    assert_series(prometheus, "consumer")

    # The pushed article went through the worker to the consumer: the counters moved end to end.
    prometheus.wait_for('news_sent_total{job="producer"} >= 1', timeout=30)
    prometheus.wait_for('news_consumed_total{job="consumer"} >= 1', timeout=45)

    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    loaded = {g["name"]: g["rules"] for g in groups}
    assert {"news-suite.recording", "news-suite.alerts"} <= set(loaded)
    for rule in (r for rs in loaded.values() for r in rs):
        assert rule["health"] != "err", rule
    alerts = {r["name"] for r in loaded["news-suite.alerts"]}
    assert {"NewsTargetDown", "NewsConsumerLagGrowing", "NewsDeadLetterGrowth"} <= alerts

    # Each stage's series appears once its rule has two scrapes of a counter that moved.
    for stage in ("produced", "consumed"):
        prometheus.wait_for(f'news:stage_throughput:rate1m{{stage="{stage}"}}', timeout=30)

    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "news-suite.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            prometheus.query(target["expr"])  # raises on a PromQL error

    # The stream worker's /metrics (faust's aiohttp web server).
    deadline = time.monotonic() + 30
    while (worker := targets(prometheus).get("stream-worker", {})).get("health") != "up":
        assert time.monotonic() < deadline, worker
        time.sleep(0.5)
    assert_series(prometheus, "stream-worker")
    prometheus.wait_for('worker_processed_total{job="stream-worker"} >= 1', timeout=30)
    # wait for the analysed stage itself (the first answer may hold only the other stages)
    prometheus.wait_for('news:stage_throughput:rate1m{stage="analysed"}', timeout=30)
    firing = [r for r in loaded["news-suite.alerts"] if r["name"] == "NewsTargetDown" and r["state"] != "inactive"]
    assert not firing


def test_a_firing_alert_reaches_the_alert_log_through_alertmanager(prometheus_alone: Prometheus) -> None:
    """Prometheus -> Alertmanager -> the `oncall` route (severity critical) -> its webhook -> the alert log."""
    prometheus = prometheus_alone
    deadline = time.monotonic() + 60
    while not (prometheus.alert_log.exists() and prometheus.alert_log.read_text().strip()):
        assert time.monotonic() < deadline, "no notification reached the alert log within 60 s"
        time.sleep(0.5)
    records = [json.loads(line) for line in prometheus.alert_log.read_text().splitlines()]
    delivered = {(r["receiver"], a["labels"]["alertname"], a["status"]) for r in records for a in r["alerts"]}
    assert ("oncall", "NewsAlertPathCheck", "firing") in delivered, delivered
