"""SIGKILL the consumer while its webhook deliveries are pending (one receiver down for now, one down for good),
start it again: every alert reaches the receiver that comes back (each delivery id at least once, with its
attempts counted on from before the kill), and the receiver that stays down gets nothing but a dead letter per
alert after exactly the attempt budget, however the attempts were split between the two processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from common.alerts import DELIVERY_HEADER, verify
from common.settings import KafkaSettings
from harness.processes import ServiceProcess
from tests.integration.test_alerts import Receiver, dead_letters, serving, wait_for
from tests.integration.test_consumer import produce, wait_stored
from tests.integration.test_store import make_article

N = 12
ATTEMPTS = 14
ENV = {
    "CONSUMER__ALERTS__WEBHOOK_ATTEMPTS": str(ATTEMPTS),
    "CONSUMER__ALERTS__WEBHOOK_BACKOFF": "0.3",
    "CONSUMER__ALERTS__WEBHOOK_BACKOFF_MAX": "0.6",
    # The lease (3 x the timeout): how long a killed replica's deliveries wait before they are taken over.
    "CONSUMER__ALERTS__WEBHOOK_TIMEOUT": "1",
    # All 2N deliveries in flight at once, so each is mid-retry when the replica is killed.
    "CONSUMER__ALERTS__WEBHOOK_CONCURRENCY": "32",
}


def retried(receiver: Receiver) -> bool:
    """Every one of the N alerts POSTed at least twice to this receiver."""
    tried = receiver.ids(accepted=False)
    return len(set(tried)) == N and all(tried.count(i) >= 2 for i in set(tried))


async def test_webhook_deliveries_survive_a_consumer_sigkill(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings, redis: Redis, namespace: str
) -> None:
    async with serving(Receiver(status=503)) as comes_back, serving(Receiver(status=503)) as stays_down:
        first = spawn("consumer", env=ENV)
        base = f"http://127.0.0.1:{first.port}"
        secrets: dict[str, str] = {}
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for name, receiver in (("back", comes_back), ("down", stays_down)):
                created = await client.post(
                    "/watchlists",
                    json={
                        "name": name,
                        "rules": [{"kind": "entity", "entity": "org:acme"}],
                        "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
                    },
                )
                assert created.status_code == 201, created.text
                secrets[name] = created.json()["secret"]
        now = datetime.now(UTC)
        await produce(
            kafka_settings, [make_article(i, entities=("Acme",), published=now, analyzed=now) for i in range(N)]
        )
        await wait_stored(base, N)
        # Every delivery tried at least twice at both receivers (all in flight, retrying): kill the replica.
        await wait_for(lambda: retried(comes_back) and retried(stays_down), 30, "every delivery retried")
        first.kill()
        tried_before = {json.loads(body)["id"]: int(headers["X-News-Attempt"]) for body, headers, _ in stays_down.posts}
        assert len(tried_before) == N and max(tried_before.values()) < ATTEMPTS, "dead-lettered before the kill"
        # Nothing was lost with the process: 2N deliveries pending in Redis, none delivered.
        assert await redis.xlen(f"{namespace}:whq") == 2 * N and comes_back.received == []

        comes_back.status = 204
        second = spawn("consumer", env=ENV)
        await wait_for(lambda: len(set(comes_back.ids())) == N, 60, "every alert delivered after the restart")
        letters = [d for d in await dead_letters(kafka_settings, N, timeout=60) if d["stage"] == "alerts"]

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second.port}", timeout=10) as client:
            listed = (await client.get("/alerts", params={"limit": 200})).json()
        by_watchlist = {name: {a["id"] for a in listed if a["watchlist_name"] == name} for name in secrets}
        assert all(len(ids) == N for ids in by_watchlist.values())
        # The receiver that came back: every alert at least once, signed, keyed by its id, and its attempts
        # counted on from those made before the kill (the budget spans processes).
        assert set(comes_back.ids()) == by_watchlist["back"]
        for body, headers in comes_back.received:
            assert verify(body, secrets["back"], headers.get("X-Signature"))
            assert headers[DELIVERY_HEADER] == json.loads(body)["id"] and int(headers["X-News-Attempt"]) >= 3
        # The receiver that stayed down: one dead letter per alert, after exactly the budget in all.
        assert sorted(d["original_key"] for d in letters) == sorted(by_watchlist["down"])
        assert all(d["attempts"] == ATTEMPTS and d["error"].endswith("HTTP 503") for d in letters), letters
        # The POSTs it saw: the budget, less at most the one attempt counted just before the kill but never sent.
        per_alert = {i: stays_down.ids(accepted=False).count(i) for i in by_watchlist["down"]}
        assert all(ATTEMPTS - 1 <= n <= ATTEMPTS for n in per_alert.values()), per_alert
        # The outbox drains: no entry left, no attempt count left.
        for _ in range(50):
            if await redis.xlen(f"{namespace}:whq") == 0:
                break
            await asyncio.sleep(0.1)
        assert await redis.xlen(f"{namespace}:whq") == 0 and await redis.hlen(f"{namespace}:whtries") == 0
