"""streams.worker.metrics_page: /metrics fed by the pipeline, rendered in slices, equal to KpiCollector's text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from schemas.catalog import load_catalog
from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import routing_key_of
from schemas.scopes import Scope
from streams.core.dedup import MemorySeen
from streams.ingest.batch import Stage
from streams.metrics.kpi_collector import KpiCollector, ProgressCollector
from streams.metrics.loop_lag import LoopLagProbe, RecentMax
from streams.readout.visitor_keys import VisitorQuery, visitor_queries
from streams.worker import metrics_page
from streams.worker.metrics_page import MetricsPage, refresh_delay, render_wait, run_in_slices
from streams.worker.pipeline import IngestPipeline, SourceConsumer, Tables, partition_of
from streams.worker.settings import Settings
from tests.unit.worker.pipeline_fakes import Producer, Topic, nothing

CATALOG = load_catalog()
CONFIG = KpimonConfig(
    timezone="UTC",
    teams={"emea": TeamConfig(timezone="Europe/Berlin")},
    reps={"ann": RepConfig(team="emea")},
    reporting_currency="EUR",
)
SETTINGS = Settings()
T0 = 1_700_000_000


def message(offsets: dict[int, int], event_id: str, at: float, **fields: Any) -> Any:
    """A message on its routing key's partition, at the next offset there (a gap would be held back)."""
    event = {"event_id": event_id, "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(), "source": "test"}
    value = orjson.dumps(event | fields)
    partition = partition_of(routing_key_of(event | fields), SETTINGS.partitions)
    offsets[partition] = offset = offsets.get(partition, -1) + 1
    return SimpleNamespace(topic="crm", partition=partition, offset=offset, value=value, key=None)


class Worker:
    """The pipeline writing into dicts (the tables' local stores) and telling the page, as in the worker."""

    def __init__(self, clock: list[float], visitors: Any = None) -> None:
        self.clock = clock
        seen, buckets, progress, entities = MemorySeen(), {}, {}, {}  # type: ignore[var-annotated]
        self.tables = Tables(seen, buckets, progress, seen, buckets, progress, entities, entities)
        self.registry = CollectorRegistry()
        self.registry.register(ProgressCollector(lambda: list(self.page.progress.items())))
        self.page = MetricsPage(
            CATALOG, CONFIG, self.registry, LoopLagProbe(), clock=lambda: self.clock[0], visitors=visitors
        )
        self.pipeline = IngestPipeline(
            SETTINGS,
            CONFIG,
            self.tables,
            deadletter=Topic(),  # type: ignore[arg-type]
            rekeyed=Topic(),  # type: ignore[arg-type]
            producer=Producer,  # type: ignore[arg-type]
            consumer=SourceConsumer(generation=lambda: 1, rewind=nothing, tails=nothing),
            clock=lambda: self.clock[0],
            observer=self.page,
        )
        self.offsets: dict[int, int] = {}

    async def send(self, *events: tuple[str, float, dict[str, Any]]) -> None:
        for event_id, at, fields in events:
            await self.pipeline.ingest([message(self.offsets, event_id, at, **fields)])

    def expected(self) -> bytes:
        """KpiCollector over the same tables, and the ingest counters: what /metrics showed before."""
        registry = CollectorRegistry()
        tables = self.tables
        registry.register(
            KpiCollector(
                CATALOG,
                CONFIG,
                buckets=lambda: list(tables.local_buckets.items()),
                progress=lambda: list(tables.local_progress.items()),
                clock=lambda: self.clock[0],
                entities=lambda: list(tables.local_entities.items()),
            )
        )
        return generate_latest(registry)


CALL = {"type": "call.logged", "rep_id": "ann", "duration_seconds": 95.5, "outcome": "connected"}
DEAL = {"type": "opportunity.created", "deal_id": "d1", "rep_id": "ann", "amount": 1200.5, "currency": "EUR"}
SESSION = {"type": "web.session", "visitor_id": "v1", "pageviews": 2, "duration_seconds": 30, "channel": "ads"}


async def test_what_the_pipeline_writes_and_evicts_is_what_the_collector_computes() -> None:
    clock = [float(T0)]
    worker = Worker(clock)
    await worker.page.reconcile_groups(lambda: [])
    await worker.send(("c1", T0 - 30, CALL), ("d1", T0 - 20, DEAL), ("s1", T0 - 10, SESSION))
    assert await worker.page.body() == worker.expected()
    clock[0] = T0 + 4 * 3600  # the minute groups of T0 leave the 2 hours of minute buckets: evicted
    later = [f"c{n}" for n in range(2, 60)]
    later = [next(i for i in later if partition_of(i, SETTINGS.partitions) == p) for p in range(SETTINGS.partitions)]
    # every partition's watermark moves on, a minute apart (the pipeline sweeps once per minute of watermark)
    await worker.send(*((event_id, T0 + 3 * 3600 + 61 * n, CALL) for n, event_id in enumerate(later)))
    assert not any("|1m|1699999200" in key for key in worker.tables.local_buckets)
    assert await worker.page.body() == worker.expected()
    await worker.send(("won", T0 + 4 * 3600 - 1, DEAL | {"type": "deal.won"}))
    assert await worker.page.body() == worker.expected()  # the deal is no longer open


async def test_a_recovery_reconciles_with_the_tables() -> None:
    clock = [float(T0)]
    worker = Worker(clock)
    await worker.send(("c1", T0 - 30, CALL), ("d1", T0 - 20, DEAL))
    worker.tables.local_buckets.clear()  # a rebalance took every partition away, behind the page's back
    worker.tables.local_entities.clear()
    await worker.page.reconcile_groups(lambda: list(worker.tables.local_buckets.items()))
    await worker.page.reconcile_entities(lambda: list(worker.tables.local_entities.items()))
    assert await worker.page.body() == worker.expected()
    assert b'rep="ann"' not in await worker.page.body()


async def test_ingest_counters_are_served_as_of_the_last_batch_written_whole() -> None:
    """A batch's progress is durable a stage before its counters: a scrape in between serves neither."""
    clock = [float(T0)]
    worker = Worker(clock)
    await worker.send(("c1", T0 - 30, CALL))
    body = await worker.page.body()
    assert b'kpimon_events_total{type="call.logged"} 1.0' in body and b"kpimon_calls{" in body
    original = worker.page.written
    ingest_counters: dict[str, bytes] = {}

    def written_then_scraped(stage: Stage) -> None:
        original(stage)
        ingest_counters[stage.name] = generate_latest(worker.registry)  # what a scrape would serve now

    worker.page.written = written_then_scraped  # type: ignore[method-assign]
    await worker.send(("c2", T0 - 20, CALL))
    for stage in ("progress", "counters"):  # the batch's calls are not written yet, or not yet whole
        assert b'kpimon_events_total{type="call.logged"} 1.0' in ingest_counters[stage]
    assert b'kpimon_events_total{type="call.logged"} 2.0' in await worker.page.body()
    assert await worker.page.body() == worker.expected()
    worker.page.reconcile_progress([])  # a rebalance took every partition away
    assert b"kpimon_events_total{" not in await worker.page.body()


class Counter:
    """VisitorCounter's asyncio side: seven visitors in every 1h window, none elsewhere; or no Redis."""

    def __init__(self) -> None:
        self.asked: list[VisitorQuery] = []
        self.down = False

    async def counts_async(self, queries: list[VisitorQuery]) -> list[int] | None:
        await asyncio.sleep(0)
        self.asked += queries
        return None if self.down else [7 if query.window == "1h" else 0 for query in queries]


async def test_unique_visitors_are_counted_on_the_loop_and_served_from_the_next_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_page, "VISITOR_REFRESH_SECONDS", 0.0)
    monkeypatch.setattr(metrics_page, "QUERIES_PER_TRIP", 3)
    counter = Counter()
    worker = Worker([float(T0)], visitors=counter)
    await worker.send(("s1", T0 - 10, SESSION))
    assert b"kpimon_web_unique_visitors{" not in await worker.page.body()  # counting started; nothing counted yet
    line = b'kpimon_web_unique_visitors{campaign="",channel="ads",rep="",scope="channel",team="",window="1h"} 7.0'
    for _ in range(100):
        await asyncio.sleep(0.01)
        if line in await worker.page.body():
            break
    assert line in await worker.page.body()
    assert {query.scope for query in counter.asked} == {Scope(), Scope(channel="ads")}  # all, channels, campaigns
    assert counter.asked[:16] == visitor_queries("kpimon", [Scope(channel="ads"), Scope()], T0, CONFIG)  # by key
    counter.down = True
    for _ in range(100):
        await asyncio.sleep(0.01)
        if b"kpimon_web_unique_visitors{" not in await worker.page.body():
            break
    assert b"kpimon_web_unique_visitors{" not in await worker.page.body()  # no Redis: left out


async def test_the_response_is_the_text_written_in_pieces() -> None:
    worker = Worker([float(T0)])
    await worker.send(("c1", T0 - 30, CALL))

    async def handler(request: web.Request) -> web.StreamResponse:
        return await worker.page.respond(request)

    app = web.Application()
    app.router.add_get("/metrics", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST  # as before: prometheus-client's
        assert await response.read() == worker.expected()


async def test_work_in_slices_lets_other_tasks_run_between_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_page, "SLICE_SECONDS", 0.002)
    ran: list[float] = []

    def steps() -> Iterator[None]:
        for _ in range(20):
            time.sleep(0.001)  # a step of work holding the loop
            yield

    async def other() -> None:
        for _ in range(20):
            ran.append(time.perf_counter())
            await asyncio.sleep(0)

    longest = RecentMax()
    started = time.perf_counter()
    held, _ = await asyncio.gather(run_in_slices(steps(), longest), other())
    assert sum(1 for at in ran if at > started + 0.005) >= 3  # the other task ran while the steps went on
    assert 0.002 <= longest.largest(time.monotonic()) < 0.02
    assert 0.02 <= held < time.perf_counter() - started  # the steps' own time, not the other task's


def test_a_long_background_refresh_is_spaced_to_a_tenth_of_the_loop() -> None:
    assert refresh_delay(0.01) == 1.0  # a short one: every second
    assert refresh_delay(0.3) == pytest.approx(2.7)  # 0.3 s of 3 s


def test_the_background_renders_once_per_scrape_interval_shortly_before_the_next_scrape() -> None:
    assert render_wait(100.0, [], None) is None  # nobody scraped yet: nobody reads the text
    assert render_wait(105.0, [100.0], None) == 7.0  # one scrape: an interval of 15 s is assumed, render at 12 s
    assert render_wait(112.5, [100.0], None) == 0.0
    assert render_wait(107.0, [90.0, 100.0], None) == 1.0  # scraped every 10 s: render from 8 s after the last
    assert render_wait(108.0, [90.0, 100.0], 99.0) == 0.0
    assert render_wait(109.0, [90.0, 100.0], 108.0) is None  # rendered since the last scrape: not again
    assert render_wait(500.0, [90.0, 100.0], 108.0) is None  # scrapes stopped: no more renders


async def test_after_a_scrape_the_background_renders_ahead_of_the_next_one() -> None:
    worker = Worker([float(T0)])
    page = worker.page
    await page.body()
    first = render_wait(time.monotonic(), page._scrapes, page._rendered_at)
    assert first is not None and first > 0  # the scrape's own render does not count as the one ahead
    await page.body()
    assert render_wait(time.monotonic() + 60, page._scrapes, page._rendered_at) == 0.0


async def test_a_background_refresh_without_render_leaves_the_text_to_the_scrape() -> None:
    clock = [float(T0)]
    worker = Worker(clock)
    await worker.send(("c1", T0 - 30, CALL))
    await worker.page.refresh(render=False)
    assert b"kpimon_calls{" not in b"".join(worker.page.exposition.parts())  # taken in, not rendered
    assert await worker.page.body() == worker.expected()  # the scrape renders it


async def test_metrics_answer_503_until_the_first_recovery_and_from_then_on_serve() -> None:
    """Before the tables are restored the totals are empty: serving them would record every KPI as zero."""
    restored = [False]
    page = MetricsPage(CATALOG, CONFIG, CollectorRegistry(), LoopLagProbe(), recovered=lambda: restored[0])

    async def handler(request: web.Request) -> web.StreamResponse:
        return await page.respond(request)

    app = web.Application()
    app.router.add_get("/metrics", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        restored[0] = True
        assert (await client.get("/metrics")).status == 200
        restored[0] = False  # a later rebalance's recovery: the last totals are still served
        assert (await client.get("/metrics")).status == 200
