"""Every Prometheus metric of the suite, declared once in typed containers built from a registry.

Services create their container at start-up from a registry (the default one in production,
a fresh one in tests) and only call `.inc()` / `.observe()` / `.set()`. Labels stay bounded:
provider, model, task, source, stage, reason; never an article id.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "CONTENT_TYPE_LATEST",
    "ConsumerMetrics",
    "InferenceMetrics",
    "ProducerMetrics",
    "StoryMetrics",
    "WorkerMetrics",
    "render",
]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


@dataclass(frozen=True)
class ProducerMetrics:
    fetched: Counter
    sent: Counter
    duplicates: Counter
    invalid: Counter
    fetch_errors: Counter
    fetch_duration: Histogram
    fulltext_fetched: Counter
    fulltext_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ProducerMetrics:
        return cls(
            fetched=Counter("news_fetched", "Articles fetched from a source", ["source"], registry=registry),
            sent=Counter("news_sent", "Articles produced to Kafka and acknowledged", registry=registry),
            duplicates=Counter("news_duplicates", "Articles skipped as already produced", registry=registry),
            invalid=Counter("news_invalid", "Items rejected by validation (sent to the DLQ)", registry=registry),
            fetch_errors=Counter(
                "news_fetch_errors", "Failed fetches by source and code", ["source", "code"], registry=registry
            ),
            fetch_duration=Histogram(
                "news_fetch_duration_seconds",
                "Time to fetch one source",
                ["source"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            fulltext_fetched=Counter(
                "news_fulltext_fetched",
                "Articles whose full text was fetched and extracted",
                ["source"],
                registry=registry,
            ),
            fulltext_failures=Counter(
                "news_fulltext_failures",
                "Full-text fetches that failed (the article was published with what its source gave)",
                ["source", "reason"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class InferenceMetrics:
    requests: Counter
    success: Counter
    failures: Counter
    duration: Histogram
    active: Gauge
    batch_size: Histogram
    circuit_open: Gauge
    escalations: Counter
    tokens: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> InferenceMetrics:
        return cls(
            requests=Counter("inference_requests", "Analysis calls", ["provider", "task"], registry=registry),
            success=Counter("inference_success", "Successful analysis calls", ["provider", "task"], registry=registry),
            failures=Counter("inference_failures", "Failed analysis calls", ["provider", "reason"], registry=registry),
            duration=Histogram(
                "inference_duration_seconds",
                "Time of one analysis call",
                ["provider", "task"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            active=Gauge("active_inference_tasks", "Analysis calls in flight", registry=registry),
            batch_size=Histogram(
                "inference_batch_size",
                "Articles per engine batch",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128),
                registry=registry,
            ),
            circuit_open=Gauge(
                "inference_circuit_open", "1 while a provider's circuit is open", ["provider"], registry=registry
            ),
            escalations=Counter(
                "inference_escalations",
                "Articles sent to a remote provider by the cascade",
                ["provider"],
                registry=registry,
            ),
            tokens=Counter("inference_llm_tokens", "LLM tokens spent", ["provider", "kind"], registry=registry),
        )


@dataclass(frozen=True)
class WorkerMetrics:
    processed: Counter
    failed: Counter
    dead_lettered: Counter
    batch_size: Histogram
    batch_latency: Histogram
    consumer_lag: Gauge
    agent_restarts: Counter
    backpressure: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WorkerMetrics:
        return cls(
            processed=Counter("worker_processed", "Articles analysed and produced", registry=registry),
            failed=Counter("worker_failed", "Articles whose analysis failed", ["reason"], registry=registry),
            dead_lettered=Counter("worker_dead_lettered", "Messages sent to the DLQ", ["reason"], registry=registry),
            batch_size=Histogram(
                "worker_batch_size", "Messages per batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=registry
            ),
            batch_latency=Histogram(
                "worker_batch_duration_seconds",
                "Time to analyse and produce one batch",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            consumer_lag=Gauge(
                "worker_consumer_lag",
                "High-water mark minus committed offset",
                ["topic", "partition"],
                registry=registry,
            ),
            agent_restarts=Counter(
                "worker_agent_restarts", "Agent crashes (faust restarts the agent)", ["agent"], registry=registry
            ),
            backpressure=Gauge(
                "worker_backpressure",
                "1 while the inference engine is unavailable and consumption is paused",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class ConsumerMetrics:
    consumed: Counter
    analyzed: Counter
    stored: Counter
    dead_lettered: Counter
    analysis_duration: Histogram
    ws_connections: Gauge
    ws_sent: Counter
    ws_dropped: Counter
    alerts: Counter
    webhooks: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ConsumerMetrics:
        return cls(
            consumed=Counter("news_consumed", "Messages read from news.analyzed", registry=registry),
            analyzed=Counter("news_analyzed", "Valid analysed articles received", registry=registry),
            stored=Counter("news_stored", "Articles written to Redis", ["result"], registry=registry),
            dead_lettered=Counter("consumer_dead_lettered", "Messages sent to the DLQ", registry=registry),
            analysis_duration=Histogram(
                "news_analysis_duration_seconds",
                "Engine latency reported with each article",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            ws_connections=Gauge("active_websocket_connections", "Open WebSocket clients", registry=registry),
            ws_sent=Counter("ws_messages_sent", "WebSocket messages sent", registry=registry),
            ws_dropped=Counter("ws_messages_dropped", "Messages dropped for slow clients", registry=registry),
            alerts=Counter("alerts_raised", "Alerts raised (each once, across replicas)", ["kind"], registry=registry),
            webhooks=Counter(
                "alert_webhook_deliveries",
                "Alert webhook deliveries: ok, retried (one failed attempt), failed (dead-lettered)",
                ["result"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class StoryMetrics:
    """The stream worker's story stage (stream_worker/story_stage.py), on the worker's registry."""

    created: Counter
    updated: Counter
    duplicates: Counter
    closed: Counter
    skipped: Counter
    dead_lettered: Counter
    latency: Histogram
    working_set: Gauge
    signatures: Gauge
    checkpoints: Counter
    replayed: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> StoryMetrics:
        return cls(
            created=Counter("news_story_created", "Stories started", ["language"], registry=registry),
            updated=Counter(
                "news_story_updated", "Articles that joined an existing story", ["language"], registry=registry
            ),
            duplicates=Counter(
                "news_story_duplicates",
                "Near-duplicate articles linked to an original",
                ["language"],
                registry=registry,
            ),
            closed=Counter(
                "news_story_closed", "Stories closed (idle past the window or evicted)", ["reason"], registry=registry
            ),
            skipped=Counter(
                "news_story_skipped", "Articles the story stage could not compare", ["reason"], registry=registry
            ),
            dead_lettered=Counter(
                "news_story_dead_lettered", "Story-stage records sent to the DLQ", ["reason"], registry=registry
            ),
            latency=Histogram(
                "news_story_stage_duration_seconds",
                "Time to assign and produce one story-stage batch",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
                registry=registry,
            ),
            working_set=Gauge("news_story_working_set", "Open stories held in memory", ["language"], registry=registry),
            signatures=Gauge(
                "news_story_signatures", "Articles held for near-duplicate checks", ["language"], registry=registry
            ),
            checkpoints=Counter("news_story_checkpoints", "Story-state checkpoints", ["result"], registry=registry),
            replayed=Counter(
                "news_story_replayed", "Committed records re-read to rebuild state after a restart", registry=registry
            ),
        )
