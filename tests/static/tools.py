"""Paths and command-line tools shared by the static deployment checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
MONITORING = ROOT / "monitoring"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
BIN = Path(sys.executable).parent


def tool(name: str, *, hint: str) -> str:
    """A command-line tool from the venv or PATH; missing is a failure (with how to install), not a skip."""
    for candidate in (BIN / name, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"{name} not found: {hint}")


def kustomize_cmd() -> list[str]:
    """The pinned kustomize that `make deploy-tools` builds, else kubectl's built-in kustomize."""
    pinned = os.environ.get("KUSTOMIZE")
    if pinned and os.access(pinned, os.X_OK):
        return [pinned, "build"]
    cached = sorted((Path.home() / ".cache" / "news-suite" / "bin").glob("kustomize-v*"))
    if cached:
        return [str(cached[-1]), "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail("no kustomize and no kubectl: run `make deploy-tools` (builds kustomize with Go)")


def run(argv: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_file(path: Path) -> list[dict[str, Any]]:
    return load_all(path.read_text())
