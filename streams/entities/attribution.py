"""Revenue attribution: a won deal's revenue split over the touches that led to it, three ways. Pure.

A touch is an interaction of the person behind the deal's lead, up to the win: the lead's
creation (its channel and campaign), a web session (not a bot's) and an email click (channel
``email``, its campaign). The models, side by side:

- **first touch**: all of it to the earliest touch;
- **last touch**: all of it to the latest touch at or before the win;
- **linear**: an equal share to every touch.

Touches are ordered by (time, id), so ties are decided the same way on every worker and in
every replay. A win without any touch goes to channel ``unknown`` (no campaign), so each
model adds up to the won revenue: none is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streams.core.records import UNKNOWN_CHANNEL, Fact
from streams.entities.deals_leads import DealState

FIRST, LAST, LINEAR = "attributed_revenue_first", "attributed_revenue_last", "attributed_revenue_linear"
MODEL_COUNTERS = (FIRST, LAST, LINEAR)

Place = tuple[str, str | None]  # (channel, campaign or None)


@dataclass(frozen=True)
class Touch:
    at: int  # epoch seconds
    touch_id: str  # the event's id: unique per touch, and the tie-break between touches of the same second
    channel: str
    campaign: str | None = None

    @property
    def place(self) -> Place:
        return self.channel, self.campaign


NO_TOUCH = Touch(0, "", UNKNOWN_CHANNEL)


def split_revenue(amount: float, touches: Iterable[Touch]) -> dict[Place, dict[str, float]]:
    """Each model's share of ``amount`` per (channel, campaign); a touch given twice (same id) counts once."""
    unique = {touch.touch_id: touch for touch in touches}
    ordered = sorted(unique.values(), key=lambda touch: (touch.at, touch.touch_id)) or [NO_TOUCH]
    shares: dict[Place, dict[str, float]] = {}
    shares.setdefault(ordered[0].place, {})[FIRST] = amount
    shares.setdefault(ordered[-1].place, {})[LAST] = amount
    per_place: dict[Place, int] = {}
    for touch in ordered:
        per_place[touch.place] = per_place.get(touch.place, 0) + 1
    for place, count in per_place.items():
        shares.setdefault(place, {})[LINEAR] = amount * count / len(ordered)
    return shares


def attribution_facts(won_at: int, amount: float, touches: Iterable[Touch]) -> list[Fact]:
    """The attributed revenue of one win, at the win's time, under each touch's channel and campaign."""
    eligible = [touch for touch in touches if touch.at <= won_at]
    return [
        Fact(won_at, None, None, channel, counters, campaign)
        for (channel, campaign), counters in split_revenue(amount, eligible).items()
    ]


def leadless_deal_facts(deal_id: str, state: DealState) -> list[Fact]:
    """A won deal that names no lead has no person to follow: its own channel and campaign are its one touch.

    Its channel is ``unknown`` when none of its events named one, as for its revenue. Once an event
    names its lead, the lead's person attributes it instead.
    """
    outcome, attributes = state["outcome"], state["attributes"]
    if outcome is None or outcome["kind"] != "won" or "lead" in attributes:
        return []
    channel = str(attributes["channel"][0]) if "channel" in attributes else UNKNOWN_CHANNEL
    campaign = str(attributes["campaign"][0]) if "campaign" in attributes else None
    touch = Touch(outcome["at"], f"deal:{deal_id}", channel, campaign)
    return attribution_facts(outcome["at"], outcome["amount"], [touch])
