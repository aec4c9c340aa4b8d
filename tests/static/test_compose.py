"""docker-compose.yml against the Compose Specification's JSON schema, and what the schema cannot
see: every built service has its Dockerfile and the files it copies, health-gated dependencies
point at services with a health check, the ports are DESIGN.md's, and .env.example covers it."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.static.tools import ROOT, SCHEMAS

pytestmark = pytest.mark.unit

COMPOSE = ROOT / "docker-compose.yml"
DESIGN_PORTS = {
    "inference": 8000,
    "producer": 8001,
    "consumer": 8002,
    "worker": 6066,
    "prometheus": 9090,
    "grafana": 3000,
    "redis": 6379,
    "opensearch": 9200,
}


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def dockerfile_of(service: dict[str, Any]) -> Path | None:
    build: Any = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / str(build.get("context", ".")) / str(build.get("dockerfile", "Dockerfile"))


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_refuses_a_broken_compose_file() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    broken = json.loads(json.dumps(compose()))
    broken["services"]["consumer"]["restart_policy"] = "always"  # a typo of `restart`
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_every_service_has_an_image_or_a_dockerfile() -> None:
    built_images = {s["image"] for s in services().values() if "build" in s and "image" in s}
    for name, service in services().items():
        dockerfile = dockerfile_of(service)
        if dockerfile is not None:
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        else:
            image = service.get("image")
            assert image, f"{name} has neither build nor image"
            if image.startswith("news-suite/"):
                assert image in built_images, f"{name} runs {image}, which no service builds"
            else:
                tag = image.rsplit(":", 1)[-1] if ":" in image else ""
                assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: pin {image} to a version"


def copied_sources(dockerfile: Path) -> list[str]:
    sources = []
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    return sources


@pytest.mark.parametrize("dockerfile", sorted(ROOT.glob("Dockerfile.*")), ids=lambda p: p.name)
def test_dockerfile_copies_only_what_exists(dockerfile: Path) -> None:
    sources = copied_sources(dockerfile)
    assert sources, f"no COPY parsed from {dockerfile.name}: every image copies code or config from the checkout"
    for source in sources:
        matches = list(ROOT.glob(source.rstrip("/")))
        if "*" in source:
            continue  # an optional glob (requirements*.txt): the Dockerfile handles its absence
        assert matches, f"{dockerfile.name} copies {source}, which is not in the build context"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for source in sources:
        top = source.split("/")[0]
        assert top not in ignored, f"{dockerfile.name} copies {source}, but .dockerignore drops {top}"


def test_health_gated_dependencies_have_a_health_check() -> None:
    gated = 0
    for name, service in services().items():
        depends = service.get("depends_on", {})
        for dep, condition in depends.items() if isinstance(depends, dict) else []:
            if condition.get("condition") == "service_healthy":
                gated += 1
                target = services()[dep]
                dockerfile = dockerfile_of(target)
                has_check = "healthcheck" in target or (
                    dockerfile is not None and "\nHEALTHCHECK " in dockerfile.read_text()
                )
                assert has_check, f"{name} waits for {dep} to be healthy, but {dep} has no health check"
    # the services wait for Kafka, Redis, OpenSearch and the consumer: none found means the parsing broke
    assert gated >= 4, f"only {gated} health-gated dependencies found in docker-compose.yml"


def test_ports_and_infrastructure_follow_the_design() -> None:
    for name, port in DESIGN_PORTS.items():
        published = [str(p) for p in services()[name].get("ports", [])]
        assert any(p.endswith(f":{port}") for p in published), f"{name} does not publish {port}: {published}"
    assert services()["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services()["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    redis = services()["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.startswith("redis-data:") for v in redis["volumes"])
    opensearch = services()["opensearch"]
    script_version = re.search(r"^OPENSEARCH_VERSION=(\S+)$", (ROOT / "scripts/opensearch.sh").read_text(), re.M)
    assert script_version, "scripts/opensearch.sh names its version"
    assert opensearch["image"] == f"opensearchproject/opensearch:{script_version.group(1)}", "same as make up runs"
    assert opensearch["environment"]["discovery.type"] == "single-node"
    assert any(v.startswith("opensearch-data:/usr/share/opensearch/data") for v in opensearch["volumes"])
    assert "-Xmx" in opensearch["environment"]["OPENSEARCH_JAVA_OPTS"]
    assert all(str(p).startswith("127.0.0.1:") for p in opensearch["ports"]), "no security plugin: loopback only"
    assert "opensearch" in services()["consumer"]["depends_on"]
    assert "dashboard" in services() and services()["dashboard"]["build"]["dockerfile"] == "Dockerfile.dashboard"
    for name, service in services().items():
        assert service.get("restart") in {"unless-stopped", "always", "no", "on-failure"}, name


def test_mounted_monitoring_files_exist() -> None:
    for name in ("prometheus", "grafana"):
        for volume in services()[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_env_example_documents_every_variable_without_a_default() -> None:
    example = (ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)(?::\?[^}]*)?\}", COMPOSE.read_text()))
    assert not required - defined, f"used by docker-compose.yml without a default: {required - defined}"
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert used <= defined, f"not documented in .env.example: {used - defined}"


def test_env_example_holds_placeholder_secrets_only() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z0-9_]*(?:TOKEN|PASSWORD|SECRET|API_KEY)[A-Z0-9_]*)=(.*)$", line)
        if match:
            assert match.group(2) in {"", "change-me"}, f"{match.group(1)} must be a placeholder in .env.example"
