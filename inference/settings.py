"""Settings of the inference engine and service: `INFERENCE__TIER=fast`, `INFERENCE__PROVIDERS__SUMMARY=openai`...

A provider's credential is None until set (the provider is not configured); selecting a provider without its
credential is refused here, in every environment, rather than failing on the first request. A credential that is
set to a placeholder is refused outside local/test by `common.settings` like every other secret.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from common.errors import ConfigError
from common.settings import ServiceSettings

__all__ = [
    "REMOTE_TASKS",
    "EngineSettings",
    "HuggingFaceSettings",
    "InferenceSettings",
    "OpenAISettings",
    "ResilienceSettings",
    "get_settings",
]

ProviderName = Literal["local", "openai", "huggingface"]
# Tasks a remote provider may answer; language, keywords, entities and importance stay local.
REMOTE_TASKS: tuple[str, ...] = ("sentiment", "category", "summary")


class OpenAISettings(BaseModel):
    """Any OpenAI-compatible server: api.openai.com, vLLM, Ollama, llama.cpp (set `base_url`)."""

    base_url: str = "https://api.openai.com/v1"
    # INFERENCE__OPENAI__API_KEY; a server that takes no key (Ollama, a local vLLM) accepts any value.
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    timeout_s: float = Field(default=20.0, gt=0)
    max_tokens: int = Field(default=300, ge=16)
    temperature: float = Field(default=0.0, ge=0, le=2)

    def api_key_value(self) -> str:
        """The key to send; `EngineSettings` refuses to select this provider without one."""
        if self.api_key is None:
            raise ConfigError("INFERENCE__OPENAI__API_KEY is not set")
        return self.api_key.get_secret_value()


class HuggingFaceSettings(BaseModel):
    """Hugging Face Inference Providers through the router (https://router.huggingface.co): the classification
    tasks at `/{task_provider}/models/{model}`, the summary from its OpenAI-compatible `/v1/chat/completions`."""

    base_url: str = "https://router.huggingface.co"
    token: SecretStr | None = None  # INFERENCE__HUGGINGFACE__TOKEN (a fine-grained token allowed to call providers)
    # The inference provider that serves the classification pipelines (text classification, zero-shot).
    task_provider: str = Field(default="hf-inference", pattern=r"^[a-z0-9][a-z0-9-]*$")
    sentiment_model: str = "cardiffnlp/twitter-roberta-base-sentiment-latest"
    category_model: str = "facebook/bart-large-mnli"
    # A chat model; `model:provider` (or `:fastest`, `:cheapest`) picks the provider, else the router does.
    summary_model: str = "Qwen/Qwen2.5-7B-Instruct"
    summary_max_tokens: int = Field(default=120, ge=16)
    timeout_s: float = Field(default=20.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _not_the_retired_endpoint(cls, value: str) -> str:
        # The serverless Inference API answers 410 and points to the router: refuse it at start, not per request.
        if "api-inference.huggingface.co" in value:
            raise ValueError(
                "api-inference.huggingface.co is retired (it answers 410 Gone): use https://router.huggingface.co"
            )
        return value.rstrip("/")

    def token_value(self) -> str:
        """The token to send; `EngineSettings` refuses to select this provider without one."""
        if self.token is None:
            raise ConfigError("INFERENCE__HUGGINGFACE__TOKEN is not set")
        return self.token.get_secret_value()


class ResilienceSettings(BaseModel):
    """Per remote provider: concurrency, retries with jittered backoff, circuit breaker."""

    concurrency: int = Field(default=20, ge=1)
    attempts: int = Field(default=3, ge=1, le=10)
    backoff_initial_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=5.0, ge=0)
    retry_after_max_s: float = Field(default=30.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)


def _cores() -> int:
    from inference.pool import available_cores

    return available_cores()


class EngineSettings(BaseModel):
    tier: Literal["fast", "standard"] = "standard"
    # Where the encoder runs: onnxruntime's CUDA execution provider needs onnxruntime-gpu (see docs/engine.md).
    device: Literal["cpu", "cuda"] = "cpu"
    # Engine processes (each loads the models once, ~250 MB): the cores this container may use by default.
    processes: int = Field(default_factory=_cores, ge=1, le=64)
    # ONNX / OpenMP threads in each process; 0 = the cores left to each process (cores // processes, at least 1).
    threads: int = Field(default=0, ge=0, le=64)
    # Languages whose models load at start (the English models always do); others load on their first article.
    # ["en", "ko"] for a Korean feed: about 300 MB more per engine process, and no pause on the first article.
    preload_languages: list[str] = Field(default_factory=lambda: ["en"], max_length=8)
    max_batch: int = Field(default=32, ge=1, le=512)
    max_wait_ms: float = Field(default=5.0, ge=0, le=1_000)
    providers: dict[str, ProviderName] = Field(default_factory=dict)
    # Cascade: remote tasks go to the LLM only when the local answer's confidence is below this.
    cascade: bool = False
    cascade_threshold: float = Field(default=0.6, ge=0, le=1)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    huggingface: HuggingFaceSettings = Field(default_factory=HuggingFaceSettings)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)

    @model_validator(mode="after")
    def _selected_providers_have_credentials(self) -> EngineSettings:
        credentials = {"openai": self.openai.api_key, "huggingface": self.huggingface.token}
        variables = {"openai": "INFERENCE__OPENAI__API_KEY", "huggingface": "INFERENCE__HUGGINGFACE__TOKEN"}
        for name in sorted(set(self.providers.values()) - {"local"}):
            if credentials[name] is None:
                tasks = ", ".join(sorted(t for t, p in self.providers.items() if p == name))
                raise ConfigError(f"INFERENCE__PROVIDERS selects {name} for {tasks} but {variables[name]} is not set")
        return self

    def provider_for(self, task: str) -> ProviderName:
        return self.providers.get(task, "local")

    @property
    def threads_per_process(self) -> int:
        return self.threads or max(1, _cores() // self.processes)


class InferenceSettings(ServiceSettings):
    inference: EngineSettings = Field(default_factory=EngineSettings)
    max_batch_request: int = Field(default=64, ge=1, le=1_000)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)


@lru_cache(maxsize=1)
def get_settings() -> InferenceSettings:
    return InferenceSettings()
