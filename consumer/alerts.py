"""Watchlists and alerts in the consumer (issue 15 item 5): the Redis store of watchlists and alerts, the
per-batch evaluation (timelines counted, rules matched, bursts tested), the webhook sender, the relay of
alerts to this replica's WebSocket clients, and the routes (`/watchlists`, `/alerts`).

Once per ingest batch (`AlertService.after_batch`, called by the ingest before it commits): the batch's new
articles are counted in the timelines, every watchlist's rules are matched against the batch's articles and
story updates, and spike rules run the burst test (`common.alerts.burst`) on the windows the batch touched.
An alert is written with `SET NX` on its deterministic id in the same script that lists it and appends it
to the alert stream, so a re-delivered batch or a second replica never raises it twice; only the writer that
won queues the webhook. Every replica relays the stream to its own clients (`fan_out_alerts`).

Webhooks: POST of the alert's JSON, `X-Signature: sha256=<HMAC>` (the watchlist's secret), retried with
tenacity (exponential backoff, `AlertConfig.webhook_attempts` attempts in all) on connection errors and
408/429/5xx, then dead-lettered to `news.dlq` (stage `alerts`, the body as the original payload, the last
error as the reason). Delivery is at least once: `X-News-Delivery` (the alert's id, the same on every retry,
takeover and restart) lets a receiver drop repeats (`common.alerts`).

The pending deliveries are an outbox in Redis, not in a replica's memory: the script that raises an alert
also appends its signed delivery to the stream `whq` (the body and its signature; never the secret), so a
stored alert with a webhook always has its delivery queued. Every replica's `WebhookSender` is a consumer of
the stream's group `webhooks`: XREADGROUP hands each new delivery to one replica; the holder renews its lease
(XCLAIM to itself) every lease / 3 while it works; a delivery not renewed for the lease (3 x
`webhook_timeout`; the replica was killed or hangs) is taken over by XAUTOCLAIM, by another replica or by
the restarted one. A delivery is acknowledged and deleted (XACK + XDEL) only after a 2xx or once its dead
letter was acked by Kafka. Attempts are counted in Redis (`whtries`), so the budget spans takeovers: a
receiver that stays down is dead-lettered after `webhook_attempts` in all, however often replicas die.
A stream with a group was chosen over a list with per-replica processing lists (BLMOVE) because Redis keeps
the owner and the idle time of every pending entry, so finding a dead replica's work is one command, not
heartbeat keys of our own. Bounded: the outbox holds at most `webhook_queue` deliveries; past that a new
alert is still raised and listed, and its delivery is dead-lettered at once ("webhook queue full") and
counted in `alert_webhook_deliveries_total{result="failed"}` (never trimmed away silently).

Layout (under the configured prefix):
  wl:{id}        hash {json: the Watchlist, secret}; no expiry
  wls            sorted set watchlist id -> created (epoch s)
  alert:{id}     the Alert JSON (SET NX), expires after the retention
  alerts         sorted set alert id -> created (epoch ms), the newest `max_alerts` kept
  aevents        stream {j: alert JSON}, about `max_alerts` kept: the live relay's source
  whq            stream {a: alert id, u: url, s: X-Signature, j: body}, group `webhooks`: the webhook outbox
  whtries        hash {entry id: attempts made, entry id:e: the last error}, while the delivery is pending
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from common.alerts import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    Alert,
    AlertKind,
    CategoryRule,
    EntityRule,
    EntitySpikeRule,
    KeywordRule,
    KeywordSpikeRule,
    SentimentBelowRule,
    SourceRule,
    StorySizeRule,
    Watchlist,
    WatchlistCreated,
    WatchlistIn,
    WatchRule,
    alert_id,
    burst,
    sign,
)
from common.errors import StoreError
from common.kafka import send_dead_letter
from common.messages import AlertMessage
from common.metrics import ConsumerMetrics
from common.retry import until_up
from common.schemas import AnalyzedArticle, DeadLetter
from common.store import normalise
from common.stories import StoryUpdate
from common.timelines import BUCKETS, SubjectKind, TimelineStore, bucket_start, counted_at
from common.topics import Topics
from consumer.api import _UNAVAILABLE, _UTF8, ErrorBody
from consumer.live import tail
from consumer.settings import AlertConfig

__all__ = [
    "AlertRelay",
    "AlertService",
    "AlertStore",
    "Delivery",
    "RaiseResult",
    "WebhookSender",
    "alerts_router",
    "fan_out_alerts",
]

log = logging.getLogger(__name__)

_RAISE_SCRIPT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[5]) - 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'j', ARGV[1])
if ARGV[6] == '' then return 1 end
if redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[8]) then return 2 end
redis.call('XADD', KEYS[4], '*', 'a', ARGV[4], 'u', ARGV[6], 's', ARGV[7], 'j', ARGV[1])
return 1
"""

# Refresh the lease of this consumer's in-flight deliveries (XCLAIM to itself resets the idle time), only for
# entries it still owns: one another replica has taken over is left to that replica.
_KEEP_SCRIPT = """
local kept = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
"""

RaiseResult = Literal["exists", "raised", "refused"]
_GROUP = "webhooks"


@dataclass(frozen=True)
class Delivery:
    """One pending webhook delivery: the stream entry, where to POST, the signed body."""

    entry_id: str
    alert_id: str
    url: str
    signature: str
    body: bytes


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class AlertStore:
    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int, max_alerts: int = 1_000) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._max = max_alerts
        self._raise = redis.register_script(_RAISE_SCRIPT)
        self._keep = redis.register_script(_KEEP_SCRIPT)
        self.stream_key = f"{prefix}aevents"
        self.deliveries_key = f"{prefix}whq"
        self._tries_key = f"{prefix}whtries"

    def _wl(self, watchlist_id: str) -> str:
        return f"{self._prefix}wl:{watchlist_id}"

    async def create(self, spec: WatchlistIn) -> WatchlistCreated:
        created = WatchlistCreated(
            name=spec.name,
            rules=spec.rules,
            webhook_url=spec.webhook_url,
            id=uuid.uuid4().hex,
            created_at=datetime.now(UTC),
            secret=secrets.token_hex(32),
        )
        stored = Watchlist.model_validate_json(created.model_dump_json(exclude={"secret"}))
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._wl(created.id), mapping={"json": stored.model_dump_json(), "secret": created.secret})
                pipe.zadd(f"{self._prefix}wls", {created.id: created.created_at.timestamp()})
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not store the watchlist: {exc}") from exc
        return created

    async def count(self) -> int:
        try:
            return int(await self._redis.zcard(f"{self._prefix}wls"))
        except RedisError as exc:
            raise StoreError(f"could not count watchlists: {exc}") from exc

    async def delete(self, watchlist_id: str) -> bool:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._wl(watchlist_id))
                pipe.zrem(f"{self._prefix}wls", watchlist_id)
                removed, _ = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not delete the watchlist: {exc}") from exc
        return bool(removed)

    async def with_secrets(self) -> list[tuple[Watchlist, str]]:
        """Every watchlist, oldest first, with its secret."""
        try:
            ids = [_text(i) for i in await self._redis.zrange(f"{self._prefix}wls", 0, -1)]
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.hmget(self._wl(i), ["json", "secret"])
                found = await pipe.execute() if ids else []
        except RedisError as exc:
            raise StoreError(f"could not read watchlists: {exc}") from exc
        return [
            (Watchlist.model_validate_json(raw), _text(secret)) for raw, secret in found if raw is not None and secret
        ]

    async def get(self, watchlist_id: str) -> Watchlist | None:
        try:
            raw = await self._redis.hget(self._wl(watchlist_id), "json")
        except RedisError as exc:
            raise StoreError(f"could not read the watchlist: {exc}") from exc
        return None if raw is None else Watchlist.model_validate_json(raw)

    async def raise_alert(
        self, alert: Alert, webhook: tuple[str, str] | None = None, *, queue_max: int = 10_000
    ) -> RaiseResult:
        """Store and announce the alert unless its id is already stored ("exists"). With a `webhook` (url,
        secret), its signed delivery is queued in the same script, unless `queue_max` deliveries are already
        waiting ("refused": the alert is raised, its delivery is the caller's to dead-letter)."""
        payload = alert.model_dump_json()
        url, signature = ("", "") if webhook is None else (webhook[0], sign(payload.encode("utf-8"), webhook[1]))
        try:
            done = await self._raise(
                keys=[
                    f"{self._prefix}alert:{alert.id}",
                    f"{self._prefix}alerts",
                    self.stream_key,
                    self.deliveries_key,
                ],
                args=[
                    payload,
                    self._ttl,
                    int(alert.created_at.timestamp() * 1000),
                    alert.id,
                    self._max,
                    url,
                    signature,
                    queue_max,
                ],
            )
        except RedisError as exc:
            raise StoreError(f"could not store alert {alert.id}: {exc}") from exc
        return ("exists", "raised", "refused")[int(done)]

    # --- the webhook outbox: a stream read by the consumer group `webhooks` (one consumer per replica) ---

    async def ensure_delivery_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.deliveries_key, _GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreError(f"could not create the webhook delivery group: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"could not create the webhook delivery group: {exc}") from exc

    @staticmethod
    def _deliveries(entries: Any) -> list[Delivery]:
        out = []
        for entry_id, fields in entries or []:
            if not fields:  # deleted while pending (never here: acknowledged entries are deleted together)
                continue
            got = {_text(k): v for k, v in fields.items()}
            out.append(Delivery(_text(entry_id), _text(got["a"]), _text(got["u"]), _text(got["s"]), bytes(got["j"])))
        return out

    async def read_deliveries(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """Deliveries no replica has taken yet, now this consumer's (waits up to `block_ms` for one)."""
        try:
            found: Any = await self._redis.xreadgroup(
                _GROUP, consumer, {self.deliveries_key: ">"}, count=count, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (a flush): make the group again
                await self.ensure_delivery_group()
                return []
            raise StoreError(f"could not read webhook deliveries: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"could not read webhook deliveries: {exc}") from exc
        return [d for _, entries in found or [] for d in self._deliveries(entries)]

    async def claim_deliveries(self, consumer: str, idle_ms: int, count: int, start: str) -> tuple[str, list[Delivery]]:
        """Take over deliveries whose holder has not renewed them for `idle_ms` (a replica killed or stuck):
        one XAUTOCLAIM step from `start`; returns the cursor for the next step ("0-0": the scan wrapped)."""
        try:
            found: Any = await self._redis.xautoclaim(
                self.deliveries_key, _GROUP, consumer, idle_ms, start_id=start, count=count
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                await self.ensure_delivery_group()
                return "0-0", []
            raise StoreError(f"could not claim webhook deliveries: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"could not claim webhook deliveries: {exc}") from exc
        return _text(found[0]), self._deliveries(found[1])

    async def keep_deliveries(self, consumer: str, entry_ids: list[str]) -> int:
        """Renew this consumer's lease on its in-flight deliveries; how many it still held."""
        if not entry_ids:
            return 0
        try:
            return int(await self._keep(keys=[self.deliveries_key], args=[_GROUP, consumer, *entry_ids]))
        except RedisError as exc:
            raise StoreError(f"could not renew webhook deliveries: {exc}") from exc

    async def record_attempt(self, entry_id: str) -> int:
        """Count one more attempt at a delivery (across replicas and restarts); the count so far."""
        try:
            return int(await self._redis.hincrby(self._tries_key, entry_id, 1))
        except RedisError as exc:
            raise StoreError(f"could not count a webhook attempt: {exc}") from exc

    async def record_error(self, entry_id: str, error: str) -> None:
        try:
            await self._redis.hset(self._tries_key, f"{entry_id}:e", error)
        except RedisError as exc:
            raise StoreError(f"could not note a webhook error: {exc}") from exc

    async def attempts_made(self, entry_id: str) -> tuple[int, str | None]:
        """Attempts made at a delivery so far (by any replica), and the last one's error."""
        try:
            made, error = await self._redis.hmget(self._tries_key, [entry_id, f"{entry_id}:e"])
        except RedisError as exc:
            raise StoreError(f"could not read webhook attempts: {exc}") from exc
        return int(made or 0), None if error is None else _text(error)

    async def finish_delivery(self, entry_id: str) -> None:
        """A delivery is done (delivered, or dead-lettered): acknowledged and removed, with its attempt count."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.deliveries_key, _GROUP, entry_id)
                pipe.xdel(self.deliveries_key, entry_id)
                pipe.hdel(self._tries_key, entry_id, f"{entry_id}:e")
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"could not acknowledge webhook delivery {entry_id}: {exc}") from exc

    async def pending_deliveries(self) -> int:
        """Deliveries waiting or in flight (the stream holds only those: finished ones are deleted)."""
        try:
            return int(await self._redis.xlen(self.deliveries_key))
        except RedisError as exc:
            raise StoreError(f"could not count webhook deliveries: {exc}") from exc

    async def prune_consumers(self, idle_ms: int) -> int:
        """Forget consumers (replicas gone) that hold nothing and were not heard from for `idle_ms`."""
        try:
            consumers = await self._redis.xinfo_consumers(self.deliveries_key, _GROUP)
            gone = [c["name"] for c in consumers if int(c["pending"]) == 0 and int(c["idle"]) > idle_ms]
            for name in gone:
                await self._redis.xgroup_delconsumer(self.deliveries_key, _GROUP, name)
        except RedisError as exc:
            raise StoreError(f"could not prune webhook consumers: {exc}") from exc
        return len(gone)

    async def recent_json(self, limit: int, watchlist_id: str | None = None) -> list[str]:
        """The newest alerts' JSON, newest first (expired ones skipped)."""
        out: list[str] = []
        start = 0
        try:
            while len(out) < limit:
                ids = await self._redis.zrange(f"{self._prefix}alerts", start, start + 199, desc=True)
                if not ids:
                    break
                start += len(ids)
                for raw in await self._redis.mget([f"{self._prefix}alert:{_text(i)}" for i in ids]):
                    if raw is None:
                        continue
                    text = _text(raw)
                    if watchlist_id is None or f'"watchlist_id":"{watchlist_id}"' in text:
                        out.append(text)
        except RedisError as exc:
            raise StoreError(f"could not read alerts: {exc}") from exc
        return out[:limit]

    async def last_position(self) -> str:
        try:
            entries = await self._redis.xrevrange(self.stream_key, count=1)
        except RedisError as exc:
            raise StoreError(f"could not read the alert stream: {exc}") from exc
        return _text(entries[0][0]) if entries else "0-0"

    async def read(self, position: str, block_ms: int) -> tuple[str, list[str]]:
        try:
            found: Any = await self._redis.xread({self.stream_key: position}, block=block_ms, count=500)
        except RedisError as exc:
            raise StoreError(f"could not read the alert stream: {exc}") from exc
        out: list[str] = []
        for _, entries in found or []:
            for entry_id, fields in entries:
                position = _text(entry_id)
                out.append(_text(fields[b"j"] if b"j" in fields else fields["j"]))
        return position, out


# --- webhooks -----------------------------------------------------------------------------------


class _Retryable(Exception):
    """A delivery attempt failed in a way worth trying again (no answer, 408, 429, 5xx)."""


class WebhookSender:
    """Delivers queued alerts to webhooks from the Redis outbox: signed, retried, dead-lettered, durable.

    Every replica runs one, as one consumer of the outbox's group: a new delivery goes to exactly one replica
    (XREADGROUP); the holder renews its lease every `lease / 3` seconds while it works; a delivery whose lease
    ran out (its replica was killed, or hangs) is taken over by whichever replica scans first (XAUTOCLAIM).
    An entry is acknowledged and deleted only once the receiver answered 2xx or its dead letter was acked."""

    def __init__(
        self,
        config: AlertConfig,
        metrics: ConsumerMetrics,
        dlq: AIOKafkaProducer,
        topics: Topics,
        store: AlertStore,
        client: httpx.AsyncClient | None = None,
        *,
        lease: float | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._dlq = dlq
        self._topics = topics
        self._store = store
        self._client = client or httpx.AsyncClient(timeout=config.webhook_timeout, follow_redirects=False)
        # How long a delivery may go unrenewed before another replica takes it over: three request timeouts
        # (the holder renews every lease / 3, whatever its requests do, so only a dead or stuck replica lapses).
        self.lease = lease if lease is not None else max(3 * config.webhook_timeout, 1.0)
        # One name per process: a restarted replica is a new consumer and takes its predecessor's deliveries
        # over like any other replica's, after the lease.
        self.name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._in_flight: set[str] = set()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def refuse(self, alert: Alert, url: str) -> None:
        """The outbox is full (`webhook_queue` deliveries waiting): dead-letter the delivery now, counted."""
        await self._dead_letter(alert.id, alert.model_dump_json().encode("utf-8"), url, "webhook queue full", 0)

    async def deliver(self, delivery: Delivery) -> bool:
        """One delivery, retried within what is left of its attempt budget; dead-lettered when the receiver stays
        down, then finished. True if delivered. `StoreError` (Redis down) leaves it pending: it is taken over
        after the lease. An error of the dead-letter producer leaves it pending too (it is dead-lettered later)."""
        budget = self._config.webhook_attempts
        made, last_error = await self._store.attempts_made(delivery.entry_id)
        headers = {
            "Content-Type": "application/json",
            "X-Signature": delivery.signature,
            "X-Alert-Id": delivery.alert_id,
            DELIVERY_HEADER: delivery.alert_id,
        }
        error: str | None = last_error
        delivered = False
        if made < budget:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(budget - made),
                    wait=wait_exponential(
                        multiplier=self._config.webhook_backoff, max=self._config.webhook_backoff_max
                    ),
                    retry=retry_if_exception_type(_Retryable),
                    reraise=True,
                ):
                    with attempt:
                        made = await self._store.record_attempt(delivery.entry_id)
                        if made > 1:
                            self._metrics.webhooks.labels(result="retried").inc()
                        try:
                            await self._post(delivery, {**headers, ATTEMPT_HEADER: str(made)})
                        except (_Retryable, ValueError) as exc:
                            await self._store.record_error(delivery.entry_id, str(exc))
                            raise
                delivered = True
            except (_Retryable, ValueError) as exc:
                error = str(exc)
        if delivered:
            self._metrics.webhooks.labels(result="ok").inc()
        else:
            sent = await self._dead_letter(
                delivery.alert_id, delivery.body, delivery.url, error or "attempts spent", made
            )
            if not sent:
                return False
        await self._store.finish_delivery(delivery.entry_id)
        return delivered

    async def _post(self, delivery: Delivery, headers: dict[str, str]) -> None:
        try:
            answer = await self._client.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code in (408, 429) or answer.status_code >= 500:
            raise _Retryable(f"HTTP {answer.status_code}")
        if answer.status_code >= 300:
            raise ValueError(f"HTTP {answer.status_code} (not retried)")

    async def _dead_letter(self, alert_id: str, body: bytes, url: str, error: str, attempts: int) -> bool:
        """The delivery to the dead-letter topic (stage `alerts`, the alert as the original payload); True once
        the broker acked it (then counted as failed), False when it could not be produced (logged)."""
        host = httpx.URL(url).host
        log.warning("alert %s: webhook at %s failed after %d attempts: %s", alert_id, host, attempts, error)
        letter = DeadLetter.wrap(
            body.decode("utf-8"),
            stage="alerts",
            error=f"webhook {host}: {error}",
            key=alert_id,
            attempts=max(attempts, 1),
        )
        try:
            await send_dead_letter(self._dlq, self._topics.dead_letters, letter)
        except Exception:  # the DLQ is the last resort: the delivery stays pending and is tried again
            log.exception("alert %s: could not dead-letter the failed webhook", alert_id)
            return False
        self._metrics.webhooks.labels(result="failed").inc()
        return True

    async def _one(self, delivery: Delivery) -> None:
        try:
            await self.deliver(delivery)
        except StoreError as exc:
            log.warning("alert %s: webhook delivery left pending (Redis): %s", delivery.alert_id, exc)
        except Exception:  # a bug must not end the sender; the entry stays pending and is taken over
            log.exception("alert %s: webhook delivery failed unexpectedly", delivery.alert_id)
        finally:
            self._in_flight.discard(delivery.entry_id)

    async def _renew(self) -> None:
        """Renew the lease of this replica's in-flight deliveries, and now and then forget replicas long gone."""
        beats = 0
        while True:
            await asyncio.sleep(self.lease / 3)
            beats += 1
            try:
                await self._store.keep_deliveries(self.name, sorted(self._in_flight))
                if beats % 360 == 0:
                    await self._store.prune_consumers(int(max(3600.0, 100 * self.lease) * 1000))
            except StoreError as exc:
                log.warning("could not renew webhook deliveries: %s", exc)

    async def run(self) -> None:
        """Deliver the outbox for ever, at most `webhook_concurrency` at a time: taken-over deliveries first,
        then new ones."""
        async for attempt in until_up("creating the webhook delivery group", on=(StoreError,), logger=log):
            with attempt:
                await self._store.ensure_delivery_group()
        most = self._config.webhook_concurrency
        lease_ms = int(self.lease * 1000)
        block_ms = max(min(1_000, lease_ms // 3), 10)
        tasks: set[asyncio.Task[None]] = set()
        renew = asyncio.create_task(self._renew())
        cursor = "0-0"
        try:
            while True:
                while len(tasks) >= most:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                free = most - len(tasks)
                try:
                    cursor, found = await self._store.claim_deliveries(self.name, lease_ms, free, cursor)
                    # Taken over: what this replica still holds itself (a finished retry that could not be
                    # acknowledged) is not taken twice.
                    found = [d for d in found if d.entry_id not in self._in_flight]
                    if found:
                        log.info("took over %d webhook deliveries whose lease ran out", len(found))
                    else:
                        found = await self._store.read_deliveries(self.name, free, block_ms)
                except StoreError as exc:
                    log.warning("could not read webhook deliveries: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                for delivery in found:
                    self._in_flight.add(delivery.entry_id)
                    task = asyncio.create_task(self._one(delivery))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            renew.cancel()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(renew, *tasks, return_exceptions=True)


# --- evaluation ---------------------------------------------------------------------------------


def _article_matches(rule: WatchRule, article: AnalyzedArticle) -> bool:
    analysis = article.analysis
    if isinstance(rule, EntityRule):
        return normalise(rule.entity) in {normalise(e.key) for e in analysis.entities}
    if isinstance(rule, KeywordRule):
        return normalise(rule.keyword) in {normalise(k) for k in analysis.keywords}
    if isinstance(rule, SourceRule):
        return normalise(rule.source) == normalise(article.source)
    if isinstance(rule, SentimentBelowRule):
        return analysis.sentiment_score < rule.threshold
    return isinstance(rule, CategoryRule) and normalise(rule.category) == normalise(analysis.category)


def _spike_subject(rule: WatchRule) -> tuple[SubjectKind, str] | None:
    if isinstance(rule, EntitySpikeRule):
        return "entity", normalise(rule.entity)
    if isinstance(rule, KeywordSpikeRule):
        return "keyword", normalise(rule.keyword)
    return None


class AlertService:
    """What the ingest calls once a batch is stored: count timelines, match watchlists, raise alerts."""

    def __init__(
        self,
        timelines: TimelineStore,
        store: AlertStore,
        config: AlertConfig,
        metrics: ConsumerMetrics,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self._timelines = timelines
        self._store = store
        self._config = config
        self._metrics = metrics
        self._webhooks = webhooks

    async def after_batch(self, articles: list[AnalyzedArticle], updates: list[StoryUpdate]) -> None:
        await self._timelines.count_batch(articles)
        watchlists = await self._store.with_secrets()
        if not watchlists:
            return
        now = time.time()
        created = datetime.now(UTC)
        found: list[tuple[Alert, Watchlist, str]] = []
        spikes: list[tuple[Watchlist, str, int, WatchRule, SubjectKind, str]] = []
        for watchlist, secret in watchlists:
            for index, rule in enumerate(watchlist.rules):
                if isinstance(rule, StorySizeRule):
                    for update in updates:
                        story = update.story
                        if story.article_count > rule.threshold:
                            found.append(
                                (
                                    Alert(
                                        id=alert_id(watchlist.id, index, story.id),
                                        watchlist_id=watchlist.id,
                                        watchlist_name=watchlist.name,
                                        rule=rule,
                                        kind="story_size",
                                        subject=story.id,
                                        message=f"story '{story.title}' has {story.article_count} articles "
                                        f"(above {rule.threshold})",
                                        created_at=created,
                                        story_id=story.id,
                                        title=story.title,
                                        count=story.article_count,
                                    ),
                                    watchlist,
                                    secret,
                                )
                            )
                elif (subject := _spike_subject(rule)) is not None:
                    spikes.append((watchlist, secret, index, rule, *subject))
                else:
                    for article in articles:
                        if _article_matches(rule, article):
                            found.append(
                                (self._article_alert(watchlist, index, rule, article, created), watchlist, secret)
                            )
        if spikes:
            found += await self._spikes(spikes, articles, now, created)
        await self._raise(found)

    @staticmethod
    def _article_alert(
        watchlist: Watchlist, index: int, rule: WatchRule, article: AnalyzedArticle, created: datetime
    ) -> Alert:
        return Alert(
            id=alert_id(watchlist.id, index, article.id),
            watchlist_id=watchlist.id,
            watchlist_name=watchlist.name,
            rule=rule,
            kind="article",
            subject=article.id,
            message=f"{article.source}: {article.title}",
            created_at=created,
            article_id=article.id,
            title=article.title,
        )

    async def _spikes(
        self,
        spikes: list[tuple[Watchlist, str, int, WatchRule, SubjectKind, str]],
        articles: Iterable[AnalyzedArticle],
        now: float,
        created: datetime,
    ) -> list[tuple[Alert, Watchlist, str]]:
        config = self._config
        size = BUCKETS[config.spike_bucket]
        oldest = bucket_start(now, size) - size * (config.spike_recent_windows - 1)
        # The windows each subject appeared in within this batch (only recent windows alert: a backfill of
        # old news is counted, not announced).
        touched: dict[tuple[SubjectKind, str], set[int]] = defaultdict(set)
        for article in articles:
            start = bucket_start(counted_at(article), size)
            if start < oldest:
                continue
            for entity in article.analysis.entities:
                touched["entity", normalise(entity.key)].add(start)
            for keyword in article.analysis.keywords:
                touched["keyword", normalise(keyword)].add(start)
        wanted = sorted({(kind, s, w) for *_, kind, s in spikes for w in touched.get((kind, s), ())})
        if not wanted:
            return []
        # Counts are stored under the subject as counted (entity keys as written, keywords folded); rules
        # are compared folded, so map each folded subject back to how it was counted.
        stored: dict[tuple[SubjectKind, str], str] = {}
        for article in articles:
            for entity in article.analysis.entities:
                stored.setdefault(("entity", normalise(entity.key)), entity.key)
            for keyword in article.analysis.keywords:
                stored.setdefault(("keyword", normalise(keyword)), normalise(keyword))
        n = config.spike_baseline_windows + 1
        results: dict[tuple[SubjectKind, str, int], Any] = {}
        for kind, subject, window in wanted:
            [series] = await self._timelines.counts([(kind, stored[kind, subject])], size, window, n)
            results[kind, subject, window] = burst(
                series[-1],
                series[:-1],
                alpha=config.spike_alpha,
                min_count=config.spike_min_count,
                floor=config.spike_floor,
            )
        out = []
        for watchlist, secret, index, rule, kind, subject in spikes:
            for window in sorted(touched.get((kind, subject), ())):
                found = results.get((kind, subject, window))
                if found is None:
                    continue
                alert = Alert(
                    id=alert_id(watchlist.id, index, subject, window),
                    watchlist_id=watchlist.id,
                    watchlist_name=watchlist.name,
                    rule=rule,
                    kind="spike",
                    subject=stored[kind, subject],
                    message=f"{kind} '{stored[kind, subject]}' surges: {found.count} articles in {config.spike_bucket} "
                    f"against {found.baseline:.2f} expected (p = {found.p_value:.2g})",
                    created_at=created,
                    window_start=datetime.fromtimestamp(window, UTC),
                    window_seconds=size,
                    count=found.count,
                    baseline=round(found.baseline, 6),
                    p_value=found.p_value,
                )
                out.append((alert, watchlist, secret))
        return out

    async def _raise(self, found: list[tuple[Alert, Watchlist, str]]) -> None:
        seen: set[str] = set()
        for alert, watchlist, secret in found:
            if alert.id in seen:
                continue
            seen.add(alert.id)
            url = watchlist.webhook_url if self._webhooks is not None else None
            result = await self._store.raise_alert(
                alert, None if url is None else (url, secret), queue_max=self._config.webhook_queue
            )
            if result == "exists":
                continue
            kind: AlertKind = alert.kind
            self._metrics.alerts.labels(kind=kind).inc()
            if result == "refused" and self._webhooks is not None and url is not None:
                await self._webhooks.refuse(alert, url)


# --- live relay ---------------------------------------------------------------------------------


class AlertRelay(Protocol):
    def broadcast_alert(self, frame: str) -> None: ...


async def fan_out_alerts(store: AlertStore, relay: AlertRelay) -> None:
    """Relay raised alerts to this replica's clients as `alert` frames, for ever, from the newest at start."""
    await tail(
        "the alert stream",
        store.last_position,
        lambda position: store.read(position, block_ms=5_000),
        lambda alert: relay.broadcast_alert(AlertMessage.frame_raw(alert)),
    )


# --- routes -------------------------------------------------------------------------------------

alerts_router = APIRouter(tags=["alerts"])
WatchlistId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the watchlist's id")]


def _alerts(request: Request) -> AlertStore:
    return request.app.state.alerts  # type: ignore[no-any-return]


@alerts_router.post(
    "/watchlists",
    response_model=WatchlistCreated,
    status_code=201,
    responses={
        400: {"model": ErrorBody, "description": "the body is not JSON"},
        409: {"model": ErrorBody, "description": "the most watchlists allowed already exist"},
        **_UNAVAILABLE,
    },
)
async def create_watchlist(request: Request, spec: WatchlistIn) -> WatchlistCreated:
    """Create a watchlist; the answer carries its webhook signing secret, shown only this once."""
    store = _alerts(request)
    most = request.app.state.settings.consumer.alerts.max_watchlists
    if await store.count() >= most:
        raise HTTPException(409, f"at most {most} watchlists; delete one first")
    return await store.create(spec)


@alerts_router.get("/watchlists", response_model=list[Watchlist], responses=_UNAVAILABLE)
async def list_watchlists(request: Request) -> list[Watchlist]:
    """Every watchlist, oldest first (without secrets)."""
    return [w for w, _ in await _alerts(request).with_secrets()]


@alerts_router.get(
    "/watchlists/{watchlist_id}",
    response_model=Watchlist,
    responses={404: {"model": ErrorBody, "description": "no watchlist with this id"}, **_UNAVAILABLE},
)
async def get_watchlist(request: Request, watchlist_id: WatchlistId) -> Watchlist:
    found = await _alerts(request).get(watchlist_id)
    if found is None:
        raise HTTPException(404, f"no watchlist with id {watchlist_id}")
    return found


@alerts_router.delete(
    "/watchlists/{watchlist_id}",
    status_code=204,
    response_class=Response,
    responses={404: {"model": ErrorBody, "description": "no watchlist with this id"}, **_UNAVAILABLE},
)
async def delete_watchlist(request: Request, watchlist_id: WatchlistId) -> Response:
    """Delete a watchlist (its alerts stay listed until they expire)."""
    if not await _alerts(request).delete(watchlist_id):
        raise HTTPException(404, f"no watchlist with id {watchlist_id}")
    return Response(status_code=204)


def _refuse(allow: str) -> Any:
    async def method_not_allowed() -> Response:
        return Response(
            b'{"detail":"Method Not Allowed"}', status_code=405, media_type="application/json", headers={"Allow": allow}
        )

    return method_not_allowed


# Two routes share each watchlist path (one per method), and Starlette's 405 would name only the first one's
# method in `Allow`: these catch the other methods and name every method the path has.
_OTHER = ["PUT", "PATCH", "OPTIONS", "TRACE"]
alerts_router.add_api_route("/watchlists", _refuse("GET, POST"), methods=[*_OTHER, "DELETE"], include_in_schema=False)
alerts_router.add_api_route(
    "/watchlists/{watchlist_id}", _refuse("GET, DELETE"), methods=[*_OTHER, "POST"], include_in_schema=False
)


@alerts_router.get("/alerts", response_model=list[Alert], responses=_UNAVAILABLE, dependencies=_UTF8)
async def list_alerts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200, description="how many (1-200)")] = 50,
    watchlist: Annotated[
        str | None, Query(pattern=r"^[0-9a-f]{32}$", description="only this watchlist's alerts")
    ] = None,
) -> Response:
    """The newest alerts first (the newest 1000 are kept, each for the retention period)."""
    found = await _alerts(request).recent_json(limit, watchlist)
    return Response(("[" + ",".join(found) + "]").encode("utf-8"), media_type="application/json")
