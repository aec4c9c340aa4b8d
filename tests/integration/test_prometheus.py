"""A real Prometheus (the Debian binary) scrapes real producer, consumer and stream worker processes
with this repository's scrape config and rules: the key series of each service arrive, the rules
load, and every PromQL expression of the Grafana dashboard is accepted."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.infra import free_port
from harness.processes import ServiceProcess
from tests.static.tools import MONITORING, tool

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


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

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


def scrape_config(targets: dict[str, int]) -> dict[str, Any]:
    """monitoring/prometheus.yml with the compose host names swapped for the local ports."""
    config: dict[str, Any] = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / "rules" / "*.yml")]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
            jobs.append(job)
    assert {j["job_name"] for j in jobs} == set(targets)
    config["scrape_configs"] = jobs
    return config


@pytest.fixture
def prometheus(tmp_path: Path, spawn: Callable[..., ServiceProcess]) -> Iterator[Prometheus]:
    binary = tool("prometheus", hint="apt-get install prometheus (make system-deps)")
    services = {"producer": spawn("producer"), "consumer": spawn("consumer"), "stream-worker": spawn("worker")}
    httpx.post(
        f"http://127.0.0.1:{services['producer'].port}/articles", json={"articles": [ARTICLE]}, timeout=10
    ).raise_for_status()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config({name: s.port for name, s in services.items()})))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        yield Prometheus(url)
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
    assert any(s["metric"]["stage"] == "analysed" for s in prometheus.wait_for("news:stage_throughput:rate1m"))
    firing = [r for r in loaded["news-suite.alerts"] if r["name"] == "NewsTargetDown" and r["state"] != "inactive"]
    assert not firing
