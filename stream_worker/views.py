"""The worker's HTTP views on faust's web server: metrics, health, readiness and its tables' windows.

Paths and bodies are a contract (Prometheus scrapes `/metrics`, the Kubernetes probes call `/healthz`
and `/readyz`, tests read `/stats/...`); they are served on `worker.web_port` (6066 by default).
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from common.metrics import CONTENT_TYPE_LATEST, render
from common.stats import SENTIMENT_WINDOW_S, TREND_WINDOW_S, SentimentCounts
from stream_worker.app import app, context
from stream_worker.tables import sentiment_table, terms_table

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


def _local_windows(table: Any) -> list[tuple[str, float, float, Any]]:
    out = []
    for (key, (start, end)), value in list(table.table.data.items()):
        out.append((key, float(start), float(end), value))
    return sorted(out, key=lambda row: (row[1], row[0]))


@app.page("/stats/sentiment/")
class SentimentView(View):
    """Sentiment windows held by this worker (its partitions of the table)."""

    async def get(self, _request: Request) -> Response:
        rows = []
        for source, start, end, value in _local_windows(sentiment_table):
            counts = SentimentCounts.model_validate(value)
            mean = counts.score_sum / counts.count if counts.count else None
            rows.append(
                {
                    "source": source,
                    "start": start,
                    "end": end,
                    **counts.model_dump(),
                    "count": counts.count,
                    "mean_score": mean,
                }
            )
        return self.json({"window_seconds": SENTIMENT_WINDOW_S, "windows": rows})


@app.page("/stats/trends/")
class TrendsView(View):
    """The busiest terms of the latest hopping window held by this worker."""

    async def get(self, request: Request) -> Response:
        limit = int(request.query.get("limit", "20"))
        rows = _local_windows(terms_table)
        latest = max((start for _, start, _, _ in rows), default=None)
        current = sorted(((v, k) for k, s, _, v in rows if s == latest), reverse=True)[:limit]
        return self.json(
            {
                "window_start": latest,
                "window_seconds": TREND_WINDOW_S,
                "terms": [{"key": k, "count": v} for v, k in current],
            }
        )
