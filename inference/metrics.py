"""Engine metrics beyond `common.metrics.InferenceMetrics`: cascade escalations and LLM tokens."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from common.metrics import InferenceMetrics

__all__ = ["EngineMetrics"]


@dataclass(frozen=True)
class EngineMetrics:
    core: InferenceMetrics
    escalations: Counter
    tokens: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> EngineMetrics:
        return cls(
            core=InferenceMetrics.create(registry),
            escalations=Counter(
                "inference_escalations",
                "Articles sent to a remote provider by the cascade",
                ["provider"],
                registry=registry,
            ),
            tokens=Counter("inference_llm_tokens", "LLM tokens spent", ["provider", "kind"], registry=registry),
        )
