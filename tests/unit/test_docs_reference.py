"""The generated configuration reference: every setting of every service has a meaning, and no meaning is stale."""

from __future__ import annotations

import sys

import pytest

from harness.infra import ROOT

pytestmark = pytest.mark.unit

sys.path.insert(0, str(ROOT / "scripts"))
import gen_docs  # noqa: E402


def test_every_setting_has_a_meaning_and_every_meaning_a_setting() -> None:
    assert gen_docs.check_meanings() == []


def test_the_reference_lists_each_variable_with_its_default_and_readers() -> None:
    page = gen_docs.configuration_page()
    variables = gen_docs.variables()
    assert len(variables) > 100  # every section was walked, nested ones included
    for env in variables:
        assert f"| `{env}` |" in page, env
    assert "| `KAFKA__TOPICS__RAW` | `news.raw` |" in page
    assert "producer, worker, inference, consumer, indexer" in page  # shared sections name every reader
    assert "| `CONSUMER__ALERTS__WEBHOOK_ATTEMPTS` | `5` |" in page


def test_a_stale_or_missing_meaning_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    meanings = gen_docs.meanings()
    meanings.pop("KAFKA__LINGER_MS")
    meanings["KAFKA__NO_SUCH_SETTING"] = "gone"
    monkeypatch.setattr(gen_docs, "meanings", lambda: meanings)
    problems = gen_docs.check_meanings()
    assert "KAFKA__LINGER_MS: no meaning in docs/settings.yml" in problems
    assert "KAFKA__NO_SUCH_SETTING: in docs/settings.yml but no service reads it" in problems
