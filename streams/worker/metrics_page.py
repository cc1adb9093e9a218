"""A worker's /metrics: the KPI families from text kept up to date in steps, the rest from prometheus-client.

The pipeline tells the page every group and entity state it writes or evicts (``written``,
``evicted``): the totals note the newest groups (a dict assignment each) and the open deals move at
once. A refresh then compares the noted groups with the ones the totals hold, moves the windows the
clock moved, and re-renders the families whose counters changed; a scrape refreshes and sends the
text of every family, then the goals (rebuilt at every refresh: their pace moves with the clock),
then the small collectors (ingest counters, loop lag, Faust, alerts), part by part. All of that runs
in steps on the event loop, yielding after every ``SLICE_SECONDS``, so ingest never waits for a
scrape longer than one step; a background refresh keeps the work left to a scrape small. It runs
every ``RENDER_INTERVAL_SECONDS``, or less often when it is long: the time it held the loop is at most
``RENDER_SHARE`` of the time between two refreshes, so with many scopes it cannot take the worker's
CPU from the ingest (a scrape still refreshes first: what it serves is never older). It takes in
the groups written every time, but renders the text only once per scrape interval, shortly before
the next scrape is due (``render_wait``). After every
table recovery (start, rebalance) the totals are reconciled with the stored state, in steps too, and
scrapes wait for that.

Until the first table recovery of the process is done (and the totals reconciled with it),
/metrics answers 503 with ``Retry-After``: the totals are not the stored state's yet, and a scrape
then would serve KPIs of zero, which Prometheus would record and alert rules would read as a drop
(``up`` is 0 for that scrape instead). Later recoveries (rebalances) keep serving.

Unique visitors need Redis: a scrape serves the last count and starts a new one, unless one is
still running (or started less than ``VISITOR_REFRESH_SECONDS`` ago), with the asyncio client,
``QUERIES_PER_TRIP`` PFCOUNTs per round trip: the loop waits for Redis, never blocks on it. So a
value is one scrape late, and two scrapes a second apart serve two counts taken that far apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import chain

from aiohttp.web import BaseRequest, Response, StreamResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from schemas.catalog import WINDOW_NAMES, Catalog
from schemas.config import KpimonConfig
from streams.core.folding import BucketGroup, ProgressValue
from streams.entities.registry import EntityState
from streams.ingest.batch import Stage
from streams.metrics.exposition import KpiExposition
from streams.metrics.goal_exposition import GoalExposition
from streams.metrics.loop_lag import LoopLagProbe, RecentMax
from streams.readout.kpis import ScopeTotals
from streams.readout.open_pipeline import OpenPipeline
from streams.readout.visitor_keys import SESSIONS_COUNTER, VISITOR_SCOPE_KINDS, VisitorQuery, scopes_with_sessions
from streams.readout.visitor_query_cache import VisitorQueryCache
from streams.readout.window_totals import WindowTotals
from streams.worker.visitor_store import VisitorCounter

log = logging.getLogger(__name__)
SLICE_SECONDS = 0.002  # a slice of /metrics work holds the loop about this long (its last step can overshoot it)
RENDER_INTERVAL_SECONDS = 1.0
RENDER_SHARE = 0.1  # of the loop's time, the background refresh takes at most this share
RENDER_AHEAD_SHARE = 0.8  # the background renders once per scrape interval, this far into it
FIRST_SCRAPE_INTERVAL_SECONDS = 15.0  # assumed after the first scrape, until a second one measures it
MIN_RENDER_WAIT_SECONDS = 0.05
VISITOR_REFRESH_SECONDS = 0.5  # the least time between two counts of unique visitors
QUERIES_PER_TRIP = 25  # PFCOUNTs per round trip to Redis: packing a pipeline is one step of the loop
RECOVERING_RETRY_SECONDS = 1
WRITE_BYTES = 256 * 1024  # the response is written in pieces this big (one write of 30 MiB held the loop 200 ms)


async def run_in_slices(
    steps: Iterable[object], longest: RecentMax, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Take ``steps``, yielding to the loop whenever a slice has run for ``SLICE_SECONDS``; record each slice.

    Returns the time the slices held the loop, in seconds (the time others ran in between is not in it).
    """
    held = 0.0
    started = clock()
    for _ in steps:
        elapsed = clock() - started
        if elapsed >= SLICE_SECONDS:
            longest.record(time.monotonic(), elapsed)
            held += elapsed
            await asyncio.sleep(0)
            started = clock()
    elapsed = clock() - started
    longest.record(time.monotonic(), elapsed)
    return held + elapsed


def render_wait(now: float, scrapes: Sequence[float], rendered_at: float | None) -> float | None:
    """Seconds until the background refresh renders the text (0: now), None: not before another scrape. Pure.

    It renders once per scrape interval (the time between the last two scrapes), ``RENDER_AHEAD_SHARE``
    of the way to the next scrape, so that scrape re-renders only what changed since: rendering every
    second re-rendered every family of a busy worker 15 times per 15 s scrape, which cost more CPU than
    counting the events. Before any scrape, and after one render past a scrape that no other followed
    (Prometheus stopped), nothing is rendered: nobody reads the text until the next scrape renders it.
    """
    if not scrapes or (rendered_at is not None and rendered_at >= scrapes[-1]):
        return None
    interval = scrapes[-1] - scrapes[-2] if len(scrapes) > 1 else FIRST_SCRAPE_INTERVAL_SECONDS
    return max(0.0, scrapes[-1] + RENDER_AHEAD_SHARE * interval - now)


def refresh_delay(held_seconds: float) -> float:
    """The wait before the next background refresh: the last one's loop time is ``RENDER_SHARE`` of the cycle."""
    return max(RENDER_INTERVAL_SECONDS, held_seconds / RENDER_SHARE - held_seconds)


class MetricsPage:
    def __init__(
        self,
        catalog: Catalog,
        config: KpimonConfig,
        registry: CollectorRegistry,
        probe: LoopLagProbe,
        clock: Callable[[], float] = time.time,
        visitors: VisitorCounter | None = None,
        app_id: str = "kpimon",
        recovered: Callable[[], bool] = lambda: True,
    ) -> None:
        self.totals = WindowTotals(config, int(clock()))
        self.pipeline = OpenPipeline(config)
        self.exposition = KpiExposition(catalog, self.totals, self.pipeline)
        self.goals = GoalExposition(config, lambda: self.totals.scopes)
        self.registry = registry
        self.probe = probe
        self._clock = clock
        self._visitors = visitors
        self._visitor_queries = VisitorQueryCache(app_id, config)
        self._visitors_counted_at = -VISITOR_REFRESH_SECONDS
        self._counting: asyncio.Task[None] | None = None
        self.visitors_counted_at: float | None = None  # the wall time at which the served count was started
        self._lock = asyncio.Lock()  # one render or reconcile at a time
        self._recovered = recovered  # whether the tables' recovery (and its reconciles) has completed
        self._serving = False  # once true, for good: a rebalance's recovery keeps the last totals served
        # The ingest counters per partition as of the last batch written whole (``ProgressCollector`` serves them):
        # a batch's progress is durable a stage before its counters, and a scrape in between would count its
        # events in kpimon_events_total with their KPIs missing.
        self.progress: dict[str, ProgressValue] = {}
        self._progress_written: dict[str, ProgressValue] = {}
        self._scrapes: deque[float] = deque(maxlen=2)  # when the last two scrapes came (time.monotonic)
        self._rendered_at: float | None = None  # when the text was last rendered

    # -- fed by the pipeline (streams.worker.pipeline.StateObserver) ------------------------------------------------

    def written(self, stage: Stage) -> None:
        if stage.groups:
            self.totals.apply(stage.groups)
        if stage.entities:
            self.pipeline.apply(stage.entities)
        if stage.progress:
            self._progress_written.update(stage.progress)

    def evicted(self, group_keys: Sequence[str]) -> None:
        self.totals.apply(dict.fromkeys(group_keys))

    def batch_written(self) -> None:
        """The batch's ingest counters are served from now on, with the KPIs its later stages changed."""
        self.progress.update(self._progress_written)
        self._progress_written.clear()

    # -- after a table recovery ------------------------------------------------------------------------------------

    async def reconcile_groups(self, stored: Callable[[], Iterable[tuple[str, BucketGroup]]]) -> None:
        """Make the totals equal to the stored groups (read once the lock is held: nothing applied is lost)."""
        async with self._lock:
            await run_in_slices(self.totals.reconcile(stored()), self.probe.render_steps)

    def reconcile_progress(self, stored: Iterable[tuple[str, ProgressValue]]) -> None:
        self.progress = dict(stored)
        self._progress_written.clear()

    async def reconcile_entities(self, stored: Callable[[], Iterable[tuple[str, EntityState]]]) -> None:
        async with self._lock:
            await run_in_slices(self.pipeline.reconcile(stored()), self.probe.render_steps)

    # -- rendering -------------------------------------------------------------------------------------------------

    async def refresh(self, render: bool = True) -> float:
        """Take in the groups written, move the windows to now and re-render what changed; the loop time it took.

        Without ``render``, only the first two: the groups noted since the last refresh stay few.
        """
        async with self._lock:
            now = int(self._clock())
            steps = [self.totals.sync(), self.totals.advance(now)]
            if render:
                steps += [self.exposition.render(), self.exposition.assemble(), self.goals.render(now)]
                self._rendered_at = time.monotonic()
            return await run_in_slices(chain.from_iterable(steps), self.probe.render_steps)

    async def refresh_forever(self) -> None:
        delay = RENDER_INTERVAL_SECONDS
        while True:
            await asyncio.sleep(delay)
            held = await self.refresh(render=render_wait(time.monotonic(), self._scrapes, self._rendered_at) == 0)
            delay = refresh_delay(held)
            wait = render_wait(time.monotonic(), self._scrapes, self._rendered_at)
            if wait is not None:  # wake up to render ahead of the next scrape
                delay = max(MIN_RENDER_WAIT_SECONDS, min(delay, wait))

    async def parts(self) -> list[bytes]:
        """The whole /metrics text, in parts (one per KPI family, then the other collectors')."""
        await self.refresh()
        self._scrapes.append(time.monotonic())  # after its own render: the next render ahead is still to come
        self._count_visitors_soon()
        started = time.perf_counter()
        parts = [*self.exposition.parts(), *self.goals.parts(), generate_latest(self.registry)]
        self.probe.render_steps.record(time.monotonic(), time.perf_counter() - started)
        return parts

    async def body(self) -> bytes:
        return b"".join(await self.parts())

    def serving(self) -> bool:
        """Whether the first recovery of the tables is done: before it, the totals are not the state's."""
        self._serving = self._serving or self._recovered()
        return self._serving

    async def respond(self, request: BaseRequest) -> StreamResponse:
        """The /metrics response, written part by part (the client's reading paces it, not the loop)."""
        if not self.serving():
            return Response(
                status=503,
                text="kpimon worker: restoring its tables; /metrics is served once they are\n",
                headers={"Retry-After": str(RECOVERING_RETRY_SECONDS)},
            )
        parts = await self.parts()
        response = StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        response.content_length = sum(len(part) for part in parts)
        await response.prepare(request)
        started = time.perf_counter()
        for part in parts:
            view = memoryview(part)
            for offset in range(0, len(view), WRITE_BYTES):  # a big write copies megabytes at once
                await response.write(view[offset : offset + WRITE_BYTES])  # waits only when the socket is full
                elapsed = time.perf_counter() - started
                if elapsed >= SLICE_SECONDS:
                    self.probe.render_steps.record(time.monotonic(), elapsed)
                    await asyncio.sleep(0)
                    started = time.perf_counter()
        await response.write_eof()
        return response

    def _count_visitors_soon(self) -> None:
        now = time.monotonic()
        busy = self._counting is not None and not self._counting.done()
        if self._visitors is None or busy or now - self._visitors_counted_at < VISITOR_REFRESH_SECONDS:
            return
        self._visitors_counted_at = now
        self._counting = asyncio.get_running_loop().create_task(self._count_visitors(self._visitors))

    async def _count_visitors(self, counter: VisitorCounter) -> None:
        started = self._clock()
        now = int(started)
        sessions = {
            (scope, window): {SESSIONS_COUNTER: value}
            for scope in self.totals.scopes
            if scope.kind in VISITOR_SCOPE_KINDS
            for window in WINDOW_NAMES
            if (value := self.totals.value(scope, window, SESSIONS_COUNTER))
        }
        scopes = scopes_with_sessions(ScopeTotals(windows=sessions, scopes=set()))
        queries: list[VisitorQuery] = []
        await run_in_slices(self._visitor_queries.build(scopes, now, queries), self.probe.render_steps)
        counts: list[int] = []
        for first in range(0, len(queries), QUERIES_PER_TRIP):
            found = await counter.counts_async(queries[first : first + QUERIES_PER_TRIP])
            if found is None:  # Redis does not answer: no unique visitors on /metrics (VisitorCounter logs it)
                self.exposition.set_visitors([])
                self.visitors_counted_at = None
                return
            counts += found
        self.exposition.set_visitors(
            [(query.scope, query.window, count) for query, count in zip(queries, counts, strict=True)]
        )
        self.visitors_counted_at = started
