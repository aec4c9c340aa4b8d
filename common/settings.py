"""Settings shared by every service: one nested model per dependency, read from the environment.

`KAFKA__BOOTSTRAP_SERVERS=host:9092`, `REDIS__URL=redis://...`, `API_TOKEN=...` and so on;
services subclass `ServiceSettings` with a section of their own (see each `*/settings.py`).

Secrets are `SecretStr | None` (None: not configured) in any section at any depth; outside local/test every one
that is set must be real (`secret_placeholders`), so a new secret is guarded by being declared, not by a check
written beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import ConfigError

__all__ = [
    "PLACEHOLDERS",
    "KafkaSettings",
    "OpenSearchSettings",
    "RedisSettings",
    "ServiceSettings",
    "TopicNames",
    "secret_placeholders",
    "split_tokens",
]

# Values that stand in for a secret in templates and defaults (compared stripped and lower-cased).
PLACEHOLDERS = frozenset({"", "changeme", "change-me", "not-set", "placeholder", "secret", "your-key-here", "xxx"})


class TopicNames(BaseModel):
    """Topic names; `prefix` isolates deployments (and tests) sharing one broker."""

    prefix: str = ""
    raw: str = "news.raw"
    analyzed: str = "news.analyzed"
    dlq: str = "news.dlq"
    # The story stage (issue 15): analysed articles re-keyed by language, so one writer assigns each
    # language's stories; and the story updates it produces, keyed by story id.
    story_input: str = "news.stories.in"
    stories: str = "news.stories"

    def full(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def raw_topic(self) -> str:
        return self.full(self.raw)

    @property
    def analyzed_topic(self) -> str:
        return self.full(self.analyzed)

    @property
    def dlq_topic(self) -> str:
        return self.full(self.dlq)


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=6, ge=1, le=1_000)
    replication_factor: int = Field(default=1, ge=1)
    # zstd: measured against gzip and lz4 with aiokafka (cramjam codecs) on real articles, producer CPU 0.08 ms per
    # record against 0.29 (gzip) and 0.15 (lz4), and the fastest of the three end to end (bench/stream_layer.py).
    compression_type: Literal["gzip", "lz4", "zstd", "snappy", "none"] = "zstd"
    linger_ms: int = Field(default=20, ge=0, le=5_000)
    max_request_size: int = Field(default=16 * 1024 * 1024, ge=1024)
    topics: TopicNames = Field(default_factory=TopicNames)


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "news:"
    # The hot window (issue 16): the live feed, WebSocket resume and statistics read Redis for 48 hours; older
    # articles are served from the archive (OpenSearch). Memory per article and per day: docs/SEARCH.md.
    ttl_seconds: int = Field(default=48 * 3600, ge=60)
    max_connections: int = Field(default=64, ge=2, le=10_000)
    pool_timeout_seconds: float = Field(default=10.0, gt=0)


class OpenSearchSettings(BaseModel):
    """The search engine and archive (issue 16; docs/SEARCH.md). `index_prefix` isolates deployments (and
    tests) sharing one cluster, like `TopicNames.prefix` does for Kafka."""

    url: str = "http://127.0.0.1:9200"
    index_prefix: str = Field(default="", pattern=r"^[a-z0-9_.-]*$", max_length=64)
    # One HTTP request (a bulk of a few hundred articles, or a search); a timeout counts as "not up".
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # How long start-up waits for the cluster before it fails with a clear error.
    startup_timeout: float = Field(default=120.0, gt=0)
    # Of each monthly index (read when the index template is written): one node needs 0 replicas.
    shards: int = Field(default=1, ge=1, le=64)
    replicas: int = Field(default=0, ge=0, le=8)
    # How soon an indexed article is searchable; longer is cheaper under heavy bulk load.
    refresh_interval: str = Field(default="1s", pattern=r"^(-1|\d+(ms|s|m))$")


class ServiceSettings(BaseSettings):
    """Base of each service's settings."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["local", "test", "staging", "production"] = "local"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    opensearch: OpenSearchSettings = Field(default_factory=OpenSearchSettings)
    # API access (docs/security.md). Comma-separated token lists, several of each so a token can be rotated
    # without downtime: read tokens reach the REST reads and WebSocket tickets, write tokens also the writes
    # (push, fetch-now, watchlists). API_TOKEN is the older single token and counts as one write token
    # (deprecated). None set = the APIs are open, which the services log loudly at start-up.
    api_read_tokens: SecretStr | None = None
    api_write_tokens: SecretStr | None = None
    api_token: SecretStr | None = None
    # Write requests per second each client (token, or address without one) may make, with bursts of up to
    # `api_write_burst`; beyond it 429 with Retry-After. Counted per process (see docs/security.md); 0 = off.
    api_write_rate: float = Field(default=20.0, ge=0)
    api_write_burst: int = Field(default=100, ge=1)
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"])

    def read_tokens(self) -> tuple[SecretStr, ...]:
        """Every token that may read: the read tokens, and the write tokens (a writer may also read)."""
        return (*split_tokens(self.api_read_tokens), *self.write_tokens())

    def write_tokens(self) -> tuple[SecretStr, ...]:
        """Every token that may write: API_WRITE_TOKENS and the deprecated API_TOKEN."""
        legacy = (self.api_token,) if self.api_token is not None and self.api_token.get_secret_value().strip() else ()
        return (*split_tokens(self.api_write_tokens), *legacy)

    def client_token(self) -> SecretStr | None:
        """The token this service presents when it calls another service of the suite (the worker calling the
        inference service): the first read token (least privilege), else the first write token, else None."""
        tokens = (*split_tokens(self.api_read_tokens), *self.write_tokens())
        return tokens[0] if tokens else None

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment in {"staging", "production"}:
            names = secret_placeholders(self)
            # A token list is refused when any of its tokens is a placeholder (`real-one,change-me`).
            names += [
                env
                for env, value in (
                    ("API_READ_TOKENS", self.api_read_tokens),
                    ("API_WRITE_TOKENS", self.api_write_tokens),
                )
                if value is not None
                and env not in names
                and any(t.get_secret_value().lower() in PLACEHOLDERS for t in split_tokens(value))
            ]
            if names:
                raise ConfigError(
                    f"{', '.join(names)}: placeholder secret outside local/test; set a real value or leave it unset"
                )
        return self


def _secrets(value: object, env: str) -> Iterator[tuple[str, SecretStr]]:
    """(environment name, secret) of every `SecretStr` in `value`: fields, dict values and list items, any depth."""
    if isinstance(value, SecretStr):
        yield env, value
    elif isinstance(value, BaseModel):
        for name, item in value:
            yield from _secrets(item, f"{env}__{name}".upper() if env else name.upper())
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secrets(item, f"{env}__{key}".upper())
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _secrets(item, f"{env}[{i}]")


def split_tokens(value: SecretStr | None) -> list[SecretStr]:
    """The tokens of a comma-separated list (`API_READ_TOKENS=a,b`), stripped, empty ones dropped."""
    if value is None:
        return []
    return [SecretStr(t) for t in (part.strip() for part in value.get_secret_value().split(",")) if t]


def secret_placeholders(settings: BaseModel) -> list[str]:
    """Environment names of the secrets in `settings` (every section, any depth) set to a placeholder."""
    return [env for env, value in _secrets(settings, "") if value.get_secret_value().strip().lower() in PLACEHOLDERS]
