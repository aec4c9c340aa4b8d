"""Prometheus and Grafana files: promtool checks the configs, the rules and the rules' unit tests;
every metric the rules and the dashboard name is one that common/metrics.py declares; every alert
has its section in monitoring/PROMETHEUS_GUIDE.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from common.metrics import ConsumerMetrics, InferenceMetrics, ProducerMetrics, StoryMetrics, WorkerMetrics
from indexer.metrics import IndexerMetrics
from tests.static.tools import MONITORING, ROOT, run, tool

pytestmark = pytest.mark.unit

RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*_test.yml"))
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
ISSUE_ALERTS = {
    "NewsTargetDown",
    "NewsConsumerLagGrowing",
    "NewsInferenceFailureRatioHigh",
    "NewsNoArticlesFetched",
    "NewsDeadLetterGrowth",
    "NewsWebSocketMessagesDropped",
    "NewsWebSocketConnectionsDropped",
}
JOBS = {"producer", "inference", "consumer", "stream-worker"}
_OURS = re.compile(r"\b((?:news|inference|worker|consumer|ws|active)_[a-z0-9_]+)\b")


def promtool() -> str:
    return tool("promtool", hint="apt-get install prometheus (make system-deps)")


def declared_series() -> set[str]:
    """Every sample name the services can expose (counters' _total, histograms' _bucket, ...)."""
    registry = CollectorRegistry()
    for container in (ProducerMetrics, InferenceMetrics, WorkerMetrics, StoryMetrics, ConsumerMetrics, IndexerMetrics):
        container.create(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names |= {f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_sum", "_count", "_created")}
    return names


def rules() -> list[dict[str, Any]]:
    return [r for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", [])]
    return exprs


def test_compose_config() -> None:
    result = run([promtool(), "check", "config", str(MONITORING / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {c["job_name"] for c in yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]}
    assert jobs >= JOBS


def test_kubernetes_config(tmp_path: Path) -> None:
    """Debian's promtool is built without Kubernetes discovery, so where it refuses the section the
    rest of the file (relabelling, rule files) is checked with that section swapped for a static one."""
    source = MONITORING / "prometheus-k8s.yml"
    result = run([promtool(), "check", "config", str(source)])
    if result.returncode != 0 and "kubernetes_sd_configs not found" in result.stdout + result.stderr:
        config = yaml.safe_load(source.read_text())
        for scrape in config["scrape_configs"]:
            if scrape.pop("kubernetes_sd_configs", None) is not None:
                scrape["static_configs"] = [{"targets": ["10.0.0.1:8001"]}]
        (tmp_path / "rules").symlink_to(MONITORING / "rules")
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        result = run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    (pods,) = (c for c in yaml.safe_load(source.read_text())["scrape_configs"] if "kubernetes_sd_configs" in c)
    assert pods["kubernetes_sd_configs"][0]["role"] == "pod"
    relabel = {r.get("target_label") for r in pods["relabel_configs"]}
    assert {"job", "__address__", "__metrics_path__"} <= relabel


def test_rules_check() -> None:
    assert RULE_FILES
    result = run([promtool(), "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests() -> None:
    assert RULE_TESTS
    result = run([promtool(), "test", "rules", *map(str, RULE_TESTS)], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_the_issue_asks_for_exists_and_is_tested() -> None:
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert ISSUE_ALERTS <= alerts
    tested = {
        t["alertname"]
        for path in RULE_TESTS
        for case in yaml.safe_load(path.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert alerts <= tested, f"alerts without a firing unit test: {alerts - tested}"


def test_rules_and_dashboard_use_only_declared_metrics() -> None:
    declared = declared_series()
    for expr in [r["expr"] for r in rules()] + dashboard_exprs():
        unknown = set(_OURS.findall(expr)) - declared
        assert not unknown, f"{expr!r} names metrics no service declares: {unknown}"


def test_guide_explains_every_alert_and_metric() -> None:
    guide = (MONITORING / "PROMETHEUS_GUIDE.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", guide, re.M)}
    for rule in rules():
        if "alert" in rule:
            assert rule["alert"].lower() in anchors, f"PROMETHEUS_GUIDE.md has no section for {rule['alert']}"
            runbook = rule["annotations"]["runbook"]
            assert runbook.split("#")[1] in anchors and (ROOT / runbook.split("#")[0]).is_file()
    registry = CollectorRegistry()
    for container in (ProducerMetrics, InferenceMetrics, WorkerMetrics, StoryMetrics, ConsumerMetrics, IndexerMetrics):
        container.create(registry)
    for family in registry.collect():
        shown = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{shown}`" in guide, f"PROMETHEUS_GUIDE.md does not explain {shown}"


def test_grafana_dashboard_and_provisioning() -> None:
    datasources = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    providers = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "dashboards" / "news-suite.yml").read_text())[
        "providers"
    ]
    assert providers[0]["options"]["path"] == "/etc/grafana/dashboards"
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel["targets"], panel["title"]
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARDS[0].read_text())["panels"])
    for topic in ("throughput", "p50/p95/p99", "success", "lag", "websocket", "dlq"):
        assert topic in titles, f"the dashboard has no panel about {topic}"


# --- Alertmanager: the documented route --------------------------------------------------------------------------

ALERTMANAGER = MONITORING / "alertmanager.yml"


def amtool() -> str:
    return tool("amtool", hint="apt-get install prometheus-alertmanager (make system-deps: mk/deploy.mk)")


def route_of(labels: dict[str, str]) -> str:
    result = run(
        [
            amtool(),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            *(f"{k}={v}" for k, v in labels.items()),
        ]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_alertmanager_config_is_valid() -> None:
    result = run([amtool(), "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_route_to_a_receiver_that_sends_somewhere() -> None:
    """Each alert of the rules reaches the receiver PROMETHEUS_GUIDE.md names for its severity, and each
    receiver has somewhere to send (a receiver without configs drops what it gets)."""
    expected = {"critical": "oncall", "warning": "team"}
    alerts = [r for r in rules() if "alert" in r]
    assert alerts
    for rule in alerts:
        severity = rule["labels"]["severity"]
        assert route_of({"alertname": rule["alert"], "severity": severity, "job": "consumer"}) == expected[severity]
    config = yaml.safe_load(ALERTMANAGER.read_text())
    for receiver in config["receivers"]:
        assert any(k.endswith("_configs") and v for k, v in receiver.items()), f"{receiver['name']} sends nowhere"
    guide = (MONITORING / "PROMETHEUS_GUIDE.md").read_text()
    assert "## Alert routing" in guide and all(f"`{name}`" in guide for name in expected.values())


def test_prometheus_sends_its_alerts_to_alertmanager() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    host, port = target.split(":")
    assert host in compose and compose[host]["image"].startswith("prom/alertmanager:v")
    assert "./monitoring/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in compose[host]["volumes"]
    assert any(str(p).endswith(f":{port}") for p in compose[host]["ports"])
    # the receivers' default URL is the alert log, which shares Alertmanager's network namespace in compose
    assert compose["alert-log"]["network_mode"] == f"service:{host}"
    urls = [c["url"] for r in yaml.safe_load(ALERTMANAGER.read_text())["receivers"] for c in r["webhook_configs"]]
    assert all(u.startswith("http://127.0.0.1:9095/") for u in urls), urls
    assert '--port", "9095"' in (ROOT / "docker-compose.yml").read_text() or "9095" in compose["alert-log"]["command"]
