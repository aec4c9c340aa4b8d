"""Kubernetes manifests: every file and every rendered overlay against the Kubernetes schemas
(kubernetes-validate, offline), the KEDA ScaledObject against its own schema, and the rules the
issue sets (probes, resources, restricted security, PDBs, autoscaling within the partitions)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.static.tools import K8S, SCHEMAS, kustomize_cmd, load_all, load_file, run

pytestmark = pytest.mark.unit

# The newest schemas kubernetes-validate ships and the oldest Kubernetes still commonly run.
K8S_VERSIONS = ("1.37.0", "1.30.0")
OVERLAYS = ("dev", "prod", "prod-gpu")
HTTP_SERVICES = {"producer": 8001, "consumer": 8002, "inference": 8000}
WORKLOADS = ("producer", "consumer", "inference", "stream-worker", "dashboard")


@cache
def render(target: str) -> tuple[dict[str, Any], ...]:
    result = run([*kustomize_cmd(), str(K8S / target)])
    assert result.returncode == 0, f"kustomize build {target} failed:\n{result.stderr}"
    return tuple(load_all(result.stdout))


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def manifest_files() -> list[Path]:
    """Whole manifests: every `resources:` file of a kustomization, plus the Secret template."""
    files = {K8S / "base" / "secret.template.yaml"}
    for kust in kustomizations():
        for entry in yaml.safe_load(kust.read_text()).get("resources", []):
            path = (kust.parent / entry).resolve()
            if path.is_file():
                files.add(path)
    return sorted(files)


def validate(doc: dict[str, Any], version: str) -> None:
    if doc["apiVersion"] == "keda.sh/v1alpha1":
        schema = json.loads((SCHEMAS / "keda-scaledobject.schema.json").read_text())
        jsonschema.validate(doc, schema)
        behavior = doc["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        if behavior:  # the HPA part of a ScaledObject is a real autoscaling/v2 behavior
            hpa = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "x"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 1, "behavior": behavior},
            }
            kubernetes_validate.validate(hpa, version, strict=True)
        return
    kubernetes_validate.validate(doc, version, strict=True)


def by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def config(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    (cm,) = (d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("news-config"))
    data: dict[str, str] = cm["data"]
    return data


def test_every_yaml_under_k8s_is_used() -> None:
    """No orphan manifest: each file is a kustomization, a resource, a patch or the Secret template."""
    used = {p.resolve() for p in manifest_files()} | {p.resolve() for p in kustomizations()}
    for kust in kustomizations():
        for patch in yaml.safe_load(kust.read_text()).get("patches", []):
            if "path" in patch:
                used.add((kust.parent / patch["path"]).resolve())
    orphans = [p for p in K8S.rglob("*.yaml") if p.resolve() not in used]
    assert not orphans, f"not referenced by any kustomization: {orphans}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_file_is_valid(path: Path, version: str) -> None:
    docs = load_file(path)
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        validate(doc, version)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("target", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_rendered_overlay_is_valid(target: str, version: str) -> None:
    docs = render(target)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "ConfigMap",
        "StatefulSet",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "ScaledObject",
    } <= kinds
    for doc in docs:
        validate(doc, version)
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "news", doc["metadata"]["name"]


def test_schema_validation_catches_a_broken_manifest() -> None:
    """The validator is not a rubber stamp: a typo'd field and a wrong type are refused."""
    deployment = by_kind(render("overlays/prod"), "Deployment")["consumer"]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken, K8S_VERSIONS[0])
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken, K8S_VERSIONS[0])
    (scaled,) = (d for d in render("overlays/prod") if d["kind"] == "ScaledObject")
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, K8S_VERSIONS[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_probed_limited_and_restricted(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    workloads = {**by_kind(docs, "Deployment"), **by_kind(docs, "StatefulSet")}
    assert set(WORKLOADS) <= set(workloads)
    assert {"kafka", "redis", "opensearch"} <= set(workloads)
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
            assert "readinessProbe" in container and "livenessProbe" in container, name
            if workload["kind"] == "Deployment":
                assert sc["readOnlyRootFilesystem"] is True, name
                tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]  # noqa: S108
                assert tmp, f"{name}: /tmp must be a writable emptyDir"
                (volume,) = (v for v in pod["volumes"] if v["name"] == tmp[0]["name"])
                assert "emptyDir" in volume, name
                assert not container["image"].endswith(":latest") or overlay == "dev", name
    for name in (*HTTP_SERVICES, "stream-worker"):
        container = workloads[name]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        annotations = workloads[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_pdbs_and_autoscalers_match_the_workloads(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    pdb_selectors = [p["spec"]["selector"]["matchLabels"] for p in by_kind(docs, "PodDisruptionBudget").values()]
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(sel.items() <= labels.items() for sel in pdb_selectors), f"{name} has no PodDisruptionBudget"
        assert name in services and services[name]["spec"]["selector"].items() <= labels.items(), name
    for port_name, port in HTTP_SERVICES.items():
        assert services[port_name]["spec"]["ports"][0]["port"] == port
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) >= {*HTTP_SERVICES, "dashboard"}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments, name
        assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}, name
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], name
    assert "stream-worker" not in hpas, "the stream worker is scaled by KEDA, not by a CPU HPA"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_stream_worker_scales_on_lag_within_the_partitions(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    settings = config(docs)
    (scaled,) = by_kind(docs, "ScaledObject").values()
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] in by_kind(docs, "Deployment")
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= int(settings["KAFKA__PARTITIONS"])
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == settings["WORKER__APP_ID"]
    assert trigger["metadata"]["topic"] == settings.get("KAFKA__TOPICS__PREFIX", "") + "news.raw"
    host = trigger["metadata"]["bootstrapServers"].split(":")[0]
    assert host.startswith("kafka.news.svc"), "KEDA runs in its own namespace: use the broker's full name"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_default_deny_and_cover_every_pod(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    named = {p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") for p in policies.values()}
    assert {*WORKLOADS, "kafka", "redis", "opensearch"} <= named


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_and_secrets(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    settings = config(docs)
    assert settings["KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert settings["REDIS__URL"].startswith("redis://redis:6379")
    assert settings["OPENSEARCH__URL"] == "http://opensearch:9200"
    secrets = by_kind(docs, "Secret")
    if overlay == "dev":
        assert settings["ENVIRONMENT"] == "local", "the dev secret is a placeholder: only local accepts it"
        assert any(name.startswith("news-secrets") for name in secrets)
    else:
        assert settings["ENVIRONMENT"] == "production"
        assert not secrets, "production secrets are created out of band, never rendered from the repo"
    kafka = by_kind(docs, "StatefulSet")["kafka"]
    env = {e["name"]: e.get("value") for e in kafka["spec"]["template"]["spec"]["containers"][0]["env"]}
    replicas = kafka["spec"]["replicas"]
    assert len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == replicas
    assert int(settings["KAFKA__REPLICATION_FACTOR"]) <= replicas
    assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) < max(replicas, 2)
    for sts in ("kafka", "redis", "opensearch"):
        (claim,) = by_kind(docs, "StatefulSet")[sts]["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"], sts
    redis_args = by_kind(docs, "StatefulSet")["redis"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_opensearch_is_one_node_reachable_from_the_consumer(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    sts = by_kind(docs, "StatefulSet")["opensearch"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["image"] == "opensearchproject/opensearch:2.19.6"
    assert sts["spec"]["replicas"] == 1 and env["discovery.type"] == "single-node", "more nodes: docs/SEARCH.md"
    heap = int(env["OPENSEARCH_JAVA_OPTS"].split("-Xmx")[1].rstrip("gG").split()[0])
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi") and heap * 2 <= int(limit[:-2]), "heap at most half the memory limit"
    consumer = by_kind(docs, "NetworkPolicy")["consumer"]["spec"]
    egress = [r for r in consumer["egress"] for t in r["to"] if t.get("podSelector", {}).get("matchLabels")]
    assert any(
        t["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == "opensearch" for r in egress for t in r["to"]
    )


def test_gpu_overlay_puts_inference_on_gpus() -> None:
    docs = render("overlays/prod-gpu")
    pod = by_kind(docs, "Deployment")["inference"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["nodeSelector"]
    assert container["image"].endswith("-gpu")
    cpu_only = by_kind(render("overlays/prod"), "Deployment")["inference"]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in cpu_only["containers"][0]["resources"]["limits"]


# --- credentials: every client of an authenticated service is given one ---------------------------------------

# The keys of news-secrets a service checks bearer tokens against (common/settings.py, common/webapp.py).
TOKEN_KEYS = ("API_READ_TOKENS", "API_WRITE_TOKENS", "API_TOKEN")


def _worker_sends() -> tuple[str, ...]:
    """The keys the stream worker's inference client can take its token from, read off the code that picks it:
    `ServiceSettings.client_token()` (the first read token, else a write token) or the older `api_token`."""
    source = (K8S.parent / "stream_worker" / "context.py").read_text()
    make_analyzer = source[source.index("def make_analyzer") :].split("\ndef ", 1)[0]
    if "client_token()" in make_analyzer:
        return ("API_READ_TOKENS", "API_WRITE_TOKENS", "API_TOKEN")
    assert "settings.api_token" in make_analyzer, "update _worker_sends: the worker's token comes from elsewhere"
    return ("API_TOKEN",)


# What each client of an authenticated service sends (any one of the keys, given a value): a new client (a
# container whose settings name such a service's URL) fails
# `test_every_client_of_an_authenticated_service_has_a_credential` until it is listed here and given one.
CLIENT_CREDENTIAL: dict[str, tuple[str, ...]] = {
    # nginx adds the first read token to what it proxies (docker/dashboard/40-news-config.sh): read only
    "dashboard": ("API_READ_TOKENS",),
    # the worker's HTTP client of the inference service (stream_worker/context.py, make_analyzer)
    "stream-worker": _worker_sends(),
}


# Settings sections only one service reads (the shared ConfigMap carries them all): WORKER__INFERENCE_URL makes
# the stream worker a client of the inference service, not the consumer, which gets the same ConfigMap.
_SECTIONS = {"WORKER": "stream-worker", "CONSUMER": "consumer", "PRODUCER": "producer", "INDEXER": "indexer"}


def secret_keys(docs: tuple[dict[str, Any], ...], name: str) -> dict[str, str]:
    """Keys of the Secret `name` as rendered (dev), else those of the template operators create it from (prod)."""
    rendered = by_kind(docs, "Secret")
    if name in rendered:
        import base64

        return {k: base64.b64decode(v).decode() for k, v in rendered[name].get("data", {}).items()}
    (template,) = load_file(K8S / "base" / "secret.template.yaml")
    keys: dict[str, str] = template["stringData"]
    return keys


def container_env(docs: tuple[dict[str, Any], ...], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each variable a container gets: (where from, value or secret key), from env and envFrom."""
    maps = by_kind(docs, "ConfigMap")
    env: dict[str, tuple[str, str]] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            for key, value in maps[source["configMapRef"]["name"]]["data"].items():
                env[key] = ("value", value)
        if "secretRef" in source:
            for key in secret_keys(docs, source["secretRef"]["name"]):
                env[key] = (f"secret:{source['secretRef']['name']}", key)
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = (f"secret:{ref['name']}", ref["key"]) if ref else ("value", str(item.get("value", "")))
    return env


def missing_credentials(docs: tuple[dict[str, Any], ...]) -> list[str]:
    """Every client of a token-checking service without the credential `CLIENT_CREDENTIAL` names for it."""
    deployments = by_kind(docs, "Deployment")
    envs = {
        name: container_env(docs, d["spec"]["template"]["spec"]["containers"][0]) for name, d in deployments.items()
    }
    guarded = {name for name, env in envs.items() if name not in CLIENT_CREDENTIAL and set(TOKEN_KEYS) & set(env)}
    problems = []
    for name, env in envs.items():
        calls = {
            svc
            for svc in guarded - {name}
            for var, (_, value) in env.items()
            if f"://{svc}:" in value and _SECTIONS.get(var.split("__")[0], name) == name
        }
        if not calls:
            continue
        keys = CLIENT_CREDENTIAL.get(name)
        if keys is None:
            problems.append(f"{name} calls {sorted(calls)} but has no entry in CLIENT_CREDENTIAL")
            continue
        given = [env[k] for k in keys if k in env and env[k][0].startswith("secret:")]
        if not any(secret_keys(docs, where.removeprefix("secret:")).get(key) for where, key in given):
            problems.append(f"{name} calls {sorted(calls)} without {' or '.join(keys)} from a Secret")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_client_of_an_authenticated_service_has_a_credential(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    assert not missing_credentials(docs)
    # and the check is not vacuous: the services do check tokens, and the dashboard is one of their clients
    consumer = container_env(docs, by_kind(docs, "Deployment")["consumer"]["spec"]["template"]["spec"]["containers"][0])
    assert set(TOKEN_KEYS) <= set(consumer), "the consumer gets every token list"
    dashboard = by_kind(docs, "Deployment")["dashboard"]["spec"]["template"]["spec"]["containers"][0]
    assert "http://consumer:8002" in {e.get("value") for e in dashboard["env"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_dashboard_holds_read_tokens_only(overlay: str) -> None:
    """nginx adds its token to whatever any browser asks: a write token there would hand writes to everyone."""
    container = by_kind(render(f"overlays/{overlay}"), "Deployment")["dashboard"]["spec"]["template"]["spec"]
    (nginx,) = container["containers"]
    assert not any("secretRef" in s for s in nginx.get("envFrom", [])), "map single keys, never the whole Secret"
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in nginx["env"] if "valueFrom" in e}
    assert keys == {"API_READ_TOKENS"}


def test_a_client_without_its_credential_is_reported() -> None:
    """The checker fails when the dashboard loses its token, or a new client of the consumer has none."""
    docs = render("overlays/dev")
    broken = json.loads(json.dumps(docs))
    (dashboard,) = (d for d in broken if d["kind"] == "Deployment" and d["metadata"]["name"] == "dashboard")
    container = dashboard["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "API_READ_TOKENS"]
    assert missing_credentials(tuple(broken)) == ["dashboard calls ['consumer'] without API_READ_TOKENS from a Secret"]
    broken = json.loads(json.dumps(docs))
    (producer,) = (d for d in broken if d["kind"] == "Deployment" and d["metadata"]["name"] == "producer")
    producer["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "X_URL", "value": "http://consumer:8002"}]
    assert missing_credentials(tuple(broken)) == ["producer calls ['consumer'] but has no entry in CLIENT_CREDENTIAL"]
    gpu = json.loads(json.dumps(render("overlays/prod-gpu")))
    (worker,) = (d for d in gpu if d["kind"] == "Deployment" and d["metadata"]["name"] == "stream-worker")
    worker["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        s for s in worker["spec"]["template"]["spec"]["containers"][0]["envFrom"] if "secretRef" not in s
    ]
    assert missing_credentials(tuple(gpu)) == [
        f"stream-worker calls ['inference'] without {' or '.join(_worker_sends())} from a Secret"
    ]


# --- the GPU overlay changes where the analysis runs ------------------------------------------------------------


def test_gpu_overlay_routes_the_workers_to_the_gpu_service() -> None:
    """prod-gpu: the workers call the inference Service (which runs on GPUs), not the engine in-process."""
    docs = render("overlays/prod-gpu")
    settings = config(docs)
    url = settings["WORKER__INFERENCE_URL"]  # stream_worker/settings.py: WorkerConfig.inference_url
    services = by_kind(docs, "Service")
    host, port = url.removeprefix("http://").split(":")
    assert host == "inference" and int(port) == services["inference"]["spec"]["ports"][0]["port"]
    selector = services["inference"]["spec"]["selector"]
    inference = by_kind(docs, "Deployment")["inference"]["spec"]["template"]
    assert selector.items() <= inference["metadata"]["labels"].items(), "the Service selects the GPU pods"
    assert inference["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    worker = by_kind(docs, "Deployment")["stream-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert url == container_env(docs, worker)["WORKER__INFERENCE_URL"][1], "the worker reads it"
    assert "nvidia.com/gpu" not in worker["resources"]["limits"], "workers stay CPU pods"
    policy = by_kind(docs, "NetworkPolicy")["inference"]["spec"]
    admitted = {
        f["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
        for rule in policy["ingress"]
        for f in rule.get("from", [])
        if "podSelector" in f
    }
    assert "stream-worker" in admitted, "the inference NetworkPolicy admits the workers"
    for overlay in ("dev", "prod"):
        assert "WORKER__INFERENCE_URL" not in config(render(f"overlays/{overlay}")), "CPU overlays: in-process"
