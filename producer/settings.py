"""Producer settings (environment prefix-free, nested with `__`; see README's configuration table)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field

from common.settings import ServiceSettings

__all__ = ["ProducerConfig", "ProducerSettings", "get_settings"]


class ProducerConfig(BaseModel):
    port: int = 8001
    max_push_items: int = Field(default=500, ge=1, le=10_000)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)


class ProducerSettings(ServiceSettings):
    producer: ProducerConfig = Field(default_factory=ProducerConfig)


@lru_cache(maxsize=1)
def get_settings() -> ProducerSettings:
    return ProducerSettings()
