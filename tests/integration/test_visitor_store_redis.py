"""streams.worker.visitor_store against the real Redis: HyperLogLogs written in the background, counted per window."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from schemas.config import KpimonConfig
from schemas.events import WebSession, parse_event
from schemas.scopes import Scope
from streams.readout.kpis import ScopeTotals
from streams.readout.visitor_keys import STANDARD_ERROR, visitor_additions
from streams.worker.visitor_store import VisitorCounter, VisitorRecorder
from tests.integration.redis_namespace import REDIS_URL, redis_namespace
from tests.integration.support import free_port

CONFIG = KpimonConfig(timezone="UTC")
ALL, SEARCH = Scope(), Scope(channel="paid_search")


def session(visitor: str, at: float, bot: bool = False) -> WebSession:
    data = {"event_id": f"e-{visitor}-{at}", "type": "web.session", "source": "test", "visitor_id": visitor}
    data |= {"occurred_at": datetime.fromtimestamp(at, UTC).isoformat(), "pageviews": 2, "duration_seconds": 30}
    event = parse_event(orjson.dumps(data | {"channel": "paid_search", "bot": bot}))
    assert isinstance(event, WebSession)
    return event


def counts(app_id: str, now: float) -> dict[tuple[Scope, str], int]:
    counter = VisitorCounter(SyncRedis.from_url(REDIS_URL, socket_timeout=2), app_id, CONFIG)
    totals = ScopeTotals(windows={(scope, "1h"): {"web_sessions": 1} for scope in (ALL, SEARCH)}, scopes={ALL})
    return {(scope, window): count for scope, window, count in counter.samples(totals, int(now))}


@pytest.mark.integration
async def test_visitors_of_every_bucket_are_counted_once_per_window_within_the_error_bound() -> None:
    now = time.time()
    async with redis_namespace("hll") as (redis, app_id):
        recorder = VisitorRecorder(Redis.from_url(REDIS_URL), clock=lambda: now)
        # 5,000 visitors over the last 50 minutes, each seen twice (minutes apart); bots left out
        sessions = [session(f"v{n}", now - 60 * (n % 50) - 1) for n in range(5000)]
        sessions += [session(f"v{n}", now - 60 * (n % 7) - 1) for n in range(5000)]
        sessions += [session(f"bot{n}", now - 5, bot=True) for n in range(300)]
        for index in range(0, len(sessions), 1000):  # in batches, as the pipeline hands them over
            recorder.record(visitor_additions(app_id, sessions[index : index + 1000], CONFIG, now))
        await recorder.written()
        first = counts(app_id, now)
        for window in ("1h", "24h", "7d", "30d", "today", "month"):
            assert abs(first[ALL, window] - 5000) <= 3 * STANDARD_ERROR * 5000, window
            assert first[SEARCH, window] == first[ALL, window]  # the same visitors
        keys = [key async for key in redis.scan_iter(match=f"{app_id}:hll:*")]
        assert {key.decode().split(":")[-2] for key in keys} == {"1m", "15m", "1h", "1d", "1mo"}
        ttls = [await redis.ttl(key) for key in keys]
        assert all(0 < ttl <= 800 * 86_400 + 32 * 86_400 + 3600 for ttl in ttls)

        recorder.record(visitor_additions(app_id, sessions, CONFIG, now))  # everything again: no change
        await recorder.written()
        assert counts(app_id, now) == first
        await recorder.close()


@pytest.mark.integration
async def test_a_handful_is_exact() -> None:
    now = time.time()
    async with redis_namespace("hll") as (_, app_id):
        recorder = VisitorRecorder(Redis.from_url(REDIS_URL), clock=lambda: now)
        recorder.record(
            visitor_additions(app_id, [session(f"v{n % 9}", now - 120 * n) for n in range(20)], CONFIG, now)
        )
        await recorder.written()
        assert counts(app_id, now)[ALL, "1h"] == 9
        await recorder.close()


@pytest.mark.integration
async def test_without_redis_the_additions_wait_and_no_count_is_served() -> None:
    now = time.time()
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    recorder = VisitorRecorder(Redis.from_url(unreachable, socket_connect_timeout=0.5), clock=lambda: now)
    started = time.monotonic()
    recorder.record(visitor_additions("nowhere", [session("v1", now - 5)], CONFIG, now))
    assert time.monotonic() - started < 0.05  # record() never waits for Redis
    await asyncio.sleep(1)
    assert recorder.pending == 10  # overall and paid_search, five resolutions: kept for a retry
    counter = VisitorCounter(SyncRedis.from_url(unreachable, socket_connect_timeout=0.5), "nowhere", CONFIG)
    totals = ScopeTotals(windows={(ALL, "1h"): {"web_sessions": 1}}, scopes={ALL})
    assert counter.samples(totals, int(now)) == []
    await recorder.close()
