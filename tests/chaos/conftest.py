"""Chaos tests: every test here is marked `chaos` (and needs real Kafka and Redis, like integration tests).

`slow_chaos` marks the cases that start a broker of their own (Kafka or Redis restarts): deselect them
with `-m "not slow_chaos"` for a quicker run.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow_chaos: chaos case that starts and restarts a Kafka or Redis of its own")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.chaos)
