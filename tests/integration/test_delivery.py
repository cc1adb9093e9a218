"""Delivery against the real WebhookSink and the real Redis of deploy/local.

Tests of schedules (backoff, Retry-After, leases) drive a ManualClock shared by the
deliverer and the sink, in steps of STEP seconds; the rate limit, concurrency and one
real 30 s outage run in real time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import formatdate
from itertools import pairwise

import aiohttp
import pytest
from redis.asyncio import Redis

from alerts.delivery import MAX_RETRY_AFTER, Backoff, Deliverer, SessionSource
from alerts.outbox import RedisOutbox
from alerts.rate_gate import MemoryRateGate, RedisRateGate
from alerts.slack import slack_message
from alerts.testing import ManualClock, WebhookSink
from alerts.webhook import notifications_for, webhook_message
from tests.integration.redis_namespace import redis_namespace
from tests.unit.alerts.delivery_examples import ROUTES, T0, alert_event, notification

STEP = 0.25
GRAFANA = "https://grafana.example.com/d/kpimon-sales"
DEFAULT_BACKOFF = Backoff()


@dataclass
class Stack:
    redis: Redis
    namespace: str
    sink: WebhookSink
    outbox: RedisOutbox
    env: dict[str, str]


@asynccontextmanager
async def stack(clock: Callable[[], float] = time.time) -> AsyncIterator[Stack]:
    """Redis (own namespace, cleaned up), a sink on the given clock, the outbox, and every route's URL."""
    async with redis_namespace() as (redis, namespace), WebhookSink(clock=clock) as sink:
        env = {
            "KPIMON_TEST_SLACK_SALES": sink.url("/slack/sales"),
            "KPIMON_TEST_SLACK_EXEC": sink.url("/slack/exec"),
            "KPIMON_TEST_OPS_HOOK": sink.url("/hooks/ops"),
        }
        yield Stack(redis, namespace, sink, RedisOutbox(redis, namespace), env)


def fake_time_deliverer(
    s: Stack, clock: ManualClock, *, draw: Callable[[], float] = random.random, lease_seconds: float | None = None
) -> Deliverer:
    """A deliverer on the fake clock, with a rate gate on the same clock."""
    gate = MemoryRateGate(clock.now)
    return Deliverer(
        s.outbox, ROUTES, s.env, clock.now, aiohttp.ClientSession, gate, draw=draw, lease_seconds=lease_seconds
    )


def real_time_deliverer(
    s: Stack, *, http: SessionSource = aiohttp.ClientSession, backoff: Backoff = DEFAULT_BACKOFF, batch_size: int = 20
) -> Deliverer:
    """A deliverer on the real clock, with the Redis rate gate every worker shares."""
    gate = RedisRateGate(s.redis, s.namespace)
    return Deliverer(s.outbox, ROUTES, s.env, time.time, http, gate, backoff=backoff, batch_size=batch_size)


async def drive(
    deliverer: Deliverer, clock: ManualClock, seconds: float, until: Callable[[], bool] = lambda: False
) -> None:
    """``deliver_due`` every STEP fake seconds for ``seconds`` or until ``until()``."""
    end = clock.now() + seconds
    while clock.now() < end and not until():
        await deliverer.deliver_due()
        clock.advance(STEP)


async def run_until_accepted(s: Stack, deliverers: Sequence[Deliverer], count: int, timeout: float) -> None:
    """Run the deliverers' loops (real time) until the sink accepted ``count`` requests, and half a second more."""
    stop = asyncio.Event()
    running = [asyncio.create_task(deliverer.run(stop, interval=0.02)) for deliverer in deliverers]
    try:
        await s.sink.wait_for(count, timeout=timeout)
        await asyncio.sleep(0.5)  # room for a duplicate to show up
    finally:
        stop.set()
        await asyncio.gather(*running)


async def test_a_30_s_outage_is_retried_with_jittered_backoff_and_delivered_once_after_it() -> None:
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        deliverer = fake_time_deliverer(s, clock, draw=random.Random(7).random)
        event = alert_event()
        assert await s.outbox.enqueue(notifications_for(event, ROUTES, clock.now(), GRAFANA)) == 1
        s.sink.fail(500, seconds=30)
        try:
            await drive(deliverer, clock, 200, until=lambda: bool(s.sink.accepted))
            await drive(deliverer, clock, 120)  # and nothing more afterwards
        finally:
            await deliverer.close()
        *failures, delivered = s.sink.requests
        assert all(request.status == 500 and request.at < T0 + 30 for request in failures)
        assert delivered.status == 200 and T0 + 30 <= delivered.at <= T0 + 30 + 60 + STEP
        assert delivered.json == slack_message(event, GRAFANA)
        assert {request.header("Idempotency-Key") for request in s.sink.requests} == {
            f"{event.idempotency_key}/sales-slack"
        }
        assert {request.header("Content-Type") for request in s.sink.requests} == {"application/json"}
        draws = random.Random(7)
        for attempts, (before, after) in enumerate(pairwise(s.sink.requests)):
            wait = max(draws.random() * min(60.0, 2.0**attempts), 1.0)  # the Slack route's 1 s gate as a floor
            assert wait <= after.at - before.at <= wait + STEP + 1e-6
        assert await s.outbox.pending() == 0
        assert await s.outbox.enqueue(notifications_for(event, ROUTES, clock.now(), GRAFANA)) == 0


async def test_a_real_30_s_outage_loses_nothing() -> None:
    """Real time: the receiver answers 500 for 30 s; the backoff cap is cut to 2 s so the test ends soon after."""
    async with stack() as s:
        deliverer = real_time_deliverer(s, backoff=Backoff(base=1.0, cap=2.0))
        outage_start = time.time()
        s.sink.fail(500, seconds=30)
        await s.outbox.enqueue(notifications_for(alert_event(), ROUTES, time.time(), None))
        await run_until_accepted(s, [deliverer], 1, timeout=40)
        [delivered] = s.sink.accepted
        assert 30 <= delivered.at - outage_start <= 30 + 2 + 1
        assert len(s.sink.accepted) == 1
        assert len(s.sink.requests) >= 10 and all(request.status == 500 for request in s.sink.requests[:-1])
        assert await s.outbox.pending() == 0


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [(5, 5.0), (None, 30.0), (formatdate(T0 + 7, usegmt=True), 7.0)],
    ids=["seconds", "absent", "http-date"],
)
async def test_429_waits_for_retry_after(retry_after: int | str | None, expected_wait: float) -> None:
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        deliverer = fake_time_deliverer(s, clock)
        event = alert_event(routes=("ops-hook",))
        await s.outbox.enqueue(notifications_for(event, ROUTES, clock.now(), None))
        s.sink.fail(429, times=1, retry_after=retry_after, body="rate_limited")
        try:
            await drive(deliverer, clock, 60, until=lambda: bool(s.sink.accepted))
        finally:
            await deliverer.close()
        limited, delivered = s.sink.requests  # nothing in between
        assert (limited.status, delivered.status) == (429, 200)
        assert expected_wait <= delivered.at - limited.at <= expected_wait + STEP
        assert delivered.json == webhook_message(event)
        assert delivered.header("Idempotency-Key") == f"{event.idempotency_key}/ops-hook"


async def test_one_message_per_second_per_slack_webhook_across_two_deliverers() -> None:
    async with stack() as s:
        await s.outbox.enqueue(
            [
                notification(number, route=route, not_before=0.0, created_at=time.time())
                for number in range(3)
                for route in ("sales-slack", "exec-slack")
            ]
        )
        async with aiohttp.ClientSession() as first_http, aiohttp.ClientSession() as second_http:
            deliverers = [real_time_deliverer(s, http=http) for http in (first_http, second_http)]
            await run_until_accepted(s, deliverers, 6, timeout=15)
        requests = s.sink.requests
        assert len(requests) == 6 and all(request.accepted for request in requests)
        for path in ("/slack/sales", "/slack/exec"):
            times = sorted(request.at for request in requests if request.path == path)
            assert len(times) == 3
            assert min(after - before for before, after in pairwise(times)) >= 1.0
        span = max(request.at for request in requests) - min(request.at for request in requests)
        assert span < 4.5  # the two webhooks in parallel: 3 messages each take ~2 s, not 5


async def test_two_deliverers_on_one_outbox_never_send_a_notification_twice() -> None:
    async with stack() as s:
        await s.outbox.enqueue([notification(number, not_before=0.0, created_at=time.time()) for number in range(40)])
        s.sink.fail(500, times=10)
        deliverers = [real_time_deliverer(s, batch_size=5, backoff=Backoff(base=0.05, cap=0.2)) for _ in range(2)]
        await run_until_accepted(s, deliverers, 40, timeout=20)
        accepted = Counter(request.header("Idempotency-Key") for request in s.sink.accepted)
        assert len(accepted) == 40 and set(accepted.values()) == {1}
        assert len(s.sink.requests) == 50
        assert await s.outbox.pending() == 0


async def test_a_notification_claimed_by_a_worker_that_died_is_delivered_once_after_the_lease() -> None:
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        await s.outbox.enqueue([notification(1, route="sales-slack")])
        assert len(await s.outbox.claim_due(clock.now(), 10, lease_seconds=50.0)) == 1  # and the worker dies
        deliverer = fake_time_deliverer(s, clock, lease_seconds=50.0)
        try:
            await drive(deliverer, clock, 50 - STEP)
            assert s.sink.requests == []
            await drive(deliverer, clock, 200)
        finally:
            await deliverer.close()
        [delivered] = s.sink.requests
        assert delivered.accepted and delivered.at == T0 + 50
        assert await s.outbox.pending() == 0


class CrashBeforeAcknowledging(RedisOutbox):
    async def delivered(self, notification_id: str) -> bool:
        raise RuntimeError("killed between the receiver's 2xx and the acknowledgement")


async def test_a_crash_between_2xx_and_acknowledgement_resends_with_the_same_idempotency_key() -> None:
    """The one duplicate window left; generic webhooks can drop the copy by its Idempotency-Key."""
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        await s.outbox.enqueue([notification(1)])
        crashing = Deliverer(
            CrashBeforeAcknowledging(s.redis, s.namespace),
            ROUTES,
            s.env,
            clock.now,
            aiohttp.ClientSession,
            MemoryRateGate(clock.now),
            lease_seconds=50.0,
        )
        with pytest.raises(RuntimeError, match="killed"):
            await crashing.deliver_due()
        await crashing.close()
        deliverer = fake_time_deliverer(s, clock, lease_seconds=50.0)
        try:
            await drive(deliverer, clock, 200)
        finally:
            await deliverer.close()
        first, second = s.sink.requests
        assert second.at - first.at == 50.0
        assert first.header("Idempotency-Key") == second.header("Idempotency-Key") == notification(1).id


async def test_a_permanent_404_goes_to_the_failed_list_with_its_reason() -> None:
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        await s.outbox.enqueue([notification(1, route="sales-slack")])
        s.sink.fail(404, body="no_service")
        deliverer = fake_time_deliverer(s, clock)
        try:
            report = await deliverer.deliver_due()
            await drive(deliverer, clock, 120)
        finally:
            await deliverer.close()
        assert (report.failed, report.pending) == (1, 0)
        assert len(s.sink.requests) == 1
        [failed] = await s.outbox.failed()
        assert (failed.notification.id, failed.reason) == (
            notification(1, route="sales-slack").id,
            "HTTP 404: no_service",
        )
        assert await s.outbox.enqueue([notification(1, route="sales-slack")]) == 0


async def test_a_route_without_its_environment_variable_waits_until_it_is_set() -> None:
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        await s.outbox.enqueue([notification(1)])
        unconfigured = Deliverer(s.outbox, ROUTES, {}, clock.now, aiohttp.ClientSession, MemoryRateGate(clock.now))
        try:
            for _ in range(3):
                assert (await unconfigured.deliver_due()).pending == 1
                clock.advance(60)
        finally:
            await unconfigured.close()
        deliverer = fake_time_deliverer(s, clock)
        try:
            await drive(deliverer, clock, 120, until=lambda: bool(s.sink.accepted))
        finally:
            await deliverer.close()
        assert len(s.sink.requests) == 1 and await s.outbox.pending() == 0


async def test_a_huge_retry_after_is_capped_at_an_hour() -> None:
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        deliverer = fake_time_deliverer(s, clock)
        await s.outbox.enqueue(notifications_for(alert_event(routes=("ops-hook",)), ROUTES, clock.now(), None))
        s.sink.fail(429, times=1, retry_after="999999999", body="rate_limited")
        try:
            await deliverer.deliver_due()
            clock.advance(MAX_RETRY_AFTER - STEP)
            await deliverer.deliver_due()
            assert len(s.sink.requests) == 1
            clock.advance(STEP)
            await deliverer.deliver_due()
        finally:
            await deliverer.close()
        limited, delivered = s.sink.requests
        assert (limited.status, delivered.status) == (429, 200)
        assert delivered.at - limited.at == MAX_RETRY_AFTER


async def test_5xx_are_retried_up_to_the_maximum_age_then_expire_to_the_failed_list() -> None:
    clock = ManualClock(T0)
    async with stack(clock.now) as s:
        gate = MemoryRateGate(clock.now)
        deliverer = Deliverer(
            s.outbox, ROUTES, s.env, clock.now, aiohttp.ClientSession, gate, max_age_seconds=120, draw=lambda: 1.0
        )
        await s.outbox.enqueue([notification(1, route="ops-hook")])
        s.sink.fail(503, seconds=10_000, body="down for maintenance")
        reports = []
        try:
            while clock.now() < T0 + 400:
                reports.append(await deliverer.deliver_due())
                clock.advance(STEP * 4)
        finally:
            await deliverer.close()
        assert all(request.at < T0 + 120 + 60 for request in s.sink.requests)  # none after it expired
        assert sum(report.expired for report in reports) == 1 and await s.outbox.pending() == 0
        [failed] = await s.outbox.failed()
        assert failed.reason == "expired: not delivered within 120 s; last error: HTTP 503: down for maintenance"
