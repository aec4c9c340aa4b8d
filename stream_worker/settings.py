"""Stream worker settings (docs/reference/configuration.md; docs/architecture.md "Stream worker")."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from common.settings import ServiceSettings

__all__ = ["WorkerConfig", "WorkerSettings", "get_settings"]


class WorkerConfig(BaseModel):
    app_id: str = "news-stream-worker"  # also the Kafka consumer group
    # 32: the engine's own batch (docs/BENCHMARKS.md measures it there); the timeout below bounds the wait at low
    # rates, and a bigger batch halves the stream layer's per-article cost (Kafka round trips per batch).
    batch_size: int = Field(default=32, ge=1, le=1_000)
    # 0.2 s: at half load a 1 s wait was most of the produce-to-stored p95 (2.9 s -> 0.54 s, BENCHMARKS.md)
    batch_timeout: float = Field(default=0.2, gt=0, le=60)
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    datadir: str = ".run/stream-worker"
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # Empty: analyse in-process with `inference.engine`; else the inference service's base URL.
    inference_url: str | None = None
    inference_timeout: float = Field(default=30.0, gt=0)
    # Benchmarks only (bench/stream_layer.py): a fixed analysis instead of the engine, so that what is measured
    # is the stream layer alone (Kafka in and out, decoding, validation, producing). Never for real use.
    noop_analysis: bool = False
    # An article whose analysis fails (not an outage) is tried this many times, then dead-lettered.
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_backoff: float = Field(default=0.5, ge=0)
    # While the engine is unavailable the batch waits (backpressure), backing off up to this long.
    outage_backoff_max: float = Field(default=30.0, gt=0)
    # How long the group waits for a silent member (one killed with SIGKILL) before it takes its partitions.
    session_timeout: float = Field(default=30.0, ge=6, le=300)
    stats_enabled: bool = True
    # The story stage (issue 15): analysed articles with an embedding are fed to `news.stories.in` and
    # assigned to stories by the worker that holds their language's partition (stream_worker.story_stage).
    stories_enabled: bool = True
    story_batch_size: int = Field(default=50, ge=1, le=5_000)
    story_max_signatures: int = Field(default=10_000, ge=1)  # near-duplicate working set, per language
    story_checkpoint_records: int = Field(default=2_000, ge=1)  # also the longest replay after a restart
    story_checkpoint_seconds: float = Field(default=30.0, gt=0)
    lag_interval: float = Field(default=5.0, gt=0)


class WorkerSettings(ServiceSettings):
    worker: WorkerConfig = Field(default_factory=WorkerConfig)


@lru_cache(maxsize=1)
def get_settings() -> WorkerSettings:
    return WorkerSettings()
