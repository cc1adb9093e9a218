"""One board's refresh loop: poll Prometheus, rebuild the screens, hand every change to the page's streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from schemas.config import KpimonConfig
from streams.board.freshness import SourceTracker, TargetState
from streams.board.prometheus_api import PrometheusApi, PrometheusUnavailable
from streams.board.queries import board_queries
from streams.board.screens import BoardData, Results, board_screens, per_rep
from streams.board.ticker import RepKey, Win, new_wins
from streams.board.views import BoardView

log = logging.getLogger(__name__)
TICKER_LENGTH = 8


class BoardFeed:
    """Polls the job's targets every ``poll_interval`` s; reads the sums again when a scrape finished."""

    def __init__(
        self,
        view: BoardView,
        config: KpimonConfig,
        prometheus: PrometheusApi,
        job: str,
        poll_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view
        self._config = config
        self._prometheus = prometheus
        self._job = job
        self._poll_interval = poll_interval
        self._clock = clock
        self._queries = board_queries(view)
        self._sources = SourceTracker()
        self._seen_scrape = 0.0  # the newest scrape seen in the targets
        self._reads_due = 0  # reads still to do for it
        self._results: Results | None = None
        self._read_at = 0.0
        self._as_of: float | None = None
        self._wins_reference: dict[RepKey, tuple[float, float]] | None = None
        self._wins: deque[Win] = deque(maxlen=TICKER_LENGTH)
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._latest: bytes | None = None
        self._problem: str | None = None
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        if self._latest is not None:
            queue.put_nowait(self._latest)
        self._subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"board-feed-{self.view.key or 'all'}")
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._subscribers.discard(queue)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._subscribers:
            started = time.monotonic()
            message = await self.refresh()
            if message != self._latest:
                self._latest = message
                for queue in self._subscribers:
                    if queue.full():
                        queue.get_nowait()  # a slow page gets the newest state, not a backlog
                    queue.put_nowait(message)
            await asyncio.sleep(max(0.0, self._poll_interval - (time.monotonic() - started)))

    async def refresh(self) -> bytes:
        """One poll: the page's next message (the same bytes as before when nothing changed)."""
        problem: str | None
        detail = ""
        try:
            targets = [
                TargetState(target.url, target.healthy, target.last_scrape)
                for target in await self._prometheus.targets(self._job)
            ]
            freshness = self._sources.observe(targets)
            problem, detail = freshness.problem, ", ".join(freshness.down)
            if freshness.newest_scrape != self._seen_scrape:
                # Prometheus may list a scrape a moment before its samples are queryable: read twice
                self._seen_scrape, self._reads_due = freshness.newest_scrape, 2
            if freshness.complete and self._reads_due:
                self._read(await self._prometheus.query_all(self._queries), targets)
                self._reads_due -= 1
        except PrometheusUnavailable as exc:
            problem, detail = "Prometheus not answering", str(exc)
        if problem != self._problem:  # logged once per change, not once per poll
            self._problem = problem
            log.warning("board %s: %s %s", self.view.key or "all", problem or "all workers answering", detail)
        return self._message(problem)

    def _read(self, results: Results, targets: list[TargetState]) -> None:
        now = self._clock()
        today = {
            key: (deals, per_rep(results, "wins_today:revenue").get(key, 0.0))
            for key, deals in per_rep(results, "wins_today:deals_won").items()
        }
        self._wins.extendleft(reversed(new_wins(self._wins_reference, today, now)))
        self._wins_reference = today
        self._results = results
        self._read_at = now
        self._as_of = self._sources.as_of(targets)

    def _message(self, problem: str | None) -> bytes:
        screens: list[dict[str, Any]] = []
        if self._results is not None:
            data = BoardData(self._results, list(self._wins), self._config, self._read_at)
            screens = board_screens(self.view, data)
            for screen in screens:
                for tile in screen["tiles"]:
                    tile["as_of"] = self._as_of
        return orjson.dumps({"complete": problem is None, "problem": problem, "screens": screens})
