"""The pacer freezes what is alive, so full collections skip it, and gives it back to them every hour."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from streams.worker.collector_pacing import THAW_SECONDS, CollectorPacer, FrozenObjectsCollector


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_step_freezes_what_is_alive_and_an_hour_later_thaws_it() -> None:
    now = [0.0]
    pacer = CollectorPacer(clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(FrozenObjectsCollector())
    state = [{"buckets": {str(minute): {"calls": 1.0}}} for minute in range(1000)]  # long-lived, tracked

    now[0] = 60.0
    pacer.step()
    assert gc.get_freeze_count() >= len(state)
    assert registry.get_sample_value("kpimon_gc_frozen_objects") == gc.get_freeze_count()

    now[0] = THAW_SECONDS
    pacer.step()
    assert gc.get_freeze_count() == 0

    now[0] = THAW_SECONDS + 60.0
    pacer.step()  # freezing again after the thaw
    assert gc.get_freeze_count() >= len(state)


def test_frozen_objects_still_go_when_their_last_reference_does() -> None:
    """Group values have no cycles: reference counting frees them, frozen or not."""

    class Held(dict[str, float]):
        pass

    value = Held(calls=1.0)
    gone = weakref.ref(value)
    gc.freeze()
    del value
    assert gone() is None
