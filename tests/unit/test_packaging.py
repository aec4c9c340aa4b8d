"""requirements.txt is generated from pyproject.toml (`make requirements`) and must stay in sync with it."""

from __future__ import annotations

import re
import tomllib

import pytest

from harness.infra import ROOT

pytestmark = pytest.mark.unit


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>~! ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_pyproject_pin_is_in_requirements() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    locked = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith(("#", " ")):
            name, version = line.split("==", 1)
            locked[_name(name)] = version.split()[0]
    problems = []
    for requirement in declared:
        assert "==" in requirement, f"{requirement!r} is not pinned with =="
        name, version = _name(requirement), requirement.split("==", 1)[1].split(";")[0].strip()
        if locked.get(name) != version:
            problems.append(f"{name}: pyproject {version}, requirements.txt {locked.get(name)}")
    assert not problems, "run `make requirements`:\n" + "\n".join(problems)
