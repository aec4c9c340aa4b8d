"""Watchlists and alerts in the consumer (issue 15 item 5): the Redis store of watchlists and alerts, the
per-batch evaluation (timelines counted, rules matched, bursts tested), the webhook sender, the relay of
alerts to this replica's WebSocket clients, and the routes (`/watchlists`, `/alerts`).

Once per ingest batch (`AlertService.after_batch`, called by the ingest before it commits): the batch's new
articles are counted in the timelines, every watchlist's rules are matched against the batch's articles and
story updates, and spike rules run the burst test (`common.alerts.burst`) on the windows the batch touched.
An alert is written with `SET NX` on its deterministic id in the same script that lists it and appends it
to the alert stream, so a re-delivered batch or a second replica never raises it twice; only the writer that
won sends the webhook. Every replica relays the stream to its own clients (`fan_out_alerts`).

Webhooks: POST of the alert's JSON, `X-Signature: sha256=<HMAC>` (the watchlist's secret), retried with
tenacity (exponential backoff, `AlertConfig.webhook_attempts` attempts) on connection errors and 408/429/5xx,
then dead-lettered to `news.dlq` (stage `alerts`, the body as the original payload). Deliveries run in the
background from an in-memory queue, so a slow receiver never holds the ingest; a replica killed with
deliveries pending loses those deliveries (the alerts themselves are stored and listed).

Layout (under the configured prefix):
  wl:{id}        hash {json: the Watchlist, secret}; no expiry
  wls            sorted set watchlist id -> created (epoch s)
  alert:{id}     the Alert JSON (SET NX), expires after the retention
  alerts         sorted set alert id -> created (epoch ms), the newest `max_alerts` kept
  aevents        stream {j: alert JSON}, about `max_alerts` kept: the live relay's source
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from redis.asyncio import Redis
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from common.alerts import (
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
return 1
"""


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class AlertStore:
    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int, max_alerts: int = 1_000) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._max = max_alerts
        self._raise = redis.register_script(_RAISE_SCRIPT)
        self.stream_key = f"{prefix}aevents"

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

    async def raise_alert(self, alert: Alert) -> bool:
        """Store and announce the alert unless its id is already stored; True when this call raised it."""
        payload = alert.model_dump_json()
        try:
            done = await self._raise(
                keys=[f"{self._prefix}alert:{alert.id}", f"{self._prefix}alerts", self.stream_key],
                args=[payload, self._ttl, int(alert.created_at.timestamp() * 1000), alert.id, self._max],
            )
        except RedisError as exc:
            raise StoreError(f"could not store alert {alert.id}: {exc}") from exc
        return bool(int(done))

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
    """Delivers alerts to webhooks in the background: signed, retried, dead-lettered."""

    def __init__(
        self,
        config: AlertConfig,
        metrics: ConsumerMetrics,
        dlq: AIOKafkaProducer,
        topics: Topics,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._dlq = dlq
        self._topics = topics
        self._client = client or httpx.AsyncClient(timeout=config.webhook_timeout, follow_redirects=False)
        self._queue: asyncio.Queue[tuple[Alert, str, str]] = asyncio.Queue(maxsize=config.webhook_queue)
        self._slots = asyncio.Semaphore(config.webhook_concurrency)

    async def aclose(self) -> None:
        await self._client.aclose()

    def enqueue(self, alert: Alert, url: str, secret: str) -> None:
        try:
            self._queue.put_nowait((alert, url, secret))
        except asyncio.QueueFull:
            asyncio.get_running_loop().create_task(self._dead_letter(alert, url, "webhook queue full", 0))

    async def deliver(self, alert: Alert, url: str, secret: str) -> bool:
        """One alert to one webhook, retried; dead-lettered when the receiver stays down. True if delivered."""
        body = alert.model_dump_json().encode("utf-8")
        headers = {"Content-Type": "application/json", "X-Signature": sign(body, secret), "X-Alert-Id": alert.id}
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._config.webhook_attempts),
                wait=wait_exponential(multiplier=self._config.webhook_backoff, max=self._config.webhook_backoff_max),
                retry=retry_if_exception_type(_Retryable),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self._metrics.webhooks.labels(result="retried").inc()
                    try:
                        answer = await self._client.post(url, content=body, headers=headers)
                    except httpx.HTTPError as exc:
                        raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
                    if answer.status_code in (408, 429) or answer.status_code >= 500:
                        raise _Retryable(f"HTTP {answer.status_code}")
                    if answer.status_code >= 300:
                        raise ValueError(f"HTTP {answer.status_code} (not retried)")
        except (_Retryable, ValueError) as exc:
            await self._dead_letter(alert, url, str(exc), attempts)
            return False
        self._metrics.webhooks.labels(result="ok").inc()
        return True

    async def _dead_letter(self, alert: Alert, url: str, error: str, attempts: int) -> None:
        self._metrics.webhooks.labels(result="failed").inc()
        host = httpx.URL(url).host
        log.warning("alert %s: webhook at %s failed after %d attempts: %s", alert.id, host, attempts, error)
        letter = DeadLetter.wrap(
            alert.model_dump_json(),
            stage="alerts",
            error=f"webhook {host}: {error}",
            key=alert.id,
            attempts=max(attempts, 1),
        )
        try:
            await send_dead_letter(self._dlq, self._topics.dead_letters, letter)
        except Exception:  # the DLQ is the last resort: log and go on
            log.exception("alert %s: could not dead-letter the failed webhook", alert.id)

    def _finished(self, tasks: set[asyncio.Task[bool]]) -> Any:
        def done(task: asyncio.Task[bool]) -> None:
            tasks.discard(task)
            self._slots.release()

        return done

    async def run(self) -> None:
        """Deliver queued alerts for ever, at most `webhook_concurrency` at a time."""
        tasks: set[asyncio.Task[bool]] = set()
        try:
            while True:
                alert, url, secret = await self._queue.get()
                await self._slots.acquire()
                task = asyncio.create_task(self.deliver(alert, url, secret))
                tasks.add(task)
                task.add_done_callback(self._finished(tasks))
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)


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
            if not await self._store.raise_alert(alert):
                continue
            kind: AlertKind = alert.kind
            self._metrics.alerts.labels(kind=kind).inc()
            if watchlist.webhook_url is not None and self._webhooks is not None:
                self._webhooks.enqueue(alert, watchlist.webhook_url, secret)


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
