"""A batch's writes share the loop: a long stage yields every few milliseconds, so scrapes and fetches go on."""

from __future__ import annotations

import asyncio
import itertools
import time

from streams.worker.pipeline import LoopTurns


async def test_a_long_loop_of_writes_lets_other_tasks_run_between_its_slices() -> None:
    ran: list[float] = []
    done = asyncio.Event()

    async def writes() -> None:
        turn = LoopTurns(0.005)
        for _ in range(40):
            time.sleep(0.001)  # one write holding the loop
            await turn()
        done.set()

    async def other() -> None:
        while not done.is_set():
            ran.append(time.perf_counter())
            await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(writes(), other())
    during = [at for at in ran if at > started + 0.004]
    assert len(during) >= 4  # the other task ran between slices, not only once the writes were done
    assert max(later - earlier for earlier, later in itertools.pairwise(ran)) < 0.02  # no 40 ms hold


async def test_short_loops_do_not_yield() -> None:
    turn = LoopTurns(10.0)
    switched: list[str] = []

    async def other() -> None:
        switched.append("other")

    task = asyncio.ensure_future(other())
    for _ in range(100):
        await turn()
    assert switched == []  # the writes ran without giving the loop away
    await task
