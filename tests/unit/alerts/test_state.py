"""alerts.state: the alert state machine, step by step and as properties over random histories."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.conditions import Check, Verdict
from alerts.model import AlertState, EventKind, Status
from alerts.state import Step, advance, event_sequence

BREACHED = Check("breached", 0.2, "below 0.2")
CLEAR = Check("clear", 0.2, "below 0.2")
UNKNOWN = Check("unknown", 0.2, "below 0.2")
CHECKS = {"breached": BREACHED, "clear": CLEAR, "unknown": UNKNOWN}

OK = AlertState()
PENDING = AlertState(status="pending", since=100, episode=2, messages=1, notified_at=50)
FIRING = AlertState(status="firing", since=100, episode=3, messages=1, notified_at=100)
FIRING_UNTOLD = AlertState(status="firing", since=100, episode=3, messages=0, notified_at=None)
RESOLVED = AlertState(status="resolved", since=150, episode=3, messages=2, notified_at=120)


@pytest.mark.parametrize(
    ("state", "verdict", "now", "for_seconds", "repeat", "muted", "expected"),
    [
        # ok / resolved
        (OK, "clear", 200, 60, None, False, Step(OK)),
        (OK, "unknown", 200, 60, None, False, Step(OK)),
        (OK, "breached", 200, 60, None, False, Step(AlertState("pending", 200), ("ok", "pending"))),
        (OK, "breached", 200, 0, None, False, Step(AlertState("firing", 200, 1, 1, 200), ("ok", "firing"), "firing")),
        (OK, "breached", 200, 0, None, True, Step(AlertState("firing", 200, 1, 0, None), ("ok", "firing"))),
        (RESOLVED, "clear", 200, 60, None, False, Step(RESOLVED)),
        (RESOLVED, "unknown", 200, 60, None, False, Step(RESOLVED)),
        (
            RESOLVED,
            "breached",
            200,
            60,
            None,
            False,
            Step(AlertState("pending", 200, 3, 2, 120), ("resolved", "pending")),
        ),
        (
            RESOLVED,
            "breached",
            200,
            0,
            None,
            False,
            Step(AlertState("firing", 200, 4, 1, 200), ("resolved", "firing"), "firing"),
        ),
        # pending
        (PENDING, "breached", 159, 60, None, False, Step(PENDING)),  # 59 s of the 60
        (
            PENDING,
            "breached",
            160,
            60,
            None,
            False,
            Step(AlertState("firing", 160, 3, 1, 160), ("pending", "firing"), "firing"),
        ),
        (PENDING, "breached", 160, 60, None, True, Step(AlertState("firing", 160, 3, 0, None), ("pending", "firing"))),
        (PENDING, "clear", 160, 60, None, False, Step(AlertState("ok", 160, 2, 1, 50), ("pending", "ok"))),
        (PENDING, "unknown", 500, 60, None, False, Step(PENDING)),
        # firing
        (FIRING, "breached", 200, 60, None, False, Step(FIRING)),
        (FIRING, "unknown", 200, 60, None, False, Step(FIRING)),
        (FIRING, "breached", 199, 60, 100, False, Step(FIRING)),  # 99 s since the last message
        (FIRING, "breached", 200, 60, 100, False, Step(AlertState("firing", 100, 3, 2, 200), event="repeat")),
        (FIRING, "unknown", 200, 60, 100, False, Step(AlertState("firing", 100, 3, 2, 200), event="repeat")),
        (FIRING, "breached", 200, 60, 100, True, Step(FIRING)),  # quiet hours hold the repeat
        (
            FIRING,
            "clear",
            200,
            60,
            100,
            False,
            Step(AlertState("resolved", 200, 3, 1, 100), ("firing", "resolved"), "resolved"),
        ),
        (
            FIRING,
            "clear",
            200,
            60,
            100,
            True,
            Step(AlertState("resolved", 200, 3, 1, 100), ("firing", "resolved"), "resolved"),
        ),
        # firing, but nobody told yet (it began in quiet hours)
        (FIRING_UNTOLD, "breached", 300, 60, None, True, Step(FIRING_UNTOLD)),
        (FIRING_UNTOLD, "breached", 300, 60, None, False, Step(AlertState("firing", 100, 3, 1, 300), event="firing")),
        (FIRING_UNTOLD, "unknown", 300, 60, None, False, Step(AlertState("firing", 100, 3, 1, 300), event="firing")),
        (
            FIRING_UNTOLD,
            "clear",
            300,
            60,
            None,
            False,
            Step(AlertState("resolved", 300, 3, 0, None), ("firing", "resolved")),
        ),
    ],
)
def test_advance(
    state: AlertState,
    verdict: Verdict,
    now: float,
    for_seconds: float,
    repeat: float | None,
    muted: bool,
    expected: Step,
) -> None:
    assert advance(state, CHECKS[verdict], now, for_seconds, repeat, muted) == expected


@pytest.mark.parametrize(
    ("step", "sequence"),
    [
        (Step(AlertState("firing", 0, 1, 1, 0), ("ok", "firing"), "firing"), 0),
        (Step(AlertState("firing", 0, 1, 3, 0), None, "repeat"), 2),
        (Step(AlertState("resolved", 0, 1, 3, 0), ("firing", "resolved"), "resolved"), 3),
    ],
)
def test_event_sequence(step: Step, sequence: int) -> None:
    assert event_sequence(step) == sequence


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    seconds_later: float
    muted: bool


EVALUATIONS = st.lists(
    st.builds(
        Evaluation,
        verdict=st.sampled_from(["breached", "clear", "unknown"]),
        seconds_later=st.sampled_from([0.0, 1.0, 30.0, 60.0, 300.0, 3600.0]),
        muted=st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=400)
@given(
    evaluations=EVALUATIONS,
    for_seconds=st.sampled_from([0.0, 60.0, 600.0]),
    repeat=st.sampled_from([None, 300.0, 3600.0]),
)
def test_histories_keep_the_invariants(evaluations: list[Evaluation], for_seconds: float, repeat: float | None) -> None:
    state, now = AlertState(), 1_000_000.0
    events: list[tuple[int, EventKind, int]] = []  # (episode, kind, sequence)
    for evaluation in evaluations:
        now += evaluation.seconds_later
        before: Status = state.status
        step = advance(state, CHECKS[evaluation.verdict], now, for_seconds, repeat, evaluation.muted)
        after = step.state
        # the transition names the change of status, and only a change
        assert step.transition == ((before, after.status) if before != after.status else None)
        if evaluation.verdict == "unknown":
            assert step.transition is None
        if evaluation.verdict == "clear":
            assert after.status in ("ok", "resolved")
        # episodes grow by one exactly when firing begins
        assert after.episode == state.episode + (1 if before != "firing" and after.status == "firing" else 0)
        if evaluation.muted:
            assert step.event in (None, "resolved")
        if step.event is not None:
            events.append((after.episode, step.event, event_sequence(step)))
            assert after.notified_at == now or step.event == "resolved"
        if before == "pending" and after.status == "firing":
            assert now - state.since >= for_seconds
        if before != "pending" and after.status == "firing" and before != "firing":
            assert for_seconds == 0
        state = after

    keys = [f"{episode}/{kind}/{sequence}" for episode, kind, sequence in events]
    assert len(keys) == len(set(keys)), "idempotency keys repeat"
    assert [episode for episode, _, _ in events] == sorted(episode for episode, _, _ in events)
    for episode in {episode for episode, _, _ in events}:
        kinds = [kind for number, kind, _ in events if number == episode]
        sequences = [sequence for number, _, sequence in events if number == episode]
        # at most one "firing", first; "resolved" only after it and last; sequences count the messages before
        assert kinds.count("firing") <= 1
        assert kinds[0] == "firing", "a repeat or resolved message before anyone was told it fired"
        assert "resolved" not in kinds[:-1]
        assert sequences == list(range(len(kinds)))  # resolved: the number of messages before it
