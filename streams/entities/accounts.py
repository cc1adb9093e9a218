"""Accounts: their subscriptions, the customers and MRR they make, and their survey answers. Pure.

An account's events are keyed ``account:<account_id>``: ``subscription.started``, ``.renewed``,
``.changed`` and ``.churned`` of any of its subscriptions, and its ``survey.responded`` answers.
The state keeps every subscription event as a point (time, event id, subscription, MRR from then
on in cents of the reporting currency, 0 once churned; its monthly cost if given) and every
answer. What the account counts is a function of that state (``account_facts``), as for a deal:

- **Movements.** Walking the points in event time (ties by event id), the account's MRR is the
  sum of its subscriptions' latest prices. Each change of it is one movement, at its time: from 0
  to more, ``new`` the first time and ``reactivated`` after a churn (and one new or reactivated
  customer); from more to 0, ``churned`` (one churned customer); otherwise ``expansion`` or
  ``contraction``. Every movement is a whole number of cents, so the movements of any period add
  up exactly to the change in MRR over it.
- **Stock.** An active account counts ``stock_customers`` 1 and its MRR (``stock_mrr_cents``, and
  the cost of the subscriptions that give one) once, at the time of its latest subscription event.
  The windows read these ``stock_`` counters over every retained bucket (``streams.core.windows``,
  the ``lifetime`` span): the customers and MRR after every event kpimon has. A subscription renews
  at least once a year, so an active account always has an event within the 800 days the month
  buckets are kept; one silent for longer drops out of the stock.
- **Retention.** An active account also counts each of its activations (``retention_activations``)
  and churns (``retention_churns``), at their times. Over a window ending now, an account active now
  was active at the window's start exactly when 1 - activations + churns inside the window is 1
  (its activity flips at each of them), so the customers active at the start and still active now
  are ``stock_customers - retention_activations + retention_churns``: additive, exact for any window.
  The same counters weighted by the account's MRR now (``..._mrr_cents``) give the MRR those customers
  bring now (the net revenue retention's numerator).
- **Surveys.** An answer counts at its time unless the account answered the same kind again within
  30 days after it (then the later answer replaces it: a survey submitted twice, or answered again
  when asked twice in one wave); answers further apart are separate waves and both count.

**A won deal opens a subscription.** A ``deal.won`` naming an ``account_id`` opens subscription
``deal:<deal_id>`` of that account: the deal sends ``subscription.started`` (``deal_subscription_events``)
at its earliest win naming an account, for the win's amount per its ``billing_period`` (a year unless
given), under the deal's team, rep and channel. Its id names the win, so a copy is a duplicate, and an
earlier win arriving later sends a second start of the same subscription, at its earlier time: of the
starts a deal sent, the account counts the earliest only, so the order the wins arrive in does not
matter. Later changes of that subscription come as subscription events naming ``subscription_id``
``deal:<deal_id>``.

All facts count under the account's owner (team and rep of its latest subscription event naming
one) and channel (of its latest naming one, else ``unknown``): a change of owner moves its history,
as for a deal. Events applied twice change nothing (their ids are kept), and every choice is by
event time, so any delivery order gives the same facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from schemas.events import SubscriptionChurned, SubscriptionEvent, SurveyResponded
from streams.core.facts import survey_counters
from streams.core.records import UNKNOWN_CHANNEL, Fact
from streams.entities.deals_leads import DealState, Stamped, ToReporting, attribute_of, set_attributes

AccountEvent = SubscriptionEvent | SurveyResponded
SURVEY_REPLACE_SECONDS = 30 * 86_400  # a later answer of the same kind within this replaces an answer
MAX_POINTS = 512  # subscription events kept per account, renewals that change nothing left out first
MAX_ANSWERS = 128  # survey answers kept per account
DEAL_START_PREFIX = "kpimon-subscription-"  # the ids of the starts won deals send

# [time, event id, subscription id, MRR in cents (0: churned), monthly cost in cents or None]
Point = list[str | int | None]
# [time, event id, kind, score, team or None, rep or None, channel or None]
Answer = list[str | int | None]


class AccountState(TypedDict):
    points: list[Point]
    answers: list[Answer]
    attributes: dict[str, Stamped]  # team, rep, channel
    event_ids: list[str]
    last_at: NotRequired[int]  # its latest event's time (entities/retention.py)


def empty_account() -> AccountState:
    return {"points": [], "answers": [], "attributes": {}, "event_ids": []}


def monthly_cents(price: tuple[Decimal, int], currency: str, to_reporting: ToReporting) -> int:
    """A price per ``months`` months as cents of the reporting currency per month (rounded half to even)."""
    amount, months = price
    return round(to_reporting(amount, currency) * 100 / months)


def apply_account_event(state: AccountState, event: AccountEvent, to_reporting: ToReporting) -> AccountState:
    """The account's state after ``event``; the same state if the event was applied before."""
    if event.event_id in state["event_ids"]:
        return state
    new: AccountState = {**state, "event_ids": [*state["event_ids"], event.event_id]}
    at = int(event.occurred_at.timestamp())
    if isinstance(event, SurveyResponded):
        if not any(answer[1] == event.event_id for answer in state["answers"]):
            answer: Answer = [at, event.event_id, event.kind, event.score, event.team, event.rep_id, event.channel]
            new["answers"] = [*state["answers"], answer]
        return new
    new["attributes"] = dict(state["attributes"])
    set_attributes(new["attributes"], event, {"team": event.team, "rep": event.rep_id, "channel": event.channel})
    if not any(point[1] == event.event_id for point in state["points"]):
        churned = isinstance(event, SubscriptionChurned)
        cents = 0 if churned else monthly_cents(event.price(), event.currency, to_reporting)
        cost = None if churned else event.monthly(event.cost)
        cost_cents = None if cost is None else monthly_cents(cost, event.currency, to_reporting)
        point: Point = [at, event.event_id, event.subscription_id or event.account_id, cents, cost_cents]
        new["points"] = [*state["points"], point]
    return new


def _in_order(items: list[list[str | int | None]]) -> list[list[str | int | None]]:
    return sorted(items, key=lambda item: (int(item[0] or 0), str(item[1])))


def _without_repeats(points: list[Point], limit: int) -> list[Point]:
    """``points`` in time order, the oldest repeats left out until at most ``limit`` remain.

    A repeat is a point that sets its subscription's price (and cost) to what its previous point
    set, a renewal: no movement, so leaving it out changes no fact, unless an event older than it
    arrives later and changes the price in between. The latest point stays (the stock's time).
    """
    ordered = _in_order(points)
    excess = len(ordered) - limit
    before: dict[str, tuple[object, object]] = {}
    kept: list[Point] = []
    for index, point in enumerate(ordered):
        price = (point[3], point[4])
        repeat = before.get(str(point[2])) == price and index < len(ordered) - 1
        before[str(point[2])] = price
        if repeat and excess > 0:
            excess -= 1
            continue
        kept.append(point)
    return kept


def cap_account(account_id: str, state: AccountState) -> AccountState:
    """At most ``MAX_POINTS`` subscription events (renewals left out first) and ``MAX_ANSWERS`` answers.

    Past the cap the oldest points go: their movements and activations leave the account's facts.
    """
    if len(state["points"]) > MAX_POINTS:
        state["points"] = _without_repeats(state["points"], MAX_POINTS)[-MAX_POINTS:]
    if len(state["answers"]) > MAX_ANSWERS:
        state["answers"] = _in_order(state["answers"])[-MAX_ANSWERS:]
    return state


Placement = tuple[str | None, str | None, str]  # team, rep, channel


def _movement(before: int, after: int, was_active: bool) -> dict[str, float]:
    """The counters of one change of an account's MRR (in cents), from ``before`` to ``after``."""
    if before == 0:
        kind = "reactivated" if was_active else "new"
        return {f"customers_{kind}": 1, f"mrr_{kind}_cents": after}
    if after == 0:
        return {"customers_churned": 1, "mrr_churned_cents": before}
    if after > before:
        return {"mrr_expansion_cents": after - before}
    return {"mrr_contraction_cents": before - after}


def _counted_points(state: AccountState) -> Iterator[Point]:
    """The points in time order, of the starts won deals sent only the earliest per subscription."""
    opened: set[str] = set()
    for point in _in_order(state["points"]):
        if str(point[1]).startswith(DEAL_START_PREFIX):
            if point[2] in opened:
                continue
            opened.add(str(point[2]))
        yield point


def _subscription_facts(state: AccountState, where: Placement) -> Iterator[Fact]:
    prices: dict[str, int] = {}
    costs: dict[str, int | None] = {}
    mrr, ever_active, last = 0, False, 0
    changes: list[tuple[int, str]] = []  # (time, "activation" or "churn")
    for at, _, subscription, cents, cost in _counted_points(state):
        last = int(at or 0)
        prices[str(subscription)], costs[str(subscription)] = int(cents or 0), None if cost is None else int(cost)
        total = sum(prices.values())
        if total == mrr:
            continue
        yield Fact(last, *where, _movement(mrr, total, ever_active))
        if mrr == 0:
            changes.append((last, "retention_activations"))
        elif total == 0:
            changes.append((last, "retention_churns"))
        ever_active, mrr = True, total
    if mrr == 0:
        return
    stock: dict[str, float] = {"stock_customers": 1, "stock_mrr_cents": mrr}
    costed = [name for name, cost in costs.items() if cost is not None and prices[name]]
    if costed:
        stock["stock_costed_mrr_cents"] = sum(prices[name] for name in costed)
        stock["stock_cost_cents"] = sum(costs[name] or 0 for name in costed)
    yield Fact(last, *where, stock)
    for at, counter in changes:  # weighted by its MRR now, for the revenue the cohort brings now
        yield Fact(at, *where, {counter: 1, f"{counter}_mrr_cents": mrr})


def _survey_facts(state: AccountState, where: Placement) -> Iterator[Fact]:
    latest: dict[str, int] = {}  # kind -> the time of the next answer (walking back in time)
    for stamp, _, named_kind, score, team, rep, channel in reversed(_in_order(state["answers"])):
        at, kind = int(stamp or 0), str(named_kind)
        replaced = kind in latest and latest[kind] - at <= SURVEY_REPLACE_SECONDS
        latest[kind] = at
        if replaced:
            continue
        owner = (None if team is None else str(team), None if rep is None else str(rep))
        team_rep = owner if owner != (None, None) else where[:2]
        counters = {name: value for name, value in survey_counters(kind, int(score or 0)).items() if value}
        yield Fact(at, *team_rep, str(channel) if channel else where[2], counters)


def account_facts(account_id: str, state: AccountState) -> list[Fact]:
    """What an account counts: its MRR movements, its stock and retention counters, its survey answers."""
    attributes = state["attributes"]
    where = (attribute_of(attributes, "team"), attribute_of(attributes, "rep"))
    placement = (*where, attribute_of(attributes, "channel") or UNKNOWN_CHANNEL)
    return [*_subscription_facts(state, placement), *_survey_facts(state, placement)]


def deal_subscription_events(deal_id: str, state: DealState) -> list[dict[str, Any]]:
    """The ``subscription.started`` a won deal naming an account implies (contract JSON, an id per win)."""
    opens = state.get("opens")
    if opens is None:
        return []
    at, win_id, account, amount, currency, period = opens
    event: dict[str, Any] = {
        "event_id": f"{DEAL_START_PREFIX}{deal_id}-{win_id}",
        "type": "subscription.started",
        "occurred_at": datetime.fromtimestamp(int(at), UTC).isoformat(),
        "source": "kpimon",
        "account_id": account,
        "subscription_id": f"deal:{deal_id}",
        "amount": amount,
        "currency": currency,
        "billing_period": period,
    }
    for name, field in (("team", "team"), ("rep", "rep_id"), ("channel", "channel")):
        value = attribute_of(state["attributes"], name)
        if value is not None:
            event[field] = value
    return [event]
