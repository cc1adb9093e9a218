"""The alert state machine of one (rule, scope): a pure step from the last state and a check to the next.

::

    ok / resolved --breached--> pending --breached for `for`--> firing --clear--> resolved
          |                        |                            ^  |
          |                        +--clear--> ok               |  +--breached/unknown--> firing
          +--breached, `for` = 0--------------------------------+        (repeat messages)

``unknown`` changes nothing: ok, pending and resolved stay; firing stays firing.

Messages of an episode (one stay in firing): the first, ``firing``, is sent on
entering firing, or, when that happened in quiet hours (``muted``), at the
first evaluation that is not muted while still firing. ``repeat`` follows every
``repeat_interval_seconds`` while firing (never while muted). ``resolved`` is
sent on leaving firing only if a message of the episode was sent (people who
were never told it fired are not told it stopped).

For the engine: build ``AlertEvent`` with ``episode = step.state.episode`` and
``sequence`` = the messages of the episode before this event, which is
``step.state.messages - 1`` for firing and repeat (0 for firing, 1, 2, ... for
repeats) and ``step.state.messages`` for resolved; ``event_sequence(step)``
computes it. ``since`` of a firing state is when it started firing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alerts.conditions import Check
from alerts.model import AlertState, EventKind, Status


@dataclass(frozen=True)
class Step:
    """The next state, the status change for the audit trail (None when the status stays), the event to send."""

    state: AlertState
    transition: tuple[Status, Status] | None = None
    event: EventKind | None = None


def event_sequence(step: Step) -> int:
    """``AlertEvent.sequence`` of ``step.event``: the messages of the episode sent before it."""
    if step.event == "resolved":
        return step.state.messages
    return step.state.messages - 1


def _notify(state: AlertState, now: float, repeat_interval_seconds: float | None, muted: bool) -> Step:
    """A firing state's message due at ``now``, if any."""
    if muted:
        return Step(state)
    if state.messages == 0:
        kind: EventKind = "firing"
    elif (
        repeat_interval_seconds is not None
        and state.notified_at is not None
        and now - state.notified_at >= repeat_interval_seconds
    ):
        kind = "repeat"
    else:
        return Step(state)
    return Step(replace(state, messages=state.messages + 1, notified_at=now), event=kind)


def _start_firing(state: AlertState, now: float, muted: bool) -> Step:
    firing = AlertState(status="firing", since=now, episode=state.episode + 1, messages=0, notified_at=None)
    step = _notify(firing, now, None, muted)
    return replace(step, transition=(state.status, "firing"))


def advance(
    state: AlertState,
    check: Check,
    now: float,
    for_seconds: float,
    repeat_interval_seconds: float | None,
    muted: bool,
) -> Step:
    """The state after one evaluation at ``now`` whose condition gave ``check``; ``muted`` in quiet hours."""
    verdict = check.verdict
    if state.status == "firing":
        if verdict == "clear":
            resolved = replace(state, status="resolved", since=now)
            return Step(resolved, ("firing", "resolved"), "resolved" if state.messages > 0 else None)
        return _notify(state, now, repeat_interval_seconds, muted)
    if state.status == "pending":
        if verdict == "clear":
            return Step(replace(state, status="ok", since=now), ("pending", "ok"))
        if verdict == "breached" and now - state.since >= for_seconds:
            return _start_firing(state, now, muted)
        return Step(state)
    # ok or resolved
    if verdict != "breached":
        return Step(state)
    if for_seconds <= 0:
        return _start_firing(state, now, muted)
    return Step(replace(state, status="pending", since=now), (state.status, "pending"))
