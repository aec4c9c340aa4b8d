"""Chaos tests: every test here is marked `chaos` (and needs real Kafka and Redis, like integration tests).

`slow_chaos` marks the cases that start a broker of their own (Kafka or Redis restarts): deselect them
with `-m "not slow_chaos"` for a quicker run.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow_chaos: chaos case that starts and restarts a Kafka or Redis of its own")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The randomised schemathesis run (a fresh seed, minutes per service) belongs to `make chaos` and
    # `make chaos-fuzz`, which set NEWS_LONG_FUZZ=1; the test suite fuzzes every service with a fixed seed
    # in tests/integration instead, so a CI run is repeatable. Elsewhere it is deselected (pytest says so).
    long_fuzz = os.environ.get("NEWS_LONG_FUZZ") == "1"
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        path = str(item.path).replace("\\", "/")
        if "tests/chaos/" in path:
            item.add_marker(pytest.mark.chaos)
        (dropped if path.endswith("tests/chaos/test_openapi_fuzz.py") and not long_fuzz else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
