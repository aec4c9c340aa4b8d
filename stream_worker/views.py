"""The worker's HTTP views on faust's web server: metrics, health, readiness and the statistics it counted.

Paths and bodies are a contract (Prometheus scrapes `/metrics`, the Kubernetes probes call `/healthz`
and `/readyz`, tests read `/stats/...`); they are served on `worker.web_port` (6066 by default).
"""

from __future__ import annotations

import time

from faust.web import Request, Response, View

from common.errors import StoreError
from common.metrics import CONTENT_TYPE_LATEST, render
from common.stats import SENTIMENT_WINDOW_S, TREND_WINDOW_S, StatsStore
from stream_worker.app import app, context

__all__ = ["HealthView", "MetricsView", "ReadyView", "SentimentView", "TrendsView"]

# aiohttp refuses a charset inside content_type; the exposition format is ASCII.
_METRICS_TYPE = CONTENT_TYPE_LATEST.split("; charset=")[0]


@app.page("/metrics")
class MetricsView(View):
    async def get(self, _request: Request) -> Response:
        return self.bytes(render(context.ctx.registry), content_type=_METRICS_TYPE)


@app.page("/healthz")
class HealthView(View):
    async def get(self, _request: Request) -> Response:
        return self.json({"status": "ok"})


@app.page("/readyz")
class ReadyView(View):
    async def get(self, _request: Request) -> Response:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        ready = app.producer is not None and not app.rebalancing
        return self.json({"ready": ready, "assigned_partitions": assigned}, status=200 if ready else 503)


def _stats(view: View) -> StatsStore | Response:
    store = context.ctx.stats
    if store is None:
        return view.json({"detail": "statistics are off (WORKER__STATS_ENABLED=false)"}, status=404)
    return store


@app.page("/stats/sentiment/")
class SentimentView(View):
    """Sentiment windows of the last hour, per source, as counted into Redis (`stream_worker.stats`)."""

    async def get(self, _request: Request) -> Response:
        store = _stats(self)
        if isinstance(store, Response):
            return store
        now = time.time()
        try:
            buckets = await store.sentiment(now - 3_600, now + SENTIMENT_WINDOW_S, by_source=True)
        except StoreError as exc:
            return self.json({"detail": str(exc)}, status=503)
        rows = [
            {
                "source": b.source,
                "start": b.start.timestamp(),
                "end": b.end.timestamp(),
                "positive": b.positive,
                "neutral": b.neutral,
                "negative": b.negative,
                "count": b.count,
                "mean_score": b.mean_score,
            }
            for b in buckets
        ]
        return self.json({"window_seconds": SENTIMENT_WINDOW_S, "windows": rows})


@app.page("/stats/trends/")
class TrendsView(View):
    """The busiest terms of the 15-minute window ending in the current minute, as counted into Redis."""

    async def get(self, request: Request) -> Response:
        store = _stats(self)
        if isinstance(store, Response):
            return store
        try:
            limit = max(1, min(int(request.query.get("limit", "20")), 1_000))
        except ValueError:
            return self.json({"detail": "limit must be an integer"}, status=422)
        try:
            snapshot = await store.trends(limit=limit)
        except StoreError as exc:
            return self.json({"detail": str(exc)}, status=503)
        terms = [{"key": f"keyword:{t.term}", "count": t.count} for t in snapshot.keywords]
        terms += [{"key": f"entity:{t.type}:{t.term}", "count": t.count} for t in snapshot.entities]
        terms.sort(key=lambda row: -int(row["count"]))  # type: ignore[call-overload]
        return self.json(
            {
                "window_start": snapshot.window_start.timestamp(),
                "window_seconds": TREND_WINDOW_S,
                "terms": terms[:limit],
            }
        )
