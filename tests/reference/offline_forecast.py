"""The weighted-pipeline forecast of a set of deal events, computed offline by a route independent of kpimon, and
the events of the forecast's acceptance test.

Like ``offline_funnel``, this module imports nothing from ``schemas``, ``streams`` or ``alerts``: tests compare
kpimon's per-stage series and its ``kpimon_goal_projection{method="weighted_pipeline"}`` with
:func:`stage_forecast` and :func:`projection` over the same events.

The rules (what schemas/forecast.py and docs/kpis.md state)
===========================================================
Each deal's events (``opportunity.created``, ``opportunity.stage_changed``, ``deal.won``, ``deal.lost``) are
taken once per ``event_id`` and walked in order of (time, event id):

- its stage is that of the latest ``opportunity.stage_changed`` walked so far (``unknown`` before any);
- its outcome is the latest ``deal.won`` or ``deal.lost``; the stage it closed from is its stage when that
  outcome is walked;
- it is open when it was created and has no outcome, or a stage change comes after its outcome; its value is
  the amount of its earliest ``opportunity.created``.

A stage's win rate is, of the deals whose outcome falls in the window, those closed from that stage, the share
won; a stage no deal closed from takes the share won of all the deals closed in the window; with none closed,
there is no projection. Projection = won in the period (value or count) + the sum over stages of what is open
there times the stage's rate.

Amounts are decimals in one currency (no conversion); times are whole seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = ["NO_STAGE", "StageForecast", "acceptance_events", "projection", "stage_forecast"]

NO_STAGE = "unknown"
Event = dict[str, Any]


def _seconds(event: Event) -> int:
    return int(datetime.fromisoformat(event["occurred_at"]).timestamp())


@dataclass
class StageForecast:
    """Per stage: deals won and lost from it in the window, open deals in it now and their value; won in the period."""

    won_from: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lost_from: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    open_deals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    open_value: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    won_in_period: int = 0
    revenue_in_period: Decimal = Decimal(0)


def stage_forecast(events: Iterable[Event], window_start: int, period_start: int) -> StageForecast:
    """The per-stage counts of the deals in ``events``: outcomes from ``window_start``, wins from ``period_start``."""
    by_deal: dict[str, dict[str, Event]] = defaultdict(dict)
    for event in events:
        if "deal_id" in event:
            by_deal[event["deal_id"]].setdefault(event["event_id"], event)
    result = StageForecast()
    for history in by_deal.values():
        stage, created, amount = NO_STAGE, False, None
        outcome: tuple[str, int, Decimal, str] | None = None  # kind, time, amount won, stage closed from
        last_change = last_close = -1
        for number, event in enumerate(sorted(history.values(), key=lambda e: (_seconds(e), e["event_id"]))):
            kind = event["type"]
            if kind == "opportunity.created":
                if not created:
                    amount = Decimal(str(event["amount"]))
                created = True
            elif kind == "opportunity.stage_changed":
                stage, last_change = event["to_stage"], number
            elif kind in ("deal.won", "deal.lost"):
                won = kind == "deal.won"
                outcome = ("won" if won else "lost", _seconds(event), Decimal(str(event.get("amount", 0))), stage)
                last_close = number
        if outcome is not None:
            kind, at, won_amount, closed_from = outcome
            if at >= window_start:
                (result.won_from if kind == "won" else result.lost_from)[closed_from] += 1
            if kind == "won" and at >= period_start:
                result.won_in_period += 1
                result.revenue_in_period += won_amount
        if created and amount is not None and (outcome is None or last_change > last_close):
            result.open_deals[stage] += 1
            result.open_value[stage] += amount
    return result


def projection(forecast: StageForecast, of: str) -> Fraction | None:
    """The period-end projection of revenue (``of="revenue"``) or deals won (``"deals"``), exact; None: no rate."""
    closed = sum(forecast.won_from.values()) + sum(forecast.lost_from.values())
    if closed == 0:
        return None
    overall = Fraction(sum(forecast.won_from.values()), closed)
    opened: Mapping[str, Decimal | int] = forecast.open_value if of == "revenue" else forecast.open_deals
    total = Fraction(forecast.revenue_in_period) if of == "revenue" else Fraction(forecast.won_in_period)
    for stage, value in opened.items():
        won, lost = forecast.won_from.get(stage, 0), forecast.lost_from.get(stage, 0)
        rate = Fraction(won, won + lost) if won + lost else overall
        total += Fraction(value) * rate
    return total


def acceptance_events(now: int, prefix: str, team: str, rep: str) -> list[Event]:
    """12 deals of one team and rep, every outcome in the last hour (``now`` a whole second):

    - negotiation: won 30,000, 20,000 and 10,000, lost 1; 1 open of 40,000
    - proposal:    won 15,000, lost 1;                    1 open of 20,000
    - discovery:   lost 2;                                1 open of 30,000
    - no stage change: 1 open of 10,000

    Lost deals are worth 5,000. A stage change of the 10,000 win comes after the win in the list, with an earlier
    time (out of order), and the 30,000 win comes twice (a copy, same event id).
    """
    events: list[Event] = []

    def add(kind: str, serial: str, seconds_ago: int, **fields: Any) -> None:
        occurred_at = datetime.fromtimestamp(now - seconds_ago, UTC).isoformat()
        envelope = {"event_id": f"{prefix}-{serial}", "type": kind, "occurred_at": occurred_at, "source": "test"}
        events.append({**envelope, "team": team, "rep_id": rep, **fields})

    path = {"discovery": ["discovery"], "proposal": ["discovery", "proposal"]}
    path["negotiation"] = [*path["proposal"], "negotiation"]
    deals = [  # (deal, stage reached or None, outcome, amount)
        ("n1", "negotiation", "won", 30_000),
        ("n2", "negotiation", "won", 20_000),
        ("n3", "negotiation", "won", 10_000),
        ("n4", "negotiation", "lost", 5_000),
        ("n5", "negotiation", "open", 40_000),
        ("p1", "proposal", "won", 15_000),
        ("p2", "proposal", "lost", 5_000),
        ("p3", "proposal", "open", 20_000),
        ("d1", "discovery", "lost", 5_000),
        ("d2", "discovery", "lost", 5_000),
        ("d3", "discovery", "open", 30_000),
        ("u1", None, "open", 10_000),
    ]
    late: list[Event] = []
    for number, (name, reached, outcome, amount) in enumerate(deals):
        deal = {"deal_id": f"{prefix}-{name}"}
        add("opportunity.created", f"{name}-created", 3_000, **deal, amount=amount, currency="EUR")
        before = "new"
        for step, stage in enumerate(path[reached] if reached else []):
            changed = {"from_stage": before, "to_stage": stage}
            add("opportunity.stage_changed", f"{name}-{stage}", 2_400 - 600 * step, **deal, **changed)
            before = stage
        if name == "n3":  # its last stage change is delivered after the win
            late.append(events.pop())
        closed_at = 120 - number  # the outcomes in the last two minutes, one second apart
        if outcome == "won":
            add("deal.won", f"{name}-won", closed_at, **deal, amount=amount, currency="EUR")
        elif outcome == "lost":
            add("deal.lost", f"{name}-lost", closed_at, **deal, reason="no budget")
        events.extend(late)
        late.clear()
    events.append(next(event for event in events if event["event_id"] == f"{prefix}-n1-won"))
    return events
