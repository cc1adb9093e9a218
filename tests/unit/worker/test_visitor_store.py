"""streams.worker.visitor_store: PFADD in the background with a bounded backlog, PFCOUNT at scrape, without Redis."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from schemas.catalog import load_catalog
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.core.folding import GroupKey
from streams.core.windows import MINUTE
from streams.metrics.kpi_collector import UNIQUE_VISITORS, KpiCollector
from streams.metrics.visitor_freshness import VisitorWritesCollector
from streams.readout.kpis import ScopeTotals
from streams.readout.visitor_keys import HllAddition, VisitorQuery, window_keys
from streams.worker.visitor_store import VisitorCounter, VisitorRecorder

NOW = 1_700_000_000
FAR = NOW + 86_400


class FakeRedis:
    """Sets of members per key, a pipeline, and a switch to make every call fail."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}
        self.expiry: dict[str, int] = {}
        self.down = False
        self.calls = 0

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    def run(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        self.calls += 1
        if self.down:
            raise RedisConnectionError("Connection refused")
        results: list[Any] = []
        for name, args in commands:
            if name == "pfadd":
                self.sets.setdefault(args[0], set()).update(args[1:])
                results.append(1)
            elif name == "expireat":
                self.expiry[args[0]] = args[1]
                results.append(True)
            else:  # pfcount: the exact size of the union
                results.append(len(set().union(*(self.sets.get(key, set()) for key in args))))
        return results

    async def aclose(self) -> None:
        return None


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self._redis = redis
        self._commands: list[tuple[str, tuple[Any, ...]]] = []

    def pfadd(self, *args: Any) -> None:
        self._commands.append(("pfadd", args))

    def expireat(self, *args: Any) -> None:
        self._commands.append(("expireat", args))

    def pfcount(self, *args: Any) -> None:
        self._commands.append(("pfcount", args))


class AsyncPipeline(FakePipeline):
    async def execute(self) -> list[Any]:
        await asyncio.sleep(0)
        return self._redis.run(self._commands)


class SyncPipeline(FakePipeline):
    def execute(self) -> list[Any]:
        return self._redis.run(self._commands)


class AsyncFakeRedis(FakeRedis):
    def pipeline(self, transaction: bool = True) -> AsyncPipeline:
        return AsyncPipeline(self)


class SyncFakeRedis(FakeRedis):
    def pipeline(self, transaction: bool = True) -> SyncPipeline:
        return SyncPipeline(self)


def additions(**keys: set[str]) -> dict[str, HllAddition]:
    return {key: HllAddition(FAR, set(visitors)) for key, visitors in keys.items()}


async def settle(recorder: VisitorRecorder) -> None:
    await recorder.written()


async def test_additions_are_written_in_the_background_with_their_expiry() -> None:
    redis = AsyncFakeRedis()
    recorder = VisitorRecorder(redis, clock=lambda: NOW)  # type: ignore[arg-type]
    recorder.record(additions(a={"v1", "v2"}, b={"v1"}))
    assert redis.sets == {}  # record() returns at once; the write runs as its own task
    await settle(recorder)
    assert redis.sets == {"a": {"v1", "v2"}, "b": {"v1"}}
    assert redis.expiry == {"a": FAR, "b": FAR}
    assert recorder.pending == 0


async def test_while_redis_is_down_additions_wait_within_a_bound_and_the_rest_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = AsyncFakeRedis()
    redis.down = True
    recorder = VisitorRecorder(redis, max_pending=3, clock=lambda: NOW)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "streams.worker.visitor_store"):
        recorder.record(additions(a={"v1", "v2"}))
        await settle(recorder)
        recorder.record(additions(a={"v2", "v3"}, b={"v4", "v5"}))  # v2 is pending already
        await settle(recorder)
        await recorder.retry()
        await settle(recorder)
    assert recorder.pending == 3 and recorder.dropped == 2
    assert [record.message for record in caplog.records].count(caplog.records[0].message) == 1  # logged once
    assert "unreachable" in caplog.records[0].message
    calls = redis.calls
    recorder.record(additions(c={"v6"}))  # while failing, only the timer retries
    await settle(recorder)
    assert redis.calls == calls and recorder.dropped == 3
    redis.down = False
    await recorder.retry()
    await settle(recorder)
    assert redis.sets == {"a": {"v1", "v2", "v3"}} and recorder.pending == 0


async def test_keys_expired_while_waiting_are_not_written() -> None:
    redis = AsyncFakeRedis()
    clock = [float(NOW)]
    recorder = VisitorRecorder(redis, clock=lambda: clock[0])  # type: ignore[arg-type]
    redis.down = True
    recorder.record({"old": HllAddition(NOW + 10, {"v1"}), "new": HllAddition(FAR, {"v2"})})
    await settle(recorder)
    redis.down, clock[0] = False, NOW + 60
    await recorder.retry()
    await settle(recorder)
    assert redis.sets == {"new": {"v2"}}


async def test_writing_twice_changes_nothing() -> None:
    redis = AsyncFakeRedis()
    recorder = VisitorRecorder(redis, clock=lambda: NOW)  # type: ignore[arg-type]
    for _ in range(2):
        recorder.record(additions(a={"v1", "v2"}))
        await settle(recorder)
    assert redis.sets == {"a": {"v1", "v2"}}


async def test_close_writes_what_is_pending() -> None:
    redis = AsyncFakeRedis()
    recorder = VisitorRecorder(redis, clock=lambda: NOW)  # type: ignore[arg-type]
    recorder.record(additions(a={"v1"}))
    await recorder.close()
    assert redis.sets == {"a": {"v1"}}


CONFIG = KpimonConfig(timezone="UTC")
SOCIAL = Scope(channel="social")


def totals_with_sessions(*scopes: Scope) -> ScopeTotals:
    return ScopeTotals(windows={(scope, "30d"): {"web_sessions": 1} for scope in scopes}, scopes=set(scopes))


def test_counts_are_pfcounts_of_each_window_union() -> None:
    redis = SyncFakeRedis()
    one_hour = window_keys("k", SOCIAL, "1h", NOW, CONFIG.timezone_of(""))
    redis.sets = {one_hour[0]: {"v1", "v2"}, one_hour[-1]: {"v2", "v3"}}
    counter = VisitorCounter(redis, "k", CONFIG)  # type: ignore[arg-type]
    samples = {(scope, window): count for scope, window, count in counter.samples(totals_with_sessions(SOCIAL), NOW)}
    assert samples[SOCIAL, "1h"] == 3  # v2 in both buckets counts once
    assert samples[SOCIAL, "24h"] == samples[SOCIAL, "7d"] == 0  # other resolutions' keys: nothing added
    assert len(samples) == 8
    assert redis.calls == 1  # one pipeline per scrape


def test_no_scope_with_sessions_asks_redis_nothing() -> None:
    redis = SyncFakeRedis()
    assert VisitorCounter(redis, "k", CONFIG).samples(totals_with_sessions(), NOW) == []  # type: ignore[arg-type]
    assert redis.calls == 0


def test_without_redis_no_samples_and_no_new_attempt_for_a_while() -> None:
    redis = SyncFakeRedis()
    redis.down = True
    clock = [0.0]
    counter = VisitorCounter(redis, "k", CONFIG, retry_after=30, clock=lambda: clock[0])  # type: ignore[arg-type]
    query = [VisitorQuery(SOCIAL, "1h", ("a",))]
    assert counter.counts(query) is None and redis.calls == 1
    clock[0] = 29
    assert counter.counts(query) is None and redis.calls == 1
    redis.down, clock[0] = False, 31
    assert counter.counts(query) == [0] and redis.calls == 2


async def test_counts_with_the_asyncio_client_share_the_rest_after_a_failure() -> None:
    redis, async_redis = SyncFakeRedis(), AsyncFakeRedis()
    async_redis.sets = {"a": {"v1"}, "b": {"v1", "v2"}}
    clock = [0.0]
    counter = VisitorCounter(redis, "k", CONFIG, retry_after=30, clock=lambda: clock[0], async_redis=async_redis)  # type: ignore[arg-type]
    queries = [VisitorQuery(SOCIAL, "1h", ("a", "b")), VisitorQuery(SOCIAL, "24h", ("a",))]
    assert await counter.counts_async(queries) == [2, 1] and await counter.counts_async([]) == []
    async_redis.down = True
    assert await counter.counts_async(queries) is None and async_redis.calls == 2
    assert counter.counts(queries) is None and redis.calls == 0  # resting: neither client is asked
    async_redis.down, clock[0] = False, 31
    assert await counter.counts_async(queries) == [2, 1]


def test_the_collector_serves_unique_visitors_with_kpi_labels() -> None:
    key = GroupKey(0, SOCIAL, MINUTE, NOW - NOW % 3600).encode()
    buckets = [(key, {"buckets": {str(NOW - NOW % 60): {"web_sessions": 2}}, "offsets": {}})]
    seen: list[tuple[set[Scope], int]] = []

    def unique_visitors(totals: ScopeTotals, now: int) -> list[tuple[Scope, Any, int]]:
        seen.append((totals.scopes, now))
        return [(SOCIAL, "1h", 2)]

    registry = CollectorRegistry()
    collector = KpiCollector(
        load_catalog(),
        CONFIG,
        buckets=lambda: buckets,  # type: ignore[arg-type,return-value]
        progress=list,
        clock=lambda: NOW + 0.5,
        unique_visitors=unique_visitors,
    )
    registry.register(collector)
    labels = {"window": "1h", "scope": "channel", "team": "", "rep": "", "channel": "social", "campaign": ""}
    assert registry.get_sample_value(UNIQUE_VISITORS[0], labels) == 2
    assert registry.get_sample_value("kpimon_web_sessions", labels) == 2
    assert seen == [({SOCIAL}, NOW)]


async def test_pending_and_dropped_visitor_writes_are_on_metrics() -> None:
    redis = AsyncFakeRedis()
    redis.down = True
    recorder = VisitorRecorder(redis, max_pending=3, clock=lambda: NOW)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(VisitorWritesCollector(lambda: recorder.pending, lambda: recorder.dropped))
    recorder.record(additions(a={"v1", "v2"}, b={"v3", "v4", "v5"}))
    await settle(recorder)
    assert registry.get_sample_value("kpimon_web_unique_visitor_writes_pending") == 3
    assert registry.get_sample_value("kpimon_web_unique_visitor_writes_dropped_total") == 2
    redis.down = False
    await recorder.retry()
    await settle(recorder)
    assert registry.get_sample_value("kpimon_web_unique_visitor_writes_pending") == 0
    assert registry.get_sample_value("kpimon_web_unique_visitor_writes_dropped_total") == 2
