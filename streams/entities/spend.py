"""Spend records and their corrections: one state per spend, and the spend it counts. Pure.

A ``spend.recorded`` event records a spend, or corrects one: ``replaces`` names the
``event_id`` of the spend's *first* record (a correction of a correction names the same
first record). All records of a spend share one entity, ``spend:<first record's id>``
(``schemas.events.entity_key``), so they meet on one partition, and its state keeps:

- the latest record by ``occurred_at`` (ties by ``event_id``): its amount in the reporting
  currency, its ``kind``, channel and campaign are what the spend counts, whatever the
  order the records arrive in;
- the time of the first record once it has arrived; until then the earliest ``occurred_at``
  of the records seen, so a correction that arrives before its original counts at once
  and moves to the original's time when the original arrives;
- the ids of the records applied, so a copy changes nothing.

A spend counts once, never summed with its corrections: counter ``marketing_spend`` or
``sales_spend`` (the latest record's ``kind``) at that time, under the channel and campaign
of the latest record, in no team or rep scope (spend KPIs are kept overall, per channel and
per campaign). As for deals and leads, the counters change by the difference between the
facts before and after a record (``streams.entities.deals_leads.fact_changes``): exact under copies,
any order and replays after a crash.

A correction whose ``replaces`` names a correction instead of the first record lands in
another entity and counts as a spend of its own: producers must name the first record.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from schemas.events import SpendRecorded
from streams.core.records import Fact
from streams.entities.deals_leads import ToReporting

SPEND_COUNTERS = {"marketing": "marketing_spend", "sales": "sales_spend"}  # a record's kind -> its counter


class SpendRecord(TypedDict):
    event_id: str
    at: int
    kind: str  # marketing or sales
    channel: str
    campaign: str | None
    amount: float  # in the reporting currency


class SpendState(TypedDict):
    first_at: int | None  # the first record's time, once it has arrived
    earliest_at: int | None  # the earliest time of the records seen
    latest: SpendRecord | None  # the latest record by (time, event id): the amount that counts
    event_ids: list[str]
    last_at: NotRequired[int]  # its latest event's time (entities/retention.py)


def empty_spend() -> SpendState:
    return {"first_at": None, "earliest_at": None, "latest": None, "event_ids": []}


def apply_spend_event(state: SpendState, event: SpendRecorded, to_reporting: ToReporting) -> SpendState:
    """The spend's state after ``event``; the same state if the record was applied before."""
    if event.event_id in state["event_ids"]:
        return state
    at = int(event.occurred_at.timestamp())
    latest = state["latest"]
    if latest is None or (at, event.event_id) > (latest["at"], latest["event_id"]):
        latest = {
            "event_id": event.event_id,
            "at": at,
            "kind": event.kind,
            "channel": event.channel,
            "campaign": event.campaign_id,
            "amount": to_reporting(event.amount, event.currency),
        }
    earliest = state["earliest_at"]
    return {
        "first_at": at if event.replaces is None else state["first_at"],
        "earliest_at": at if earliest is None else min(earliest, at),
        "latest": latest,
        "event_ids": [*state["event_ids"], event.event_id],
    }


def spend_facts(spend_id: str, state: SpendState) -> list[Fact]:
    """What a spend counts: its latest amount, at its first record's time (else the earliest seen)."""
    latest = state["latest"]
    at = state["first_at"] if state["first_at"] is not None else state["earliest_at"]
    if latest is None or at is None:
        return []
    counters = {SPEND_COUNTERS[latest["kind"]]: latest["amount"]}
    return [Fact(at, None, None, latest["channel"], counters, latest["campaign"])]
