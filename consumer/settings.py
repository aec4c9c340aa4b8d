"""Consumer settings (see README's configuration table)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field

from common.settings import ServiceSettings

__all__ = ["ConsumerConfig", "ConsumerSettings", "get_settings"]


class ConsumerConfig(BaseModel):
    port: int = 8002
    group_id: str = "news-consumer"
    max_poll_records: int = Field(default=500, ge=1, le=10_000)
    initial_data_limit: int = Field(default=20, ge=0, le=200)
    ws_queue_size: int = Field(default=256, ge=1, le=100_000)
    ws_ping_interval: float = Field(default=20.0, gt=0)
    # Events kept for WebSocket resume (a Redis stream), and the most a resuming client is replayed.
    stream_maxlen: int = Field(default=10_000, ge=10, le=1_000_000)
    resume_max: int = Field(default=1_000, ge=1, le=100_000)
    # Member article ids kept per story (the most recently joined; `GET /stories/{id}` lists at most these).
    story_max_members: int = Field(default=500, ge=1, le=100_000)
    # How often expired articles are swept out of the indexes (reads never return them regardless).
    sweep_interval: float = Field(default=30.0, gt=0)
    # How long start-up waits for Kafka before it fails with a clear error (Redis is not waited for: the
    # service starts and reports not-ready until Redis answers).
    startup_timeout: float = Field(default=60.0, gt=0)


class ConsumerSettings(ServiceSettings):
    consumer: ConsumerConfig = Field(default_factory=ConsumerConfig)


@lru_cache(maxsize=1)
def get_settings() -> ConsumerSettings:
    return ConsumerSettings()
