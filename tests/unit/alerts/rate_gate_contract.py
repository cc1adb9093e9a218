"""The contract every rate gate keeps; run against MemoryRateGate here and RedisRateGate against real Redis.

Real time, intervals of a few tenths of a second: the Redis gate keeps time by the server.
"""

from __future__ import annotations

import asyncio

from alerts.rate_gate import RateGate


async def check_the_first_acquire_passes_and_the_next_waits(gate: RateGate) -> None:
    assert await gate.acquire("hook-a", 0.5) == 0.0
    wait = await gate.acquire("hook-a", 0.5)
    assert 0.3 < wait <= 0.5


async def check_gates_of_different_webhooks_are_independent(gate: RateGate) -> None:
    assert await gate.acquire("hook-a", 0.5) == 0.0
    assert await gate.acquire("hook-b", 0.5) == 0.0


async def check_the_gate_frees_after_the_interval(gate: RateGate) -> None:
    assert await gate.acquire("hook-a", 0.15) == 0.0
    await asyncio.sleep(0.2)
    assert await gate.acquire("hook-a", 0.15) == 0.0


async def check_hold_restarts_the_interval(gate: RateGate) -> None:
    assert await gate.acquire("hook-a", 0.2) == 0.0
    await asyncio.sleep(0.1)
    await gate.hold("hook-a", 0.4)  # the request was answered now: 0.4 s from here
    await asyncio.sleep(0.15)  # past the first interval
    assert await gate.acquire("hook-a", 0.2) > 0.1


async def check_concurrent_acquires_let_one_through(gate: RateGate) -> None:
    waits = await asyncio.gather(*(gate.acquire("hook-a", 1.0) for _ in range(10)))
    assert sorted(waits)[0] == 0.0
    assert all(wait > 0 for wait in sorted(waits)[1:])


CONTRACT = (
    check_the_first_acquire_passes_and_the_next_waits,
    check_gates_of_different_webhooks_are_independent,
    check_the_gate_frees_after_the_interval,
    check_hold_restarts_the_interval,
    check_concurrent_acquires_let_one_through,
)
