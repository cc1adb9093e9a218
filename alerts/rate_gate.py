"""A gate per webhook that lets one request through per interval, across deliverers.

``acquire`` takes the gate for ``interval`` seconds (0.0) or says how long it stays
taken; ``hold`` restarts the interval after a request has been answered, so two
requests to one webhook arrive at least ``interval`` apart even when the first one
was slow to send. ``RedisRateGate`` (``SET key NX PX``) is shared by every worker on
one Redis and keeps time by the Redis server; ``MemoryRateGate`` keeps it by the
clock it is given. Both pass one contract suite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis


class RateGate(Protocol):
    async def acquire(self, key: str, interval: float) -> float:
        """0.0 when the gate was free and is now taken for ``interval`` s; else the seconds until it frees."""

    async def hold(self, key: str, interval: float) -> None:
        """Take the gate for ``interval`` s from now, whoever holds it."""


class MemoryRateGate:
    """The gate in a dict, on ``clock`` (give it the deliverer's clock in tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._free_at: dict[str, float] = {}

    async def acquire(self, key: str, interval: float) -> float:
        now = self._clock()
        free_at = self._free_at.get(key, now)
        if free_at > now:
            return free_at - now
        self._free_at[key] = now + interval
        return 0.0

    async def hold(self, key: str, interval: float) -> None:
        self._free_at[key] = self._clock() + interval


# KEYS[1] the gate; ARGV[1] the interval in ms. 0 when taken now, else the ms until the gate frees.
_ACQUIRE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  return 0
end
return math.max(ttl, 1)
"""


def _milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisRateGate:
    """Gates as Redis keys ``<namespace>:rate:v1:<key>`` that expire after the interval."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self.prefix = f"{namespace}:rate:v1"
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self, key: str, interval: float) -> float:
        wait_ms = int(await self._acquire(keys=[f"{self.prefix}:{key}"], args=[_milliseconds(interval)]))
        return wait_ms / 1000.0

    async def hold(self, key: str, interval: float) -> None:
        await self._redis.set(f"{self.prefix}:{key}", "1", px=_milliseconds(interval))
