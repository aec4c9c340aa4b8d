"""Indexer settings (`INDEXER__*`; OpenSearch itself is `OPENSEARCH__*`, common to every service)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field

from common.settings import ServiceSettings

__all__ = ["IndexerConfig", "IndexerSettings", "get_settings"]


class IndexerConfig(BaseModel):
    port: int = 8003
    # Its own consumer group: the index advances on its own, and `make reindex` replays it from the start
    # under a fresh group without touching the live feed's offsets.
    group_id: str = "news-indexer"
    # Articles per bulk request: 500 real articles are 2 to 5 MB of JSON, far below OpenSearch's 100 MB limit.
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # Bulk requests in flight (docs/SEARCH.md): 2 keeps a 2-core node's two write threads busy; offsets are
    # still committed in order, each batch only after its own and every earlier bulk were acknowledged.
    in_flight: int = Field(default=2, ge=1, le=8)
    poll_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    # Longest pause between two tries of a bulk while OpenSearch is down (backoff starts at 0.2 s).
    retry_max_seconds: float = Field(default=5.0, gt=0, le=300)
    # How often the per-partition lag is measured against the brokers' end offsets.
    lag_interval: float = Field(default=10.0, gt=0)
    startup_timeout: float = Field(default=60.0, gt=0)
    # How long a story link waits for its article to be indexed before it is dead-lettered (indexer/stories.py).
    story_wait_seconds: float = Field(default=600.0, gt=0, le=86_400)


class IndexerSettings(ServiceSettings):
    indexer: IndexerConfig = Field(default_factory=IndexerConfig)


@lru_cache(maxsize=1)
def get_settings() -> IndexerSettings:
    return IndexerSettings()
