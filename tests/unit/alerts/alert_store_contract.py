"""The contract every alert store keeps; run against the in-memory store here and real Redis in integration."""

from __future__ import annotations

import asyncio

from alerts.model import AlertState
from alerts.store import AlertStore, states_by_key

FIRING = AlertState(status="firing", since=100.0, episode=3, messages=1, notified_at=100.0)


async def check_a_key_never_saved_is_absent(store: AlertStore) -> None:
    assert await store.load(["r/all::::"]) == {}
    assert states_by_key({}, ["r/all::::"]) == {"r/all::::": (AlertState(), 0)}


async def check_save_then_load(store: AlertStore) -> None:
    assert await store.save("r/team:emea:::", FIRING, 0)
    assert await store.load(["r/team:emea:::", "other"]) == {"r/team:emea:::": (FIRING, 1)}


async def check_a_stale_version_loses(store: AlertStore) -> None:
    assert await store.save("k", AlertState(status="pending", since=5.0), 0)
    assert not await store.save("k", FIRING, 0)  # a second writer that read version 0 too
    assert await store.save("k", FIRING, 1)
    assert await store.load(["k"]) == {"k": (FIRING, 2)}


async def check_concurrent_writers_one_wins(store: AlertStore) -> None:
    results = await asyncio.gather(*(store.save("race", FIRING, 0) for _ in range(10)))
    assert sum(results) == 1
    assert (await store.load(["race"]))["race"][1] == 1


CONTRACT = (
    check_a_key_never_saved_is_absent,
    check_save_then_load,
    check_a_stale_version_loses,
    check_concurrent_writers_one_wins,
)
