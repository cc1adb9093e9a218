"""What survives a full collection is frozen, so the next ones walk only new objects; a thaw gives it all back."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.worker import collector_pacing
from streams.worker.collector_pacing import CollectorPacer, freeze_after_full_collection


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_full_collection_freezes_what_it_leaves_and_young_ones_do_not() -> None:
    state = [{"buckets": {str(minute): {"calls": 1.0}}} for minute in range(1000)]  # long-lived, tracked
    gc.callbacks.append(freeze_after_full_collection)
    try:
        gc.collect(1)
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert gc.get_freeze_count() >= len(state)
    finally:
        gc.callbacks.remove(freeze_after_full_collection)


async def test_the_pacer_installs_the_freeze_thaws_every_period_and_uninstalls_when_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collector_pacing, "THAW_SECONDS", 0.05)
    task = asyncio.ensure_future(CollectorPacer().run())
    await asyncio.sleep(0)
    assert freeze_after_full_collection in gc.callbacks
    gc.collect()
    assert gc.get_freeze_count() > 0
    await asyncio.sleep(0.1)
    assert gc.get_freeze_count() == 0  # thawed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert freeze_after_full_collection not in gc.callbacks


def test_frozen_objects_still_go_when_their_last_reference_does() -> None:
    """Group values have no cycles: reference counting frees them, frozen or not."""

    class Held(dict[str, float]):
        pass

    value = Held(calls=1.0)
    gone = weakref.ref(value)
    gc.freeze()
    del value
    assert gone() is None
