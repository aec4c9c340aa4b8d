"""The engine: the core (`inference.core`) on every core of the machine, and the remote providers around it.

Local analysis runs in `inference.pool.CorePool`: the batch is split across processes, one hop per batch. Single
articles (the service's `/v1/analyze`, concurrent callers) are gathered into batches by a `MicroBatcher` first.
Remote tasks (sentiment, category, summary from an OpenAI-compatible LLM or the Hugging Face Inference API) run
concurrently per article (`asyncio.gather`), each behind `Resilient` (semaphore, timeout, retries, breaker); a
remote failure keeps the local answer and `Analysis.providers[task]` says who answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from common.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from common.metrics import InferenceMetrics
from common.schemas import Analysis, RawArticle
from inference.batcher import MicroBatcher
from inference.core import ENGINE_VERSION, FAST_MODELS, LOCAL_MODELS, CoreResult, CoreSettings, item_of
from inference.pool import CorePool
from inference.providers import HuggingFaceProvider, OpenAIProvider, RemoteAnswer, RemoteProvider
from inference.resilience import CircuitOpen, Resilient
from inference.settings import REMOTE_TASKS, EngineSettings, get_settings

__all__ = ["ENGINE_VERSION", "Engine", "core_settings", "get_engine"]

log = logging.getLogger(__name__)


def core_settings(settings: EngineSettings) -> CoreSettings:
    """The core's settings from the engine's: the tier, the device, threads per process."""
    # A summary from an LLM replaces the local one: skip the extractive pass then.
    local_summary = settings.provider_for("summary") == "local"
    return CoreSettings(
        tier=settings.tier,
        device=settings.device,
        threads=settings.threads_per_process,
        summaries=local_summary,
        preload=tuple(settings.preload_languages),
    )


@dataclass
class _Remote:
    provider: RemoteProvider
    resilient: Resilient


def _setter(gauge: Gauge) -> Callable[[bool], None]:
    return lambda is_open: gauge.set(1 if is_open else 0)


def _reason(exc: ProviderError) -> str:
    if isinstance(exc, ProviderRateLimited):
        return "rate_limited"
    if isinstance(exc, ProviderTimeout):
        return "timeout"
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    return "bad_answer"


class Engine:
    """`analyze_batch` answers every article exactly once, in input order."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        registry: CollectorRegistry | None = None,
        providers: dict[str, RemoteProvider] | None = None,
    ) -> None:
        self.settings = settings or get_settings().inference
        self.metrics = InferenceMetrics.create(registry if registry is not None else REGISTRY)
        self.pool = CorePool(core_settings(self.settings), self.settings.processes)
        self._loaded = False
        self._batcher: MicroBatcher[RawArticle, CoreResult] | None = None
        wanted = {self.settings.provider_for(t) for t in REMOTE_TASKS} - {"local"}
        self._remote: dict[str, _Remote] = {}
        for name in sorted(wanted):
            provider = (providers or {}).get(name) or self._make_provider(name)
            gauge = self.metrics.circuit_open.labels(provider=name)
            gauge.set(0)
            self._remote[name] = _Remote(
                provider, Resilient(name, self.settings.resilience, provider.timeout_s, on_state=_setter(gauge))
            )

    def _make_provider(self, name: str) -> RemoteProvider:
        if name == "openai":
            return OpenAIProvider(self.settings.openai)
        if name == "huggingface":
            return HuggingFaceProvider(self.settings.huggingface)
        raise ValueError(f"unknown provider {name!r}")

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._loaded

    async def start(self) -> None:
        """Start the engine's processes and load the models in each (seconds), so the first article pays nothing."""
        if not self._loaded:
            await self.pool.start()
            self._loaded = True

    def describe(self) -> dict[str, Any]:
        """Providers, models, versions and status, for `GET /v1/models`."""
        tasks = {t: self.settings.provider_for(t) for t in REMOTE_TASKS}
        return {
            "engine_version": ENGINE_VERSION,
            "tier": self.settings.tier,
            "ready": self.ready,
            "tasks": {"language": "local", "keywords": "local", "entities": "local", "importance": "local", **tasks},
            "cascade": {"enabled": self.settings.cascade, "threshold": self.settings.cascade_threshold},
            "local": {"models": LOCAL_MODELS if self.settings.tier == "standard" else FAST_MODELS},
            "processes": self.pool.processes,
            "threads_per_process": self.settings.threads_per_process,
            "device": self.settings.device,
            "remote": {
                name: {"model": r.provider.model, "circuit": r.resilient.breaker.state}
                for name, r in self._remote.items()
            },
        }

    # -- analysis --------------------------------------------------------------------------------

    async def analyze(self, article: RawArticle) -> Analysis:
        """One article; concurrent calls are analysed together in micro-batches."""
        if self._batcher is None:  # created on the running loop that first uses it
            s = self.settings
            self._batcher = MicroBatcher(
                self._local, max_batch=s.max_batch, max_wait_ms=s.max_wait_ms, on_batch=self.metrics.batch_size.observe
            )
        started = time.perf_counter()
        result = await self._batcher.submit(article)
        return await self._finish(article, result, started)

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        """Every article exactly once, in input order: one pass of the core over the batch, then remote tasks."""
        if not articles:
            return []
        started = time.perf_counter()
        self.metrics.batch_size.observe(len(articles))
        results = await self._local(articles)
        return list(
            await asyncio.gather(*(self._finish(a, r, started) for a, r in zip(articles, results, strict=True)))
        )

    async def _local(self, articles: Sequence[RawArticle]) -> list[CoreResult]:
        core = self.metrics
        if not self._loaded:
            await self.start()
        core.requests.labels(provider="local", task="analyze").inc(len(articles))
        core.active.inc(len(articles))
        started = time.perf_counter()
        try:
            results = await self.pool.analyze([item_of(a) for a in articles])
        finally:
            core.active.dec(len(articles))
        elapsed = time.perf_counter() - started
        core.success.labels(provider="local", task="analyze").inc(len(articles))
        for _ in articles:
            core.duration.labels(provider="local", task="analyze").observe(elapsed)
        return results

    async def _finish(self, article: RawArticle, result: CoreResult, started: float) -> Analysis:
        analysis = await self._with_remote(article, result.analysis, result.confidence)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        return analysis.model_copy(update={"engine_version": ENGINE_VERSION, "latency_ms": elapsed_ms})

    async def _with_remote(self, article: RawArticle, analysis: Analysis, confidence: float) -> Analysis:
        by_provider: dict[str, list[str]] = {}
        name: str
        for task in REMOTE_TASKS:
            name = self.settings.provider_for(task)
            if name != "local":
                by_provider.setdefault(name, []).append(task)
        if not by_provider:
            return analysis
        update: dict[str, Any] = {"providers": dict(analysis.providers), "models": dict(analysis.models)}
        for name, tasks in by_provider.items():
            remote = self._remote[name]
            # Cascade: escalate only what the local heads are unsure of (a summary always needs the LLM).
            if self.settings.cascade and "summary" not in tasks and confidence >= self.settings.cascade_threshold:
                continue
            if self.settings.cascade:
                self.metrics.escalations.labels(provider=name).inc()
            answer = await self._call(name, remote, article, tasks)
            if answer is None:
                for task in tasks:  # the local answer stands; say which provider failed
                    update["providers"][f"{task}_fallback_from"] = name
                continue
            self._merge(answer, name, remote.provider.model, update)
        return analysis.model_copy(update=update)

    async def _call(self, name: str, remote: _Remote, article: RawArticle, tasks: list[str]) -> RemoteAnswer | None:
        core = self.metrics
        core.requests.labels(provider=name, task="remote").inc()
        start = time.perf_counter()
        try:
            answer = await remote.resilient.call(lambda: remote.provider.analyze(article, tasks))
        except ProviderError as exc:
            core.failures.labels(provider=name, reason=_reason(exc)).inc()
            log.warning("provider %s failed, local answer kept: %s", name, exc)
            return None
        core.success.labels(provider=name, task="remote").inc()
        core.duration.labels(provider=name, task="remote").observe(time.perf_counter() - start)
        for kind, count in answer.tokens.items():
            self.metrics.tokens.labels(provider=name, kind=kind).inc(count)
        return answer

    @staticmethod
    def _merge(answer: RemoteAnswer, name: str, model: str, update: dict[str, Any]) -> None:
        # each task credited to the model that answered it (a provider may use one model per task)
        if answer.sentiment is not None and answer.sentiment_score is not None:
            update["sentiment"], update["sentiment_score"] = answer.sentiment, answer.sentiment_score
            update["providers"]["sentiment"] = name
            update["models"]["sentiment"] = answer.models.get("sentiment", model)
        if answer.category is not None:
            update["category"] = answer.category
            update["providers"]["category"], update["models"]["category"] = name, answer.models.get("category", model)
        if answer.summary:
            update["summary"] = answer.summary
            update["providers"]["summary"], update["models"]["summary"] = name, answer.models.get("summary", model)

    async def aclose(self) -> None:
        for remote in self._remote.values():
            await remote.provider.aclose()
        self.pool.close()

    def close(self) -> None:
        self.pool.close()


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return Engine()
