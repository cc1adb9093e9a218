"""Per-campaign funnel KPIs per month, computed offline by a route independent of kpimon, and the events they are
computed from.

Like ``offline_funnel``, this module imports nothing from ``schemas``, ``streams`` or ``alerts``: an integration
test replays :func:`campaign_events` through a real worker and compares the worker's per-campaign months with
:func:`campaign_funnel_by_month` over the same events.

The events
==========
:func:`campaign_events` returns two lists of contract events (plain JSON-ready dicts), deterministic for a seed:

- ``funnel``: leads (``lead.created`` naming a campaign or none, ``lead.qualified`` mql and sql, sometimes a
  second mql later) and their deals (``opportunity.created``, ``opportunity.stage_changed``, ``deal.won``,
  ``deal.lost``; some lost and won later). A deal names its lead's campaign, another one, or none on its
  creation, and its win sometimes names another campaign (which moves the deal there), or names one when the
  creation named none. A few leads are created in the first hours of a UTC month: in America/New_York they
  belong to the month before.
- ``marketing``: ``campaign.launched`` and ``email_campaign.sent`` of the campaigns, plus ``web.session`` and
  ``spend.recorded`` events naming campaign ``web-only`` (no KPI counts them: that campaign has no months).

Every ``occurred_at`` is a whole second in UTC, all distinct within a lead's or a deal's history; no deal is lost
after a win; amounts are USD with two decimals.

The rules (what kpimon's docs/kpis.md states)
=============================================
Only what names a campaign counts in it; a missing campaign counts nowhere (no "unknown" campaign).

- A lead counts in the campaign of its ``lead.created``: ``leads`` in the month of its creation, ``mqls`` and
  ``sqls`` in the month of its first qualification to that stage, and, in the month of its creation,
  ``cohort_opportunities`` if one of its deals (a deal naming it) was created, ``cohort_customers`` if one was
  won.
- A deal counts in the campaign named by the latest (by time, then event id) of its ``opportunity.created`` and
  ``deal.won`` events that name one, never in its lead's: ``opportunities_created`` in the month of its
  creation; its outcome is its latest ``deal.won`` or ``deal.lost`` (by time, then event id): ``deals_won``,
  ``revenue`` (that win's amount) and the cycle (win - creation, seconds) in the month of the win, or
  ``deals_lost`` in the month of the loss.
- ``campaigns_launched`` counts each ``campaign.launched`` and ``email_campaign_sends`` the recipients of each
  ``email_campaign.sent``, in the month of the event.

Months are calendar months in the zone given (kpimon: the config's default zone, for every campaign).

Result: ``dict[(campaign, "YYYY-MM"), CampaignMonth]``, a key only for a month with a non-zero counter; counts
are ``int``, ``revenue`` a ``Decimal``, ratios ``float`` or ``None`` when the denominator is 0.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, TypedDict
from zoneinfo import ZoneInfo

__all__ = ["CAMPAIGNS", "CampaignMonth", "EventLog", "campaign_events", "campaign_funnel_by_month"]

CAMPAIGNS: Final = ("spring-search", "newsletter", "partners|q1", "trade-show")  # an id may hold "|"
WEB_ONLY: Final = "web-only"
TEAMS: Final = ("emea", "amer", "apac")
CHANNELS: Final = ("paid_search", "email", "events", None)
START: Final = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
SPAN: Final = 120 * 86400
HOUR, DAY = 3600, 86400
# The first hours of a UTC month: still the previous month in New York.
MONTH_EDGES: Final = tuple(int(datetime(2026, month, 1, 2, tzinfo=UTC).timestamp()) for month in (2, 3, 4))

Event = dict[str, Any]


class CampaignMonth(TypedDict):
    leads: int
    mqls: int
    sqls: int
    cohort_opportunities: int
    cohort_customers: int
    opportunities_created: int
    deals_won: int
    deals_lost: int
    revenue: Decimal
    cycle_seconds: int
    campaigns_launched: int
    email_campaign_sends: int
    lead_to_mql: float | None
    win_rate: float | None
    opportunity_to_customer: float | None
    average_deal_size: float | None
    sales_cycle: float | None
    lead_cohort_to_customer: float | None


# -- the events --------------------------------------------------------------------------------------------------


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventLog:
    """Contract events numbered ``<prefix>-<n>`` in the order they are added; fields given as None are left out."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[Event] = []

    def add(self, kind: str, at: int, **fields: Any) -> None:
        event = {
            "event_id": f"{self.prefix}-{len(self.items)}",
            "type": kind,
            "occurred_at": _iso(at),
            "source": "test",
        }
        self.items.append(event | {name: value for name, value in fields.items() if value is not None})


def _deal(out: EventLog, rng: random.Random, lead: str, campaign: str | None, team: str, opened: int) -> None:
    deal = f"deal-{lead}"
    others = [c for c in CAMPAIGNS if c != campaign]
    named = rng.choices([campaign, None, rng.choice(others)], weights=(70, 15, 15))[0]
    amount = Decimal(rng.randrange(100_000, 8_000_000)) / 100
    common = {"deal_id": deal, "team": team}
    out.add(
        "opportunity.created", opened, **common, lead_id=lead, amount=str(amount), currency="USD", campaign_id=named
    )
    at = opened + rng.randrange(HOUR, 5 * DAY)
    out.add("opportunity.stage_changed", at, **common, from_stage="discovery", to_stage="proposal")
    outcome = rng.choices(("won", "lost", "lost then won", "open"), weights=(35, 30, 15, 20))[0]
    if outcome == "open":
        return
    at += rng.randrange(HOUR, 30 * DAY)
    if outcome != "won":
        out.add("deal.lost", at, **common, reason=rng.choice(("price", "timing", "competitor")))
        if outcome == "lost":
            return
        at += rng.randrange(HOUR, 20 * DAY)
    moved = rng.choices([None, rng.choice(others), campaign], weights=(70, 15, 15))[0]
    won = Decimal(rng.randrange(100_000, 8_000_000)) / 100
    out.add("deal.won", at, **common, amount=str(won), currency="USD", campaign_id=moved)


def campaign_events(seed: int = 7, leads: int = 400) -> tuple[list[Event], list[Event]]:
    """(funnel events, marketing events) of ``leads`` leads and four campaigns, deterministic for ``seed``."""
    rng = random.Random(seed)
    funnel, marketing = EventLog(f"cmp-{seed}-funnel"), EventLog(f"cmp-{seed}-marketing")
    for index in range(leads):
        lead = f"lead-{seed}-{index}"
        created = MONTH_EDGES[index] if index < len(MONTH_EDGES) else START + rng.randrange(SPAN)
        campaign = rng.choices([*CAMPAIGNS, None], weights=(25, 20, 20, 15, 20))[0]
        team = rng.choice(TEAMS)
        funnel.add("lead.created", created, lead_id=lead, team=team, channel=rng.choice(CHANNELS), campaign_id=campaign)
        if rng.random() >= 0.6:
            continue
        mql = created + rng.randrange(HOUR, 10 * DAY)
        funnel.add("lead.qualified", mql, lead_id=lead, stage="mql")
        if rng.random() < 0.2:  # qualified again later: the first time counts
            funnel.add("lead.qualified", mql + rng.randrange(HOUR, 5 * DAY), lead_id=lead, stage="mql")
        if rng.random() >= 0.6:
            continue
        sql = mql + rng.randrange(HOUR, 10 * DAY)
        funnel.add("lead.qualified", sql, lead_id=lead, stage="sql", team=team)
        if rng.random() < 0.75:
            _deal(funnel, rng, lead, campaign, team, sql + rng.randrange(HOUR, 5 * DAY))
    for campaign in CAMPAIGNS:
        for _ in range(2):
            launched = START + rng.randrange(SPAN)
            marketing.add(
                "campaign.launched", launched, campaign_id=campaign, channel="paid_search", team=rng.choice(TEAMS)
            )
    for month_start in range(START, START + SPAN, 30 * DAY):
        sent = month_start + rng.randrange(30 * DAY)
        marketing.add("email_campaign.sent", sent, campaign_id="newsletter", recipients=rng.randrange(100, 5000))
    for _ in range(20):
        at = START + rng.randrange(SPAN)
        marketing.add(
            "web.session",
            at,
            visitor_id=f"v-{rng.randrange(1000)}",
            pageviews=3,
            duration_seconds=60,
            campaign_id=WEB_ONLY,
        )
        marketing.add(
            "spend.recorded", at + 1, channel="paid_search", campaign_id=WEB_ONLY, amount="10.00", currency="USD"
        )
    return funnel.items, marketing.items


# -- the offline computation -------------------------------------------------------------------------------------


def _instant(event: Mapping[str, Any]) -> int:
    return int(datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00")).timestamp())


def _month(at: int, zone: ZoneInfo) -> str:
    local = datetime.fromtimestamp(at, zone)
    return f"{local.year:04d}-{local.month:02d}"


@dataclass
class _Lead:
    created: tuple[int, str, str | None] | None = None  # (time, event id, campaign) of the latest lead.created
    first: dict[str, int] = field(default_factory=dict)  # stage -> its first time


@dataclass
class _Deal:
    lead: str | None = None
    created: int | None = None
    campaign: tuple[int, str, str] | None = None  # (time, event id, campaign) of the latest event naming one
    outcome: tuple[int, str, str, Decimal] | None = None  # (time, event id, "won" or "lost", amount)


@dataclass
class _Counts:
    values: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    revenue: Decimal = Decimal(0)


def _later(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> bool:
    return current is None or candidate[:2] > current[:2]


@dataclass
class _History:
    leads: defaultdict[str, _Lead] = field(default_factory=lambda: defaultdict(_Lead))
    deals: defaultdict[str, _Deal] = field(default_factory=lambda: defaultdict(_Deal))
    counts: defaultdict[tuple[str, str], _Counts] = field(default_factory=lambda: defaultdict(_Counts))

    def read(self, event: Mapping[str, Any], zone: ZoneInfo) -> None:
        at, kind, campaign, event_id = _instant(event), event["type"], event.get("campaign_id"), event["event_id"]
        if kind == "lead.created":
            lead = self.leads[event["lead_id"]]
            if _later(lead.created, (at, event_id)):
                lead.created = (at, event_id, campaign)
        elif kind == "lead.qualified":
            first = self.leads[event["lead_id"]].first
            first[event["stage"]] = min(first.get(event["stage"], at), at)
        elif kind in ("opportunity.created", "deal.won", "deal.lost"):
            deal = self.deals[event["deal_id"]]
            deal.lead = event.get("lead_id", deal.lead)
            if campaign is not None and _later(deal.campaign, (at, event_id)):
                deal.campaign = (at, event_id, campaign)
            if kind == "opportunity.created":
                deal.created = at if deal.created is None else min(deal.created, at)
            elif _later(deal.outcome, (at, event_id)):
                amount = Decimal(str(event["amount"])) if kind == "deal.won" else Decimal(0)
                deal.outcome = (at, event_id, kind.removeprefix("deal."), amount)
        elif kind == "campaign.launched":
            self.counts[str(campaign), _month(at, zone)].values["campaigns_launched"] += 1
        elif kind == "email_campaign.sent":
            self.counts[str(campaign), _month(at, zone)].values["email_campaign_sends"] += int(event["recipients"])

    def count_deal(self, deal: _Deal, zone: ZoneInfo) -> None:
        if deal.campaign is None:
            return
        campaign = deal.campaign[2]
        if deal.created is not None:
            self.counts[campaign, _month(deal.created, zone)].values["opportunities_created"] += 1
        if deal.outcome is None:
            return
        closed, _, outcome, amount = deal.outcome
        group = self.counts[campaign, _month(closed, zone)]
        if outcome == "lost":
            group.values["deals_lost"] += 1
            return
        if deal.created is None:
            raise ValueError("a won deal without its creation: this module assumes every deal has one")
        group.values["deals_won"] += 1
        group.revenue += amount
        group.values["cycle_seconds"] += max(closed - deal.created, 0)

    def count_lead(self, lead: _Lead, reached: set[str], zone: ZoneInfo) -> None:
        if lead.created is None:
            return
        created, _, campaign = lead.created
        if campaign is None:
            return
        group = self.counts[campaign, _month(created, zone)]
        group.values["leads"] += 1
        group.values["cohort_opportunities"] += "opportunity" in reached
        group.values["cohort_customers"] += "customer" in reached
        for stage, at in lead.first.items():
            self.counts[campaign, _month(at, zone)].values[f"{stage}s"] += 1


def campaign_funnel_by_month(
    events: Iterable[Mapping[str, Any]], zone: ZoneInfo
) -> dict[tuple[str, str], CampaignMonth]:
    """Per (campaign, month in ``zone``) counters and KPIs of ``events`` (see the module docstring)."""
    history = _History()
    seen: set[str] = set()
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            history.read(event, zone)
    reached: defaultdict[str, set[str]] = defaultdict(set)  # lead -> "opportunity", "customer"
    for deal in history.deals.values():
        if deal.lead is not None and deal.created is not None:
            reached[deal.lead].add("opportunity")
        if deal.lead is not None and deal.outcome is not None and deal.outcome[2] == "won":
            reached[deal.lead].add("customer")
        history.count_deal(deal, zone)
    for lead_id, lead in history.leads.items():
        history.count_lead(lead, reached[lead_id], zone)
    counts = history.counts
    return {key: _campaign_month(group) for key, group in sorted(counts.items()) if any(group.values.values())}


def _ratio(numerator: int | Decimal, denominator: int) -> float | None:
    return None if denominator == 0 else float(Fraction(numerator) / denominator)


def _campaign_month(group: _Counts) -> CampaignMonth:
    v = group.values
    won, lost = v["deals_won"], v["deals_lost"]
    return CampaignMonth(
        leads=v["leads"],
        mqls=v["mqls"],
        sqls=v["sqls"],
        cohort_opportunities=v["cohort_opportunities"],
        cohort_customers=v["cohort_customers"],
        opportunities_created=v["opportunities_created"],
        deals_won=won,
        deals_lost=lost,
        revenue=group.revenue,
        cycle_seconds=v["cycle_seconds"],
        campaigns_launched=v["campaigns_launched"],
        email_campaign_sends=v["email_campaign_sends"],
        lead_to_mql=_ratio(v["mqls"], v["leads"]),
        win_rate=_ratio(won, won + lost),
        opportunity_to_customer=_ratio(won, v["opportunities_created"]),
        average_deal_size=_ratio(group.revenue, won),
        sales_cycle=_ratio(v["cycle_seconds"], won),
        lead_cohort_to_customer=_ratio(v["cohort_customers"], v["leads"]),
    )
