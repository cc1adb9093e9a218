"""The outbox and rate gate contracts against the in-memory implementations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from alerts.outbox import REMEMBER_SECONDS, MemoryOutbox, Outbox
from alerts.rate_gate import MemoryRateGate, RateGate
from alerts.testing import ManualClock
from tests.unit.alerts import outbox_contract, rate_gate_contract
from tests.unit.alerts.delivery_examples import T0, notification


@pytest.mark.parametrize("check", outbox_contract.CONTRACT, ids=lambda check: check.__name__)
async def test_memory_outbox_keeps_the_contract(check: Callable[[Outbox], Awaitable[None]]) -> None:
    await check(MemoryOutbox())


@pytest.mark.parametrize("check", rate_gate_contract.CONTRACT, ids=lambda check: check.__name__)
async def test_memory_rate_gate_keeps_the_contract(check: Callable[[RateGate], Awaitable[None]]) -> None:
    await check(MemoryRateGate())


async def test_memory_outbox_remembers_finished_ids_for_30_days() -> None:
    clock = ManualClock(T0)
    outbox = MemoryOutbox(clock.now)
    await outbox.enqueue([notification(1), notification(2)])
    await outbox.delivered(notification(1).id)
    await outbox.give_up(notification(2), "HTTP 404")
    clock.advance(REMEMBER_SECONDS - 1)
    assert await outbox.enqueue([notification(1), notification(2)]) == 0
    clock.advance(1)
    assert await outbox.enqueue([notification(1), notification(2)]) == 2


async def test_memory_rate_gate_runs_on_the_clock_it_is_given() -> None:
    clock = ManualClock(T0)
    gate = MemoryRateGate(clock.now)
    assert await gate.acquire("hook", 1.0) == 0.0
    clock.advance(0.25)
    assert await gate.acquire("hook", 1.0) == 0.75
    clock.advance(0.75)
    assert await gate.acquire("hook", 1.0) == 0.0
