"""Unique visitors in Redis: PFADD after each batch (async, never in the way of ingest), PFCOUNT at scrape.

``VisitorRecorder`` takes a batch's additions (``streams.readout.visitor_keys.visitor_additions``)
and writes them in the background, one write at a time: the ingest never waits for Redis
and never fails because of it. While Redis is unreachable it logs once, keeps the
additions not yet written (merged per key, at most ``max_pending`` visitors in all) and
retries on a timer; visitors beyond that bound, and those pending when a worker is
killed, are never counted. PFADD is idempotent, so writing an addition twice (a retry
after a partial write, a batch replayed after a crash) changes nothing.

``VisitorCounter`` reads the counts with short timeouts: with a synchronous client for a
prometheus-client collector (every PFCOUNT in one pipeline), or with the asyncio client for the
worker's /metrics page, which sends a few dozen PFCOUNTs at a time (``counts_async``). When
Redis does not answer, the series are left out, and Redis is not asked again for
``retry_after`` seconds so that scrapes are not slowed down by timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from schemas.catalog import WindowName
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.readout.kpis import ScopeTotals
from streams.readout.visitor_keys import HllAddition, VisitorQuery, scopes_with_sessions, visitor_queries

log = logging.getLogger(__name__)
MAX_PENDING_VISITORS = 200_000  # (key, visitor) pairs kept while Redis is unreachable
KEYS_PER_WRITE = 500
FINAL_FLUSH_SECONDS = 2.0


class VisitorRecorder:
    def __init__(
        self,
        redis: Redis,
        *,
        max_pending: int = MAX_PENDING_VISITORS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._max_pending = max_pending
        self._clock = clock
        self._pending: dict[str, HllAddition] = {}
        self._pending_count = 0
        self._writing: asyncio.Task[None] | None = None
        self._failing = False
        self.dropped = 0  # visitors never written: the backlog was full
        self._dropped_before_failing = 0

    @property
    def pending(self) -> int:
        """(key, visitor) pairs waiting to be written."""
        return self._pending_count

    def record(self, additions: Mapping[str, HllAddition]) -> None:
        """Queue a batch's additions and start writing them, unless Redis is failing (then the timer retries)."""
        self._merge(additions)
        if not self._failing:
            self._start()

    async def retry(self) -> None:
        """Write what is pending (a timer calls it: the retries while Redis is unreachable)."""
        self._start()

    async def written(self) -> None:
        """Wait until the write in progress, if any, has ended (written, or given up until the next retry)."""
        if self._writing is not None:
            await asyncio.shield(self._writing)

    async def close(self) -> None:
        """Try a last write of what is pending, briefly, and close the client."""
        self._start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.written(), FINAL_FLUSH_SECONDS)
        if self._pending_count:
            log.warning("unique visitors: %d additions not written to Redis at shutdown", self._pending_count)
        await self._redis.aclose()

    def _merge(self, additions: Mapping[str, HllAddition]) -> None:
        for key, addition in additions.items():
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = HllAddition(addition.expire_at)
            pending.expire_at = max(pending.expire_at, addition.expire_at)
            for visitor in addition.visitors:
                if visitor in pending.visitors:
                    continue
                if self._pending_count >= self._max_pending:
                    self.dropped += 1
                    continue
                pending.visitors.add(visitor)
                self._pending_count += 1
            if not pending.visitors:
                del self._pending[key]

    def _start(self) -> None:
        if self._pending and (self._writing is None or self._writing.done()):
            self._writing = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending, self._pending_count = self._pending, {}, 0
            now = self._clock()
            items = [(key, addition) for key, addition in batch.items() if addition.expire_at > now]
            for index in range(0, len(items), KEYS_PER_WRITE):
                chunk = items[index : index + KEYS_PER_WRITE]
                try:
                    await self._write(chunk)
                except (RedisError, OSError) as exc:
                    self._merge(dict(items[index:]))  # back in the queue, within its bound
                    if not self._failing:
                        self._dropped_before_failing = self.dropped
                        log.warning(
                            "unique visitors: Redis is unreachable (%s); keeping up to %d additions to retry, "
                            "visitors beyond that are not counted",
                            exc,
                            self._max_pending,
                        )
                    self._failing = True
                    return
            if self._failing:
                dropped = self.dropped - self._dropped_before_failing
                log.warning("unique visitors: Redis is reachable again (%d visitors dropped meanwhile)", dropped)
            self._failing = False

    async def _write(self, chunk: Sequence[tuple[str, HllAddition]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, addition in chunk:
            pipe.pfadd(key, *sorted(addition.visitors))
            pipe.expireat(key, addition.expire_at)
        await pipe.execute()


VisitorSample = tuple[Scope, WindowName, int]


class VisitorCounter:
    def __init__(
        self,
        redis: SyncRedis,
        app_id: str,
        config: KpimonConfig,
        *,
        retry_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        async_redis: Redis | None = None,
    ) -> None:
        self._redis = redis
        self._async_redis = async_redis
        self._app_id = app_id
        self._config = config
        self._retry_after = retry_after
        self._clock = clock
        self._down_until: float | None = None

    def samples(self, totals: ScopeTotals, now: int) -> list[VisitorSample]:
        """Unique visitors per window of the overall, channel and campaign scopes with sessions; [] without Redis."""
        queries = visitor_queries(self._app_id, scopes_with_sessions(totals), now, self._config)
        counts = self.counts(queries)
        if counts is None:
            return []
        return [(query.scope, query.window, count) for query, count in zip(queries, counts, strict=True)]

    def counts(self, queries: Iterable[VisitorQuery]) -> list[int] | None:
        """PFCOUNT of each query's keys, in one pipeline; None when Redis does not answer."""
        queries = list(queries)
        if not queries or self._resting():
            return None if queries else []
        try:
            counts = [int(count) for count in _pfcounts(self._redis, queries).execute()]
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        return self._answered(counts)

    async def counts_async(self, queries: Sequence[VisitorQuery]) -> list[int] | None:
        """``counts`` with the asyncio client (``async_redis``): the event loop waits for Redis, never blocks on it."""
        if not queries or self._resting() or self._async_redis is None:
            return None if queries else []
        try:
            counts = [int(count) for count in await _pfcounts(self._async_redis, queries).execute()]
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        return self._answered(counts)

    def _resting(self) -> bool:
        return self._down_until is not None and self._clock() < self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._down_until is None:
            log.warning("unique visitors left out of /metrics: Redis is unreachable (%s)", exc)
        self._down_until = self._clock() + self._retry_after

    def _answered(self, counts: list[int]) -> list[int]:
        if self._down_until is not None:
            log.warning("unique visitors back on /metrics: Redis is reachable again")
        self._down_until = None
        return counts


def _pfcounts(redis: Any, queries: Iterable[VisitorQuery]) -> Any:
    """A pipeline (of either client) with the PFCOUNT of each query's keys."""
    pipe = redis.pipeline(transaction=False)
    for query in queries:
        pipe.pfcount(*query.keys)
    return pipe
