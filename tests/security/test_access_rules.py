"""The access rules on their own (no process): which token grants what, the write rate limit's arithmetic,
what log redaction replaces (through uvicorn's own access formatter), and the settings that carry tokens."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from uvicorn.logging import AccessFormatter

from common.errors import ConfigError
from common.settings import ServiceSettings
from common.webapp import AccessTokens, RateLimiter, SecretRedactor, mount_guarded, redact
from consumer.settings import ConsumerSettings

pytestmark = pytest.mark.unit


def _settings(**env: str) -> ServiceSettings:
    return ConsumerSettings(_env_file=None, **{k.lower(): SecretStr(v) for k, v in env.items()})  # type: ignore[arg-type]


def test_scopes_rotation_and_the_legacy_token() -> None:
    access = AccessTokens.of(_settings(API_READ_TOKENS="r1, r2,", API_WRITE_TOKENS="w1,w2", API_TOKEN="legacy"))
    assert [access.scope_of(t) for t in ("r1", "r2", "w1", "w2", "legacy")] == ["read"] * 2 + ["write"] * 3
    for wrong in (None, "", "r", "r1 ", "w1,w2", "R1", "r1r2"):
        assert access.scope_of(wrong) is None, wrong
    assert not access.open and AccessTokens.of(_settings()).open
    # The rate-limit key of a token is not the token.
    caller = access.caller("w1", "10.0.0.1")
    assert caller.scope == "write" and "w1" not in caller.key and caller.key != access.caller("w2", "x").key
    assert access.caller("nope", "10.0.0.1").key == "addr:10.0.0.1"


def test_client_token_prefers_a_read_token() -> None:
    assert _settings(API_READ_TOKENS="r1,r2", API_WRITE_TOKENS="w1").client_token() == SecretStr("r1")
    assert _settings(API_TOKEN="legacy").client_token() == SecretStr("legacy")
    assert _settings().client_token() is None


@pytest.mark.parametrize("name", ["API_READ_TOKENS", "API_WRITE_TOKENS"])
def test_a_placeholder_inside_a_token_list_is_refused_in_production(name: str) -> None:
    def load(tokens: str) -> ServiceSettings:
        return ConsumerSettings(_env_file=None, environment="production", **{name.lower(): SecretStr(tokens)})  # type: ignore[arg-type]

    with pytest.raises(ConfigError, match=name) as refused:
        load("4f2c9e8a1b7d,change-me")
    assert "4f2c9e8a1b7d" not in str(refused.value)
    assert len(load("4f2c9e8a1b7d,9a8b7c6d5e4f").read_tokens()) == 2


def test_token_bucket_refuses_past_the_burst_and_says_when_to_retry() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token comes back every 1/rate s
    assert limiter.take("b") == 0.0  # per client
    now[0] += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    now[0] += 60
    assert [limiter.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled up to the burst, no more
    assert RateLimiter(rate=0, burst=1).take("a") == 0.0  # 0 turns it off


def test_idle_buckets_are_dropped_when_there_are_many() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: now[0])
    limiter.MAX_KEYS = 100
    for i in range(1_000):
        limiter.take(f"k{i}")
        now[0] += 0.01
    assert len(limiter._buckets) <= 101


def test_guard_answers_401_403_429_and_documents_them() -> None:
    app = FastAPI()
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/thing")
    async def read() -> dict[str, bool]:
        return {"ok": True}

    @router.post("/thing")
    async def write() -> dict[str, bool]:
        return {"ok": True}

    access = AccessTokens(read=(b"r", b"w"), write=(b"w",))
    mount_guarded(app, router, access, RateLimiter(rate=0.001, burst=2))
    client = TestClient(app)
    assert client.get("/thing").status_code == 401
    assert client.get("/thing", headers={"Authorization": "Bearer r"}).status_code == 200
    assert client.post("/thing", headers={"Authorization": "Bearer r"}).status_code == 403
    assert [client.post("/thing", headers={"Authorization": "Bearer w"}).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/thing", headers={"Authorization": "Bearer w"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    paths = client.get("/openapi.json").json()["paths"]["/thing"]
    assert set(paths["get"]["responses"]) == {"200", "401"}
    assert set(paths["post"]["responses"]) == {"200", "401", "403", "429"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /ws?ticket=abc-123_x&since=1-0", "GET /ws?ticket=[redacted]&since=1-0"),
        ("/news/recent?limit=5&token=s3cret", "/news/recent?limit=5&token=[redacted]"),
        ("https://n/v2/everything?q=x&apiKey=K3Y", "https://n/v2/everything?q=x&apiKey=[redacted]"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer [redacted]"),
        ("/news/recent?limit=5&since=2024-01-01", "/news/recent?limit=5&since=2024-01-01"),
        ("missing or wrong bearer token", "missing or wrong bearer token"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_uvicorn_access_line_is_redacted_and_still_formats() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/ws?ticket=planted-ticket-123", "1.1", 101),
        None,
    )
    assert SecretRedactor().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert "planted-ticket-123" not in line and "/ws?ticket=[redacted]" in line
