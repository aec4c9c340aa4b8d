"""One exception tree for the whole suite; library errors are translated into it at the edges."""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "ConfigError",
    "InvalidMessage",
    "NewsSuiteError",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "ProviderUnavailable",
    "SourceDisabled",
    "SourceError",
    "SourceRateLimited",
    "StoreError",
]


class NewsSuiteError(Exception):
    """Base of every error this suite raises on purpose."""


class ConfigError(NewsSuiteError):
    """Configuration is missing or unsafe (for example a placeholder secret outside local)."""


class InvalidMessage(NewsSuiteError):
    """A Kafka record is not what its topic carries; `kind` is `empty`, `not_json` or `invalid`."""

    def __init__(self, message: str, *, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


class SourceError(NewsSuiteError):
    """A news source failed (HTTP error, malformed feed, refused key)."""

    def __init__(self, message: str, *, code: str = "error", retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class ProviderError(NewsSuiteError):
    """An inference provider failed to answer usefully."""


class ProviderUnavailable(ProviderError):
    """The provider is down, its circuit is open, or it answered 5xx."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the configured timeout."""


class ProviderRateLimited(ProviderError):
    """The provider answered 429; `retry_after` is its hint in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(NewsSuiteError):
    """Redis could not be read or written."""


class SourceDisabled(SourceError):
    """A source cannot work until its configuration changes (a refused key, a parameter the API rejects)."""


class SourceRateLimited(SourceError):
    """A source asked us to slow down; `retry_after` is its hint in seconds, if any."""

    def __init__(self, message: str, *, code: str = "rateLimited", retry_after: float | None = None) -> None:
        super().__init__(message, code=code, retryable=False)
        self.retry_after = retry_after


class BrokerError(NewsSuiteError):
    """Kafka refused a record or did not acknowledge it in time."""
