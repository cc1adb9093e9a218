"""The subscription and survey export mappings of deploy/mappings/ on their sample files: the contract events
each row gives (written out by hand from the rows), the rows they refuse or skip, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.tools.csv_source import load_mapping_for
from streams.tools.replay_source import BadRow, ReplayPlan, plan_replay
from streams.worker.acceptance import Acceptance

MAPPINGS = Path(__file__).resolve().parents[3] / "deploy" / "mappings"
SUBSCRIPTIONS = MAPPINGS / "samples" / "stripe-subscriptions.csv"
SURVEYS = MAPPINGS / "samples" / "survey-responses.csv"
USD_AND_EUR = Acceptance(known_currencies=frozenset({"USD", "EUR"}))


def _plan(data: Path, mapping: str, acceptance: Acceptance = USD_AND_EUR) -> ReplayPlan:
    return plan_replay(data, load_mapping_for(MAPPINGS / mapping, data), acceptance=acceptance)


def _price(
    customer: str, subscription: str, plan: str, seats: int, amount: Any, period: str, currency: str = "USD"
) -> dict[str, Any]:
    return {"account_id": customer, "subscription_id": subscription, "plan": plan, "seats": seats,
            "amount": amount, "billing_period": period, "currency": currency}  # fmt: skip


def _started(subscription: str, at: str, price: dict[str, Any]) -> dict[str, Any]:
    return {"type": "subscription.started", "event_id": f"stripe-{subscription}-started", "occurred_at": at, **price}


def _renewed(subscription: str, at: str, period: str, price: dict[str, Any]) -> dict[str, Any]:
    event_id = f"stripe-{subscription}-period-{period}"
    return {"type": "subscription.renewed", "event_id": event_id, "occurred_at": at, **price}


def _churned(subscription: str, customer: str, at: str) -> dict[str, Any]:
    return {"type": "subscription.churned", "event_id": f"stripe-{subscription}-churned", "occurred_at": at,
            "account_id": customer, "subscription_id": subscription, "currency": "USD"}  # fmt: skip


ACME = _price("cus_acme", "sub_1001", "team-monthly", 5, 250, "month")
BRIGHTCO = _price("cus_brightco", "sub_1002", "pro-yearly", 1, 1200, "year")
COBALT = _price("cus_cobalt", "sub_1003", "team-monthly", 2, 100, "month")
DELTA = _price("cus_delta", "sub_1004", "starter-monthly", 1, 29, "month")
ECHO = _price("cus_echo", "sub_1005", "starter-monthly", 1, 29, "month")
ACME_ADDON = _price("cus_acme", "sub_1008", "analytics-addon", 1, 45.5, "month", "EUR")
DELTA_AGAIN = _price("cus_delta", "sub_1009", "team-monthly", 2, 80, "month")
HOTEL = _price("cus_hotel", "sub_1010", "pro-yearly", 2, 2400, "year")
INDIA = _price("cus_india", "sub_1011", "starter-monthly", 1, 29, "month")
JULIET = _price("cus_juliet", "sub_1012", "team-monthly", 2, 100, "month")

# line -> the events of that row (a start, the current period's renewal, a churn at ended_at)
SUBSCRIPTION_EVENTS: dict[int, list[dict[str, Any]]] = {
    2: [_started("sub_1001", "2026-01-10T09:00:00Z", ACME),
        _renewed("sub_1001", "2026-11-10T09:00:00Z", "2026-11-10 09:00", ACME)],
    3: [_started("sub_1002", "2025-06-01T12:00:00Z", BRIGHTCO),
        _renewed("sub_1002", "2026-06-01T12:00:00Z", "2026-06-01 12:00", BRIGHTCO)],
    4: [_started("sub_1003", "2026-02-03T08:30:00Z", COBALT),  # canceled at the period's end: ended_at, not canceled_at
        _renewed("sub_1003", "2026-11-03T08:30:00Z", "2026-11-03 08:30", COBALT),
        _churned("sub_1003", "cus_cobalt", "2026-12-03T08:30:00Z")],
    5: [_started("sub_1004", "2026-03-14T10:00:00Z", DELTA),
        _renewed("sub_1004", "2026-09-14T10:00:00Z", "2026-09-14 10:00", DELTA),
        _churned("sub_1004", "cus_delta", "2026-09-30T17:45:00Z")],
    6: [_started("sub_1005", "2026-07-22T16:10:00Z", ECHO),  # past_due: still a customer
        _renewed("sub_1005", "2026-11-22T16:10:00Z", "2026-11-22 16:10", ECHO)],
    9: [_started("sub_1008", "2026-11-18T13:00:00Z", ACME_ADDON),
        _renewed("sub_1008", "2026-11-18T13:00:00Z", "2026-11-18 13:00", ACME_ADDON)],
    10: [_started("sub_1009", "2026-11-26T09:00:00Z", DELTA_AGAIN),
         _renewed("sub_1009", "2026-11-26T09:00:00Z", "2026-11-26 09:00", DELTA_AGAIN)],
    11: [_started("sub_1010", "2025-03-15T08:00:00Z", HOTEL),
         _renewed("sub_1010", "2026-03-15T08:00:00Z", "2026-03-15 08:00", HOTEL)],
    12: [_started("sub_1011", "2025-09-01T10:00:00Z", INDIA),
         _renewed("sub_1011", "2025-12-01T10:00:00Z", "2025-12-01 10:00", INDIA),
         _churned("sub_1011", "cus_india", "2026-01-01T10:00:00Z")],
    13: [_started("sub_1012", "2026-11-30T14:20:00Z", JULIET),
         _renewed("sub_1012", "2026-11-30T14:20:00Z", "2026-11-30 14:20", JULIET)],
}  # fmt: skip


def _answer(response: str, at: str, kind: str, score: int, account: str | None) -> dict[str, Any]:
    event = {"type": "survey.responded", "event_id": f"survey-{response}", "occurred_at": at, "kind": kind,
             "score": score}  # fmt: skip
    return event | ({"account_id": account} if account else {})


SURVEY_EVENTS: dict[int, dict[str, Any]] = {
    2: _answer("resp_001", "2026-11-12T10:05:00Z", "nps", 9, "cus_acme"),
    3: _answer("resp_002", "2026-11-15T08:40:00Z", "nps", 10, "cus_brightco"),
    4: _answer("resp_003", "2026-11-19T17:20:00Z", "nps", 3, "cus_cobalt"),
    5: _answer("resp_004", "2026-11-21T12:00:00Z", "nps", 7, "cus_echo"),
    6: _answer("resp_005", "2026-11-24T09:30:00Z", "nps", 6, "cus_hotel"),
    7: _answer("resp_006", "2026-12-01T09:10:00Z", "nps", 8, "cus_hotel"),
    8: _answer("resp_007", "2026-12-02T15:00:00Z", "nps", 10, None),  # no account: the field is left out
    9: _answer("resp_008", "2026-11-20T11:00:00Z", "csat", 5, "cus_acme"),
    10: _answer("resp_009", "2026-11-27T14:45:00Z", "csat", 2, "cus_delta"),
    11: _answer("resp_010", "2026-12-01T16:30:00Z", "csat", 4, "cus_juliet"),
    12: _answer("resp_011", "2026-11-16T10:00:00Z", "ces", 2, "cus_brightco"),
    13: _answer("resp_012", "2026-11-23T13:15:00Z", "ces", 5, "cus_echo"),
    14: _answer("resp_013", "2025-12-05T09:00:00Z", "nps", 2, "cus_india"),
    15: _answer("resp_014", "2026-10-01T10:00:00Z", "nps", 10, "cus_acme"),
}


def _by_line(plan: ReplayPlan) -> dict[int, list[dict[str, Any]]]:
    lines: dict[int, list[dict[str, Any]]] = {}
    for event in plan.events:
        lines.setdefault(event.line, []).append({k: v for k, v in event.event.items() if k != "source"})
    return {line: sorted(events, key=lambda event: event["event_id"]) for line, events in lines.items()}


def test_each_paying_subscription_row_gives_its_start_its_current_renewal_and_its_churn() -> None:
    plan = _plan(SUBSCRIPTIONS, "stripe-subscriptions.yaml")
    expected = {
        line: sorted(events, key=lambda event: event["event_id"]) for line, events in SUBSCRIPTION_EVENTS.items()
    }
    assert _by_line(plan) == expected
    assert plan.bad_rows == []
    assert plan.skipped_rows == 2  # lines 7 (trialing) and 8 (incomplete_expired): nothing paid
    assert {event.event["source"] for event in plan.events} == {"stripe"}


def test_each_survey_row_gives_one_answer_without_the_personal_data() -> None:
    plan = _plan(SURVEYS, "survey-responses.yaml")
    assert _by_line(plan) == {line: [event] for line, event in SURVEY_EVENTS.items()}
    assert (plan.bad_rows, plan.skipped_rows) == ([], 0)
    assert all("attributes" not in event.event for event in plan.events)  # no email, no comment


HEADER = SUBSCRIPTIONS.read_text(encoding="utf-8").splitlines()[0]
ROW = "sub_9,cus_z,{status},team,100.00,{interval},{count},1,{currency},2026-01-01 00:00,2026-01-01 00:00,"
ROW += "2026-02-01 00:00,2026-03-01 00:00,,,false"


@pytest.mark.parametrize(
    ("status", "interval", "count", "currency", "problem"),
    [
        ("active", "month", "1", "usd", "currency: String should match pattern '^[A-Z]{3}$'"),
        ("active", "week", "1", "USD", "interval: Input should be 'month', 'quarter' or 'year', got 'week'"),
        ("active", "month", "3", "USD", "no event's condition holds"),  # every 3 months is no monthly price
        ("canceled", "year", "1", "USD", "ended_at: empty, but subscription.churned needs occurred_at"),
    ],
)
def test_rows_the_mapping_cannot_read_are_bad_rows_with_the_reason(
    tmp_path: Path, status: str, interval: str, count: str, currency: str, problem: str
) -> None:
    data = tmp_path / "subscriptions.csv"
    data.write_text(f"{HEADER}\n{ROW.format(status=status, interval=interval, count=count, currency=currency)}\n")
    plan = _plan(data, "stripe-subscriptions.yaml")
    assert plan.events == []
    [bad] = plan.bad_rows
    assert isinstance(bad, BadRow) and bad.line == 2
    assert problem in bad.problem


def test_a_later_export_adds_the_new_period_at_its_new_price_and_repeats_the_rest(tmp_path: Path) -> None:
    """Replayed month after month, a price change shows at the renewal of the export that has it."""
    november, december = tmp_path / "november.csv", tmp_path / "december.csv"
    november.write_text(f"{HEADER}\n{ROW.format(status='active', interval='month', count='1', currency='USD')}\n")
    upgraded = ROW.replace("team,100.00", "team,180.00").replace(
        "2026-02-01 00:00,2026-03-01", "2026-03-01 00:00,2026-04-01"
    )
    december.write_text(f"{HEADER}\n{upgraded.format(status='active', interval='month', count='1', currency='USD')}\n")
    first = {event.event_id: event.event for event in _plan(november, "stripe-subscriptions.yaml").events}
    second = {event.event_id: event.event for event in _plan(december, "stripe-subscriptions.yaml").events}
    assert set(first) & set(second) == {"stripe-sub_9-started"}  # a duplicate: the worker keeps the first
    [new_period] = set(second) - set(first)
    assert (second[new_period]["type"], second[new_period]["amount"]) == ("subscription.renewed", 180)
