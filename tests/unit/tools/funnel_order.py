"""A check shared by the simulator's tests: every funnel step comes after the step it follows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from streams.tools.simulation.model import SimulatedEvent

Step = tuple[str, str]  # ("lead" | "mql" | "sql" | "deal", lead or deal id)


def occurred(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["occurred_at"])).timestamp()


def _steps(event: dict[str, object]) -> tuple[Step | None, Step | None]:
    """(the step ``event`` follows, the step it is), either None."""
    lead, deal = str(event.get("lead_id")), str(event.get("deal_id"))
    match event["type"]:
        case "lead.created":
            return None, ("lead", lead)
        case "lead.qualified":
            return ("lead" if event["stage"] == "mql" else "mql", lead), (str(event["stage"]), lead)
        case "opportunity.created":
            return ("sql", lead), ("deal", deal)
        case "opportunity.stage_changed" | "deal.won" | "deal.lost":
            return ("deal", deal), None
    return None, None


def funnel_times(events: Iterable[SimulatedEvent], *, began_earlier: bool = False) -> dict[Step, float]:
    """The first time of each lead, lead stage and deal, asserting each comes after the step it follows.

    ``began_earlier``: the events are a window of a world that began before it, so a step may follow one
    outside the window (a lead created before it): such steps are not checked, nor kept.
    """
    first_seen: dict[Step, float] = {}
    for _, event in events:
        moment = occurred(event)
        before, this = _steps(event)
        if before is not None and before not in first_seen:
            assert began_earlier, f"{event} follows {before}, never seen"
            continue
        if before is not None:
            assert first_seen[before] < moment, event
        if this is not None:
            first_seen.setdefault(this, moment)
    return first_seen
