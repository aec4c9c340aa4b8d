"""The engine: analyses batches of articles concurrently without blocking the event loop.

Per article, concurrently (`asyncio.gather`): language first, then embeddings with the learned
sentiment and category heads (micro-batched), named entities (micro-batched), keywords, and any
remote tasks. CPU work runs in a thread pool sized to the cores. Remote providers sit behind
`Resilient` (semaphore, timeout, retries, breaker); a remote failure keeps the local answer and
`Analysis.providers[task]` says who answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from common.errors import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from common.metrics import InferenceMetrics
from common.schemas import Analysis, Entity, RawArticle
from inference import local
from inference.batcher import MicroBatcher
from inference.fast import FAST_MODELS, analyze_fast
from inference.features import category_text, headline_text
from inference.importance import NoveltyTracker, importance_score
from inference.providers import HuggingFaceProvider, OpenAIProvider, RemoteAnswer, RemoteProvider
from inference.resilience import CircuitOpen, Resilient
from inference.settings import REMOTE_TASKS, EngineSettings, get_settings

__all__ = ["ENGINE_VERSION", "Engine", "get_engine"]

ENGINE_VERSION = "0.2.0"
# Entities and keywords read the headline and the start of the body: NER and YAKE cost grows with length,
# and a news story's actors and topic are in its first paragraphs.
_BODY_CHARS = 1_000
_LOCAL_TASKS = ("language", "sentiment", "category", "keywords", "entities", "importance")
log = logging.getLogger(__name__)


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
        self._pool = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="inference")
        self._novelty = NoveltyTracker(self.settings.novelty_window)
        self._loaded = False
        self._heads: MicroBatcher[tuple[str, str, str], local.HeadResult] | None = None
        self._ner: MicroBatcher[tuple[str, str], list[Entity]] | None = None
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
        return self._loaded or self.settings.tier == "fast"

    async def start(self) -> None:
        """Load the local models in the pool (seconds), so the first article pays nothing."""
        if self.settings.tier == "standard" and not self._loaded:
            await asyncio.get_running_loop().run_in_executor(self._pool, local.load_all)
            self._loaded = True

    def _batchers(self) -> None:
        # Created on the running loop that first uses them.
        observe = self.metrics.batch_size.observe
        s = self.settings
        self._heads = MicroBatcher(
            local.encode_and_classify, self._pool, max_batch=s.max_batch, max_wait_ms=s.max_wait_ms, on_batch=observe
        )
        self._ner = MicroBatcher(local.entities_batch, self._pool, max_batch=s.max_batch, max_wait_ms=s.max_wait_ms)

    def describe(self) -> dict[str, Any]:
        """Providers, models, versions and status, for `GET /v1/models`."""
        tasks = {t: self.settings.provider_for(t) for t in REMOTE_TASKS}
        return {
            "engine_version": ENGINE_VERSION,
            "tier": self.settings.tier,
            "ready": self.ready,
            "tasks": {"language": "local", "keywords": "local", "entities": "local", "importance": "local", **tasks},
            "cascade": {"enabled": self.settings.cascade, "threshold": self.settings.cascade_threshold},
            "local": {"models": local.LOCAL_MODELS if self.settings.tier == "standard" else FAST_MODELS},
            "remote": {
                name: {"model": r.provider.model, "circuit": r.resilient.breaker.state}
                for name, r in self._remote.items()
            },
        }

    # -- analysis --------------------------------------------------------------------------------

    async def analyze(self, article: RawArticle) -> Analysis:
        core = self.metrics
        start = time.perf_counter()
        core.active.inc()
        core.requests.labels(provider="local", task="analyze").inc()
        try:
            if self.settings.tier == "fast":
                analysis = await asyncio.get_running_loop().run_in_executor(self._pool, analyze_fast, article)
                confidence = 0.0  # the lexicon tier reports no calibrated confidence
            else:
                analysis, confidence = await self._standard(article)
            analysis = await self._with_remote(article, analysis, confidence)
        finally:
            core.active.dec()
        elapsed = time.perf_counter() - start
        core.success.labels(provider="local", task="analyze").inc()
        core.duration.labels(provider="local", task="analyze").observe(elapsed)
        return analysis.model_copy(update={"engine_version": ENGINE_VERSION, "latency_ms": round(elapsed * 1000, 3)})

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        return list(await asyncio.gather(*(self.analyze(a) for a in articles)))

    async def _standard(self, article: RawArticle) -> tuple[Analysis, float]:
        if not self._loaded:
            await self.start()
        if self._heads is None or self._ner is None:
            self._batchers()
        assert self._heads is not None and self._ner is not None  # noqa: S101 - for the type checker
        loop = asyncio.get_running_loop()
        head = headline_text(article.title, article.description)
        body = f"{head} {article.content or ''}"[:_BODY_CHARS]
        hint = article.language_hint
        detected = hint if hint else await loop.run_in_executor(self._pool, local.detect_language, head)
        language = detected.split("-")[0].lower()
        heads, entities, keywords = await asyncio.gather(
            self._heads.submit((language, head, category_text(article.title, article.description, article.content))),
            self._ner.submit((language, body)),
            loop.run_in_executor(self._pool, local.keywords, language, body),
        )
        novelty = self._novelty.observe(heads.embedding)
        importance = importance_score(
            entities=len(entities),
            headline=article.title,
            category=heads.category,
            sentiment_score=heads.sentiment_score,
            novelty=novelty,
            source=article.source,
        )
        analysis = Analysis(
            sentiment=heads.sentiment,
            sentiment_score=heads.sentiment_score,
            keywords=keywords,
            entities=entities,
            category=heads.category,
            language=language if 2 <= len(language) <= 16 else "und",
            importance_score=importance,
            providers=dict.fromkeys(_LOCAL_TASKS, "local"),
            models={
                "language": local.LOCAL_MODELS["language"],
                "sentiment": heads.sentiment_model,
                "category": heads.category_model,
                "keywords": "kiwi-nouns" if language == "ko" else "yake",
                "entities": "kiwi-nnp" if language == "ko" else local.SPACY_MODEL,
                "importance": "formula-v1",
            },
        )
        return analysis, min(heads.sentiment_confidence, heads.category_confidence)

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
        if answer.sentiment is not None and answer.sentiment_score is not None:
            update["sentiment"], update["sentiment_score"] = answer.sentiment, answer.sentiment_score
            update["providers"]["sentiment"], update["models"]["sentiment"] = name, model
        if answer.category is not None:
            update["category"] = answer.category
            update["providers"]["category"], update["models"]["category"] = name, model
        if answer.summary:
            update["summary"] = answer.summary
            update["providers"]["summary"], update["models"]["summary"] = name, model

    async def aclose(self) -> None:
        for remote in self._remote.values():
            await remote.provider.aclose()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return Engine()
