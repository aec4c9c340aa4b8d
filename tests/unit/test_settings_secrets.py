"""Every secret of every service: unset by default, and refused as a placeholder outside local/test.

The secrets are found here from the settings classes' type annotations, not by the walk `common.settings` does on
the values, so a secret the service-side check misses (a new section, a new service) fails these tests.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, SecretStr

from common.errors import ConfigError
from common.settings import ServiceSettings
from consumer.settings import ConsumerSettings
from indexer.settings import IndexerSettings
from inference.settings import InferenceSettings
from producer.settings import ProducerSettings
from stream_worker.settings import WorkerSettings

pytestmark = pytest.mark.unit

SERVICES: tuple[type[ServiceSettings], ...] = (
    ConsumerSettings,
    IndexerSettings,
    InferenceSettings,
    ProducerSettings,
    WorkerSettings,
)
PLACEHOLDERS = ("not-set", "change-me", " CHANGEME ", "")


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in {Union, types.UnionType}:
        return tuple(m for arg in get_args(annotation) for m in _members(arg))
    return (annotation,)


def _secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Field paths whose type is a SecretStr, through nested settings models."""
    paths: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        for member in _members(field.annotation):
            if member is SecretStr:
                paths.append((*prefix, name))
            elif isinstance(member, type) and issubclass(member, BaseModel):
                paths.extend(_secret_paths(member, (*prefix, name)))
    return paths


SECRETS = [(cls, path) for cls in SERVICES for path in _secret_paths(cls)]


def _env(path: tuple[str, ...]) -> str:
    return "__".join(path).upper()


def _value(settings: BaseModel, path: tuple[str, ...]) -> object:
    value: object = settings
    for name in path:
        value = getattr(value, name)
    return value


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test sets: no ENVIRONMENT, secret or provider choice from the shell running the tests."""
    import os

    for name in list(os.environ):
        upper = name.upper()
        if upper == "ENVIRONMENT" or upper.startswith("INFERENCE__PROVIDERS") or upper in {_env(p) for _, p in SECRETS}:
            monkeypatch.delenv(name)


def _load(cls: type[ServiceSettings], **values: Any) -> ServiceSettings:
    return cls(_env_file=None, **values)


def test_every_service_is_covered() -> None:
    assert set(ServiceSettings.__subclasses__()) <= set(SERVICES), "add the new service's settings to SERVICES"


def test_the_known_secrets_are_found() -> None:
    """The annotation walk sees the secrets it must (an empty SECRETS would make every test below vacuous)."""
    found = {(cls.__name__, _env(path)) for cls, path in SECRETS}
    assert {
        ("ConsumerSettings", "API_TOKEN"),
        ("ProducerSettings", "NEWSAPI__API_KEY"),
        ("InferenceSettings", "INFERENCE__OPENAI__API_KEY"),
        ("InferenceSettings", "INFERENCE__HUGGINGFACE__TOKEN"),
    } <= found


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_production_defaults_leave_every_secret_unset(cls: type[ServiceSettings]) -> None:
    """A default such as SecretStr("not-set") is a placeholder nobody chose: a secret is None until it is set."""
    settings = _load(cls, environment="production")
    for owner, path in SECRETS:
        if owner is cls:
            assert _value(settings, path) is None, f"{_env(path)} has a default value"


@pytest.mark.parametrize(("cls", "path"), SECRETS, ids=lambda v: v.__name__ if isinstance(v, type) else _env(v))
@pytest.mark.parametrize("environment", ["staging", "production"])
@pytest.mark.parametrize("placeholder", PLACEHOLDERS, ids=repr)
def test_placeholder_secret_is_refused_outside_local(
    monkeypatch: pytest.MonkeyPatch,
    cls: type[ServiceSettings],
    path: tuple[str, ...],
    environment: str,
    placeholder: str,
) -> None:
    monkeypatch.setenv(_env(path), placeholder)
    monkeypatch.setenv("ENVIRONMENT", environment)
    with pytest.raises(ConfigError, match=_env(path)):
        _load(cls)


@pytest.mark.parametrize(("cls", "path"), SECRETS, ids=lambda v: v.__name__ if isinstance(v, type) else _env(v))
def test_real_secret_is_accepted_and_placeholder_is_accepted_locally(
    monkeypatch: pytest.MonkeyPatch, cls: type[ServiceSettings], path: tuple[str, ...]
) -> None:
    monkeypatch.setenv(_env(path), "4f2c9e8a1b7d")
    monkeypatch.setenv("ENVIRONMENT", "production")
    secret = _value(_load(cls), path)
    assert isinstance(secret, SecretStr) and secret.get_secret_value() == "4f2c9e8a1b7d"
    monkeypatch.setenv(_env(path), "change-me")
    for environment in ("local", "test"):
        monkeypatch.setenv("ENVIRONMENT", environment)
        assert _load(cls).environment == environment


def test_refusal_names_every_placeholder_and_shows_no_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "change-me")
    monkeypatch.setenv("INFERENCE__OPENAI__API_KEY", "not-set")
    monkeypatch.setenv("INFERENCE__HUGGINGFACE__TOKEN", "hf_real_token_1234")
    with pytest.raises(ConfigError) as refused:
        _load(InferenceSettings, environment="production")
    message = str(refused.value)
    assert "API_TOKEN" in message and "INFERENCE__OPENAI__API_KEY" in message
    assert "INFERENCE__HUGGINGFACE__TOKEN" not in message and "hf_real" not in message


@pytest.mark.parametrize(
    ("provider", "variable"),
    [("openai", "INFERENCE__OPENAI__API_KEY"), ("huggingface", "INFERENCE__HUGGINGFACE__TOKEN")],
)
@pytest.mark.parametrize("environment", ["local", "production"])
def test_selected_provider_needs_its_credential(
    monkeypatch: pytest.MonkeyPatch, provider: str, variable: str, environment: str
) -> None:
    monkeypatch.setenv("INFERENCE__PROVIDERS__SUMMARY", provider)
    with pytest.raises(ConfigError, match=rf"selects {provider} for summary but {variable} is not set"):
        _load(InferenceSettings, environment=environment)
    monkeypatch.setenv(variable, "4f2c9e8a1b7d")
    loaded = _load(InferenceSettings, environment=environment)
    assert isinstance(loaded, InferenceSettings)
    assert loaded.inference.provider_for("summary") == provider
