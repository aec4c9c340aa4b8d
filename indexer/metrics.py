"""The indexer's Prometheus metrics, on its own registry (one process, one `/metrics`)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["IndexerMetrics"]

_BULK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class IndexerMetrics:
    documents: Counter
    dead_lettered: Counter
    bulk_duration: Histogram
    bulk_errors: Counter
    lag: Gauge
    opensearch_up: Gauge
    last_commit: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IndexerMetrics:
        return cls(
            documents=Counter(
                "news_indexer_documents",
                "Articles by outcome: indexed (created or replaced), stale (an equal or newer analysis is "
                "already indexed), failed (refused by OpenSearch, dead-lettered)",
                ["result"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "news_indexer_dead_lettered",
                "Records sent to the DLQ by reason (invalid: not an analysed article; refused: OpenSearch said no)",
                ["reason"],
                registry=registry,
            ),
            bulk_duration=Histogram(
                "news_indexer_bulk_duration_seconds",
                "One bulk request to OpenSearch, answered",
                buckets=_BULK_BUCKETS,
                registry=registry,
            ),
            bulk_errors=Counter(
                "news_indexer_bulk_errors",
                "Bulk requests (or items) that will be retried: OpenSearch unreachable, overloaded or failing",
                ["kind"],
                registry=registry,
            ),
            lag=Gauge(
                "news_indexer_lag",
                "Records of news.analyzed not yet indexed and committed, per partition",
                ["partition"],
                registry=registry,
            ),
            opensearch_up=Gauge(
                "news_indexer_opensearch_up", "1 when the last request to OpenSearch was answered", registry=registry
            ),
            last_commit=Gauge(
                "news_indexer_last_commit_timestamp_seconds",
                "When offsets were last committed after an acknowledged bulk",
                registry=registry,
            ),
        )
