"""Customers, MRR, retention and survey scores over a period, computed offline by a route independent of kpimon,
and generated events to compute them from.

Like ``offline_funnel``, this module imports nothing from ``schemas``, ``streams`` or ``alerts``: tests fold
:func:`customer_events` through kpimon and compare its values with :func:`customer_figures` and
:func:`survey_figures` over the same events.

The rules (what kpimon's docs/kpis.md states)
=============================================
- A subscription event sets its subscription's monthly price from its time on: ``mrr``, or ``amount`` divided by
  1, 3 or 12 for a ``billing_period`` of month, quarter or year, converted at ``rates`` and rounded to the cent
  (``round(float(amount * rate) * 100 / months)``); ``subscription.churned`` sets it to 0. An account's MRR at a
  moment is the sum of its subscriptions' prices set by their latest events before it (by time, then event id).
- A period starts at ``start`` and ends after the last event. Per account: active at the start (MRR before
  ``start`` above 0), active at the end, both (retained). Each change of MRR at or after ``start`` is a movement:
  from 0, new (the account's first time above 0) or reactivated; to 0, churned (the MRR it had); else expansion or
  contraction by the difference.
- Gross margin: the subscriptions whose latest event gives a ``cost`` (monthly, converted as the price) count
  their own; the others ``configured`` (the config's ``gross_margin``). CLV = ARPA (MRR now per customer) x
  gross margin / logo churn rate, none below 20 customers at the start or without churn.
- Net revenue retention: the MRR now of the customers active at the start and now, over the MRR at the start;
  gross revenue retention: (MRR at the start - contraction - churned MRR) / MRR at the start.
- An account counts in ``all``, its owner's team and rep (of its latest subscription event naming a rep) and its
  channel (of its latest subscription event naming one, else ``unknown``).
- Survey answers: per account and kind, an answer counts unless the account's next answer of that kind (by time,
  then event id) is at most 30 days later. It counts in the team and rep it names, else the account owner's,
  and the channel it names, else the account's. Answers without an account count as they are (no channel:
  no channel scope).

Scopes are tuples: ``("all",)``, ``("team", team)``, ``("rep", team, rep)``, ``("channel", channel)``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["CustomerFigures", "SurveyFigures", "customer_events", "customer_figures", "survey_figures"]

Event = dict[str, Any]
ScopeKey = tuple[str, ...]
MONTHS = {"month": 1, "quarter": 3, "year": 12}
REPLACE_SECONDS = 30 * 86_400


@dataclass
class CustomerFigures:
    at_start: int = 0
    now: int = 0
    retained: int = 0
    new: int = 0
    reactivated: int = 0
    churned: int = 0
    mrr_at_start: int = 0  # cents
    mrr_now: int = 0
    retained_mrr_now: int = 0  # MRR now of the customers active at the start and now
    costed_mrr_now: int = 0  # of the subscriptions whose latest event gives a cost
    cost_now: int = 0  # their monthly cost
    movements: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # kind -> cents

    def retention_rate(self) -> float | None:
        return self.retained / self.at_start if self.at_start else None

    def logo_churn_rate(self) -> float | None:
        return (self.at_start - self.retained) / self.at_start if self.at_start else None

    def gross_revenue_retention(self) -> float | None:
        lost = self.movements["contraction"] + self.movements["churned"]
        return (self.mrr_at_start - lost) / self.mrr_at_start if self.mrr_at_start else None

    def arpa(self) -> float | None:
        return self.mrr_now / 100 / self.now if self.now else None

    def gross_margin(self, configured: float) -> float | None:
        profit = self.costed_mrr_now - self.cost_now + (self.mrr_now - self.costed_mrr_now) * configured
        return profit / self.mrr_now if self.mrr_now else None

    def lifetime_value(self, configured: float) -> float | None:
        """ARPA x gross margin / logo churn rate; None below 20 customers at the start or without churn."""
        lost = self.at_start - self.retained
        arpa, margin = self.arpa(), self.gross_margin(configured)
        if self.at_start < 20 or not lost or arpa is None or margin is None:
            return None
        return arpa * margin / (lost / self.at_start)

    def net_revenue_retention(self) -> float | None:
        """The MRR now of the customers active at the start, over the MRR at the start."""
        return self.retained_mrr_now / self.mrr_at_start if self.mrr_at_start else None


@dataclass
class SurveyFigures:
    scores: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # kind -> scores counted

    def nps(self) -> float | None:
        answers = self.scores["nps"]
        if not answers:
            return None
        return 100 * (sum(score >= 9 for score in answers) - sum(score <= 6 for score in answers)) / len(answers)

    def csat(self) -> float | None:
        answers = self.scores["csat"]
        return sum(score >= 4 for score in answers) / len(answers) if answers else None

    def ces(self) -> float | None:
        answers = self.scores["ces"]
        return sum(answers) / len(answers) if answers else None


def _time(event: Event) -> int:
    return int(datetime.fromisoformat(event["occurred_at"]).timestamp())


def _unique(events: Iterable[Event]) -> list[Event]:
    """One copy of each event id, in (time, event id) order."""
    by_id = {event["event_id"]: event for event in events}
    return sorted(by_id.values(), key=lambda event: (_time(event), event["event_id"]))


def _cents(event: Event, rates: Mapping[str, Decimal]) -> int:
    if event["type"] == "subscription.churned":
        return 0
    if "mrr" in event:
        amount, months = Decimal(str(event["mrr"])), 1
    else:
        amount, months = Decimal(str(event["amount"])), MONTHS[event.get("billing_period", "month")]
    return round(float(amount * rates[event["currency"]]) * 100 / months)


def _cost_cents(event: Event, rates: Mapping[str, Decimal]) -> int | None:
    if event["type"] == "subscription.churned" or "cost" not in event:
        return None
    months = 1 if "mrr" in event else MONTHS[event.get("billing_period", "month")]
    return round(float(Decimal(str(event["cost"])) * rates[event["currency"]]) * 100 / months)


def _scopes(team: str | None, rep: str | None, channel: str | None) -> list[ScopeKey]:
    scopes: list[ScopeKey] = [("all",)]
    if team:
        scopes.append(("team", team))
    if team and rep:
        scopes.append(("rep", team, rep))
    if channel:
        scopes.append(("channel", channel))
    return scopes


@dataclass
class _Account:
    events: list[Event] = field(default_factory=list)  # subscription events, in order
    answers: list[Event] = field(default_factory=list)

    def latest(self, name: str) -> str | None:
        named = [event[name] for event in self.events if event.get(name)]
        return named[-1] if named else None

    def owner(self) -> tuple[str | None, str | None]:
        with_rep = [event for event in self.events if event.get("rep_id")]
        return (with_rep[-1].get("team"), with_rep[-1]["rep_id"]) if with_rep else (self.latest("team"), None)


def _accounts(events: Iterable[Event]) -> dict[str, _Account]:
    accounts: dict[str, _Account] = defaultdict(_Account)
    for event in _unique(events):
        if event["type"].startswith("subscription."):
            accounts[event["account_id"]].events.append(event)
        elif event["type"] == "survey.responded" and event.get("account_id"):
            accounts[event["account_id"]].answers.append(event)
    return accounts


def customer_figures(
    events: Iterable[Event], start: int, rates: Mapping[str, Decimal]
) -> dict[ScopeKey, CustomerFigures]:
    """Per scope: customers and MRR at ``start`` and after every event, retained customers and the movements."""
    figures: dict[ScopeKey, CustomerFigures] = defaultdict(CustomerFigures)
    for account in _accounts(events).values():
        if not account.events:
            continue
        prices: dict[str, int] = {}
        costs: dict[str, int | None] = {}
        mrr, mrr_at_start, ever = 0, None, False
        counts: dict[str, int] = defaultdict(int)
        movements: dict[str, int] = defaultdict(int)
        for event in account.events:
            if mrr_at_start is None and _time(event) >= start:
                mrr_at_start = mrr
            subscription = event.get("subscription_id") or event["account_id"]
            prices[subscription] = _cents(event, rates)
            costs[subscription] = _cost_cents(event, rates)
            after = sum(prices.values())
            if _time(event) >= start and after != mrr:
                if mrr == 0:
                    kind = "reactivated" if ever else "new"
                    counts[kind] += 1
                    movements[kind] += after
                elif after == 0:
                    counts["churned"] += 1
                    movements["churned"] += mrr
                elif after > mrr:
                    movements["expansion"] += after - mrr
                else:
                    movements["contraction"] += mrr - after
            ever = ever or after > 0
            mrr = after
        if mrr_at_start is None:
            mrr_at_start = mrr
        team, rep = account.owner()
        for scope in _scopes(team, rep, account.latest("channel") or "unknown"):
            figure = figures[scope]
            figure.at_start += mrr_at_start > 0
            figure.now += mrr > 0
            figure.retained += mrr_at_start > 0 and mrr > 0
            figure.retained_mrr_now += mrr if mrr_at_start > 0 else 0
            figure.mrr_at_start += mrr_at_start
            figure.mrr_now += mrr
            costed = [name for name, cost in costs.items() if cost is not None and prices[name]]
            figure.costed_mrr_now += sum(prices[name] for name in costed)
            figure.cost_now += sum(costs[name] or 0 for name in costed)
            for kind in ("new", "reactivated", "churned"):
                setattr(figure, kind, getattr(figure, kind) + counts[kind])
            for kind, cents in movements.items():
                figure.movements[kind] += cents
    return dict(figures)


def survey_figures(events: Iterable[Event], start: int) -> dict[ScopeKey, SurveyFigures]:
    """Per scope: the survey scores counted from ``start`` on."""
    figures: dict[ScopeKey, SurveyFigures] = defaultdict(SurveyFigures)
    accounts = _accounts(events)
    counted: list[tuple[Event, tuple[str | None, str | None], str | None]] = []
    for account in accounts.values():
        owner, channel = account.owner(), account.latest("channel") or "unknown"
        by_kind: dict[str, list[Event]] = defaultdict(list)
        for answer in account.answers:
            by_kind[answer["kind"]].append(answer)
        for answers in by_kind.values():
            for answer, following in zip(answers, [*answers[1:], None], strict=True):
                if following is None or _time(following) - _time(answer) > REPLACE_SECONDS:
                    named = (answer.get("team"), answer.get("rep_id"))
                    counted.append(
                        (answer, named if named != (None, None) else owner, answer.get("channel") or channel)
                    )
    for answer in _unique(events):
        if answer["type"] == "survey.responded" and not answer.get("account_id"):
            counted.append((answer, (answer.get("team"), answer.get("rep_id")), answer.get("channel")))
    for answer, (team, rep), channel in counted:
        if _time(answer) >= start:
            for scope in _scopes(team, rep, channel):
                figures[scope].scores[answer["kind"]].append(answer["score"])
    return dict(figures)


def customer_events(seed: int, accounts: int, first: int, last: int) -> list[Event]:
    """Subscriptions and survey answers of ``accounts`` accounts between epoch seconds ``first`` and ``last``.

    Accounts of 3 teams, 2 reps each, 4 channels; one or two subscriptions each, monthly, quarterly or yearly, in
    USD or EUR, priced by ``amount`` or ``mrr``; renewals, upgrades and downgrades, churns, returns, a change of
    owner now and then; NPS, CSAT and CES answers, some answered twice within days, and some without account.
    """
    rng = random.Random(seed)
    events: list[Event] = []
    span = last - first

    def emit(event_type: str, at: int, **fields: Any) -> None:
        stamp = datetime.fromtimestamp(min(at, last), UTC).isoformat()
        events.append(
            {"event_id": f"c{len(events)}", "type": event_type, "occurred_at": stamp, "source": "test", **fields}
        )

    for number in range(accounts):
        account = f"acct-{number}"
        team = f"team-{number % 3}"
        rep = f"rep-{number % 3}-{rng.randint(0, 1)}"
        channel = rng.choice(["organic", "paid_search", "referral", "partner"])
        at = first + rng.randint(0, span)
        for index in range(rng.choice([1, 1, 2])):
            subscription = f"{account}-s{index}"
            period = rng.choice(["month", "month", "quarter", "year"])
            currency = rng.choice(["USD", "USD", "EUR"])
            price: dict[str, Any] = (
                {"mrr": rng.randint(20, 500)}
                if rng.random() < 0.3
                else {"amount": f"{rng.randint(1000, 90000) / 100:.2f}", "billing_period": period}
            )
            common = {"account_id": account, "subscription_id": subscription, "currency": currency}
            if rng.random() < 0.4:  # the cost of serving it, on each of its events
                price["cost"] = f"{rng.randint(100, 900) / 100:.2f}"
            owner = {"team": team, "rep_id": rep}
            moment = at + index * rng.randint(0, 40) * 86_400
            emit("subscription.started", moment, **common, **price, **owner, channel=channel, plan="pro", seats=3)
            while moment < last:
                moment += rng.randint(5, 60) * 86_400
                roll = rng.random()
                if roll < 0.45:
                    emit("subscription.renewed", moment, **common, **price)
                elif roll < 0.65:
                    key = "mrr" if "mrr" in price else "amount"
                    factor = rng.choice([0.5, 0.8, 1.25, 2])
                    price = {**price, key: round(float(price[key]) * factor, 2)}
                    if rng.random() < 0.1:
                        rep = f"rep-{number % 3}-{rng.randint(0, 1)}"
                        emit("subscription.changed", moment, **common, **price, team=team, rep_id=rep)
                    else:
                        emit("subscription.changed", moment, **common, **price)
                elif roll < 0.8:
                    emit("subscription.churned", moment, **common)
                    if rng.random() < 0.5:
                        break
                    moment += rng.randint(1, 90) * 86_400
                    emit("subscription.started", moment, **common, **price)
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(["nps", "csat", "ces"])
            low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[kind]
            moment = first + rng.randint(0, span)
            emit("survey.responded", moment, account_id=account, kind=kind, score=rng.randint(low, high))
            if rng.random() < 0.3:  # answered again within days: only the later answer counts
                emit(
                    "survey.responded",
                    moment + rng.randint(0, 5) * 86_400,
                    account_id=account,
                    kind=kind,
                    score=rng.randint(low, high),
                )
    for _ in range(accounts // 10):
        emit("survey.responded", first + rng.randint(0, span), kind="nps", score=rng.randint(0, 10), channel="web")
    return events
