"""Remote providers: each answers some of `REMOTE_TASKS` for one article and raises `ProviderError` on failure."""

from inference.providers.base import RemoteAnswer, RemoteProvider
from inference.providers.huggingface import HuggingFaceProvider
from inference.providers.openai_provider import OpenAIProvider

__all__ = ["HuggingFaceProvider", "OpenAIProvider", "RemoteAnswer", "RemoteProvider"]
