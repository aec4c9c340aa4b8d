"""Watchlists and alerts (issue 15 item 5), declared once: the wire shapes (`Watchlist`, its `WatchRule`s,
`Alert`), the burst detector, alert ids and webhook signatures. `consumer.alerts` stores and serves them; the
dashboard's types are generated from these models.

Burst detector (`burst`): is the count `c` of the current window a surge against the subject's own past?
The baseline is the mean of the previous `baseline_windows` windows of the same size, raised to `floor`
(so a subject never seen before has a baseline of `floor`, and its first mentions are not a surge). Under
"nothing changed" the window's count is Poisson with that mean, and the test's p-value is

    p = P(X >= c | lambda = max(mean(previous), floor))

A burst is flagged when `c >= min_count` and `p < alpha`. Deterministic (a pure function of the counts).
Defaults (`consumer.settings.AlertConfig`): 15-minute windows, 24 previous windows (6 hours), floor 1.0,
alpha 0.001, min_count 5: one mention, or 5 in a window after a silent 6 hours (p = 0.0037), are not a
surge; 6 after silence are (p = 0.0006); 10 against a steady 4 per window are not (p = 0.008); 25 are.

Alert ids are deterministic (`alert_id`): a hash of the watchlist, the rule, the subject and the window
(for article rules, the article; for story size, the story), so two replicas or a re-delivered batch
that find the same match write the same id, and the store keeps only the first (`SET NX`).

Webhook bodies are the alert's JSON; `X-Signature: sha256=<hex HMAC-SHA256 of the body>` with the
watchlist's secret (returned once, when the watchlist is created): `verify(body, secret, header)`.
Delivery is at least once, never exactly once (a receiver can take a POST and the answer be lost, or the
sending replica die before it records the answer): `X-News-Delivery` (`DELIVERY_HEADER`) is the same on
every retry of one delivery (the alert's id; a watchlist has one webhook, so an alert has one delivery),
and a receiver drops a delivery id it has already processed. `X-News-Attempt` counts the attempts (1, 2, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "ALERT_KINDS",
    "ATTEMPT_HEADER",
    "DELIVERY_HEADER",
    "Alert",
    "AlertKind",
    "Burst",
    "CategoryRule",
    "EntityRule",
    "EntitySpikeRule",
    "KeywordRule",
    "KeywordSpikeRule",
    "SentimentBelowRule",
    "SourceRule",
    "StorySizeRule",
    "WatchRule",
    "Watchlist",
    "WatchlistCreated",
    "WatchlistIn",
    "alert_id",
    "burst",
    "poisson_sf",
    "sign",
    "verify",
]

AlertKind = Literal["article", "story_size", "spike"]
DELIVERY_HEADER = "X-News-Delivery"
ATTEMPT_HEADER = "X-News-Attempt"
ALERT_KINDS: tuple[AlertKind, ...] = ("article", "story_size", "spike")

# Rule text: no control characters, something besides whitespace (the same rule as the story filters).
_Text = Annotated[
    str,
    Field(
        min_length=1,
        max_length=240,
        pattern=r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f\ufeff][^\x00-\x1f\x7f-\x9f]*$",
    ),
]


def _whole(value: object) -> object:
    # JSON Schema's integer includes 12.0; strict mode would refuse it (and must still refuse `true`, "12").
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Rule(BaseModel):
    # Strict: `false` is not a threshold of 0 (the document says number), and `kind` is required.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class EntityRule(_Rule):
    """An article names this canonical entity (`Entity.key`, e.g. `person:donald_trump`)."""

    kind: Literal["entity"]
    entity: _Text


class KeywordRule(_Rule):
    """An article has this keyword (case-insensitive)."""

    kind: Literal["keyword"]
    keyword: _Text


class SourceRule(_Rule):
    """An article comes from this source (case-insensitive)."""

    kind: Literal["source"]
    source: _Text


class CategoryRule(_Rule):
    """An article is in this category (case-insensitive)."""

    kind: Literal["category"]
    category: _Text


class SentimentBelowRule(_Rule):
    """An article's sentiment score is below the threshold."""

    kind: Literal["sentiment_below"]
    threshold: float = Field(ge=-1.0, le=1.0)


class StorySizeRule(_Rule):
    """A story's article count rises above the threshold (alerted once per story)."""

    kind: Literal["story_size_above"]
    threshold: Annotated[int, BeforeValidator(_whole)] = Field(ge=1, le=1_000_000)


class EntitySpikeRule(_Rule):
    """The entity's count in the current window is a burst against its own baseline (module docstring)."""

    kind: Literal["entity_spike"]
    entity: _Text


class KeywordSpikeRule(_Rule):
    """The keyword's count in the current window is a burst against its own baseline."""

    kind: Literal["keyword_spike"]
    keyword: _Text


WatchRule = Annotated[
    EntityRule
    | KeywordRule
    | SourceRule
    | CategoryRule
    | SentimentBelowRule
    | StorySizeRule
    | EntitySpikeRule
    | KeywordSpikeRule,
    Field(discriminator="kind"),
]


class WatchlistIn(BaseModel):
    """`POST /watchlists`: a name, its rules (each alerts on its own), and where to POST its alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: _Text
    rules: list[WatchRule] = Field(min_length=1, max_length=20)
    webhook_url: (
        Annotated[
            str,
            Field(
                max_length=2_000,
                pattern=r"^https?://[A-Za-z0-9._~\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/%?=&+]*)?$",
                description="http(s) URL each alert is POSTed to (signed; see X-Signature); null: none",
            ),
        ]
        | None
    ) = None


class Watchlist(WatchlistIn):
    """A stored watchlist (its secret is never listed)."""

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    created_at: datetime


class WatchlistCreated(Watchlist):
    """The answer to `POST /watchlists`: the watchlist and, this once, its webhook signing secret."""

    secret: str = Field(description="HMAC-SHA256 key of the X-Signature header; shown only now")


class Alert(BaseModel):
    """A watchlist matched (`GET /alerts`, WebSocket `alert`, and the webhook's body)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[0-9a-f]{32}$", description="deterministic: the same match is one alert")
    watchlist_id: str
    watchlist_name: str
    rule: WatchRule
    kind: AlertKind
    subject: str = Field(description="the article id (article rules), story id, or the entity id / keyword")
    message: str = Field(description="one line for people")
    created_at: datetime
    article_id: str | None = None
    story_id: str | None = None
    title: str | None = Field(default=None, description="the article's or story's title")
    window_start: datetime | None = Field(default=None, description="spikes: the window that surged")
    window_seconds: int | None = None
    count: int | None = Field(default=None, description="spikes: articles in the window; story size: articles")
    baseline: float | None = Field(default=None, description="spikes: the expected count (mean, floored)")
    p_value: float | None = Field(default=None, description="spikes: P(X >= count) under the baseline")


def alert_id(watchlist_id: str, rule_index: int, subject: str, window: int | None = None) -> str:
    text = f"{watchlist_id}\n{rule_index}\n{subject}\n{'' if window is None else window}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def poisson_sf(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean), summed in log space (stable for large counts)."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    # 1 - P(X <= count - 1); for a count far above the mean the upper tail is summed directly instead.
    if count > mean:
        total = 0.0
        k = count
        log_term = k * math.log(mean) - mean - math.lgamma(k + 1)
        while True:
            term = math.exp(log_term)
            total += term
            if term < total * 1e-16 or k > count + 10_000:
                return min(total, 1.0)
            k += 1
            log_term += math.log(mean) - math.log(k)
    cdf = sum(math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) for k in range(count))
    return max(0.0, 1.0 - cdf)


@dataclass(frozen=True)
class Burst:
    count: int
    baseline: float
    p_value: float


def burst(
    count: int, previous: list[int], *, alpha: float = 0.001, min_count: int = 5, floor: float = 1.0
) -> Burst | None:
    """The burst test of the module docstring: a `Burst` when `count` surges against `previous`, else None."""
    if count < min_count:
        return None
    baseline = max(sum(previous) / len(previous) if previous else 0.0, floor)
    p = poisson_sf(count, baseline)
    return Burst(count, baseline, p) if p < alpha else None


def sign(body: bytes, secret: str) -> str:
    """The X-Signature header's value for a body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(body, secret), header)
