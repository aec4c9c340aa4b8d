"""Consumer settings (see docs/reference/configuration.md, made by make docs)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from common.settings import ServiceSettings

__all__ = ["AlertConfig", "ConsumerConfig", "ConsumerSettings", "get_settings"]


class AlertConfig(BaseModel):
    """Watchlists, the burst detector and webhooks (docs/api.md "Timelines, watchlists and alerts"; `common.alerts`)."""

    # Burst test: the current window against the mean of the previous `spike_baseline_windows`, floored.
    spike_bucket: Literal["15m", "1h"] = "15m"
    spike_baseline_windows: int = Field(default=24, ge=1, le=672)
    spike_floor: float = Field(default=1.0, gt=0)
    spike_alpha: float = Field(default=0.001, gt=0, lt=1)
    spike_min_count: int = Field(default=5, ge=1)
    # Only windows this recent (the current one and the ones before) alert; older ones are counted only.
    spike_recent_windows: int = Field(default=2, ge=1, le=96)
    max_watchlists: int = Field(default=1_000, ge=1, le=100_000)
    max_alerts: int = Field(default=1_000, ge=10, le=1_000_000)
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff: float = Field(default=0.5, gt=0)
    webhook_backoff_max: float = Field(default=10.0, gt=0)
    webhook_timeout: float = Field(default=5.0, gt=0)
    webhook_queue: int = Field(default=10_000, ge=1)
    webhook_concurrency: int = Field(default=8, ge=1, le=256)


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
    alerts: AlertConfig = Field(default_factory=AlertConfig)


class ConsumerSettings(ServiceSettings):
    consumer: ConsumerConfig = Field(default_factory=ConsumerConfig)


@lru_cache(maxsize=1)
def get_settings() -> ConsumerSettings:
    return ConsumerSettings()
