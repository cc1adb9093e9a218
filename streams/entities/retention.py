"""How long an entity's state is kept, and how large it may grow. Pure.

**Caps.** Every list an entity keeps is capped, so no state grows without bound (a
contact id shared by a bot, a deal that changes hands every day). At the cap:

- ``event_ids`` (every kind, ``MAX_EVENT_IDS``): the oldest ids are forgotten. A copy of such an
  event that comes after the dedup horizon (8 days) is applied again: applying an event twice
  gives the same state, so no KPI changes, but the copy counts in ``kpimon_events_total``
  instead of ``kpimon_events_duplicate_total`` (and a copied web session's own counters count
  again, as for any activity event past the horizon).
- a deal's ``leads`` and a lead's ``contacts``, those it has named (``MAX_NAMED``): the oldest
  are forgotten, never the current one. They no longer hear of later changes: a lead named more
  than ``MAX_NAMED`` leads ago keeps the deal's outcome as it last heard it.
- a deal's stage changes (``MAX_STAGES``): the oldest are forgotten. An outcome older than every
  stage change kept counts under stage ``unknown`` in the per-stage win counters (a deal moved
  back and forth more than ``MAX_STAGES`` times after it closed).
- a contact's ``touches`` (``MAX_TOUCHES``): the earliest touch and the latest
  ``MAX_TOUCHES - 1`` are kept. First- and last-touch attribution stay exact; linear attribution
  is split over the touches kept, so a dropped touch re-attributes that person's linear shares
  (each model still sums to the revenue).
- a lead's ``deals`` and a contact's ``leads``, the views it received (``MAX_VIEWS``): views of
  further deals or leads are not kept, and their outcomes are not attributed.
- an account's subscription events (``accounts.MAX_POINTS``, 512): renewals that change no price go
  first, then the oldest events, whose movements leave the account's counts; its survey answers
  (``accounts.MAX_ANSWERS``, 128): the oldest go.
- the deals in all the lead views of one contact (``MAX_CONTACT_DEALS``): a view that would take a
  contact past it keeps the deals the contact has and the new ones in order of deal id up to the cap;
  the outcomes of the others are not attributed.
- a contact's email campaigns (``MAX_EMAIL_CAMPAIGNS``): the first engagements of later campaigns
  count under campaign ``other`` (with their email leads), so the email counters overall stay exact.

**Size.** With every list at its cap and every id and label at the contract's longest, a contact,
the largest kind, encodes to under ``MAX_STATE_BYTES`` (``tests/unit/entities/test_retention.py``
builds one from 10,000 web sessions, 2,000 campaigns and 100 leads of 100 deals each): far below
Kafka's default message size of 1 MiB, so no changelog record of an entity can be refused.

**Retention.** An entity is evicted once it is closed and its latest event (by event time,
``last_at``) is older than ``ENTITY_RETENTION_SECONDS`` at its partition's watermark: the
longest retention of any bucket (800 days, the month buckets). By then every counter it
contributed lies in buckets already dropped, and a copy of any of its events is late (counted in
``kpimon_events_late_dropped_total`` and nowhere else; a late event creates no entity), so
forgetting it changes no KPI. A shorter horizon would not be exact: a copy of a closed deal's
event arriving a year later must still be recognised, and only the deal's own ids can do that
once the dedup horizon has passed. "Closed" is what the scrape still reads: a deal that is open
counts in the open pipeline (``kpimon_open_deals``) however old, so it is kept; leads, contacts
and spend chains have nothing read at scrape and close with their last event. An event for an
entity evicted long ago (a deal re-opened after 800 days of silence) starts a new entity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.core.windows import LONGEST_RETENTION
from streams.entities.deals_leads import is_open

ENTITY_RETENTION_SECONDS = LONGEST_RETENTION.retention_seconds
MAX_EVENT_IDS = 128
MAX_NAMED = 16
MAX_STAGES = 32
MAX_TOUCHES = 200
MAX_VIEWS = 64
MAX_CONTACT_DEALS = 128
MAX_EMAIL_CAMPAIGNS = 100
MAX_STATE_BYTES = 512 * 1024

EntityState = Any


def capped(items: list[Any], limit: int, keep: Any = None) -> list[Any]:
    """The latest ``limit`` of ``items`` (appended in order); ``keep`` stays even if it is older."""
    if len(items) <= limit:
        return items
    latest = items[len(items) - limit :]
    if keep is None or keep in latest or keep not in items:
        return latest
    return [keep, *latest[1:]]


def capped_touches(touches: list[list[Any]], limit: int = MAX_TOUCHES) -> list[list[Any]]:
    """The earliest touch by (time, id) and the latest ``limit - 1``."""
    if len(touches) <= limit:
        return touches
    ordered = sorted(touches, key=lambda touch: (int(touch[0]), str(touch[1])))
    return [ordered[0], *ordered[len(ordered) - limit + 1 :]]


def keeps_view(views: Mapping[str, Any], name: str, limit: int = MAX_VIEWS) -> bool:
    """Whether a view of ``name`` may be kept: a known one always, a new one below the cap."""
    return name in views or len(views) < limit


def with_activity(state: EntityState, before: EntityState, at: int) -> EntityState:
    """``state`` (a new dict, not shared) with its latest event time (``before``'s or ``at``) and capped event ids."""
    previous = before.get("last_at")
    state["last_at"] = at if previous is None else max(int(previous), at)
    state["event_ids"] = capped(state["event_ids"], MAX_EVENT_IDS)
    return state


def is_closed(kind: str, state: EntityState) -> bool:
    """Whether nothing read at scrape depends on the state: all but an open deal."""
    return not (kind == "deal" and is_open(state))


def evictable(kind: str, state: EntityState, watermark: int) -> bool:
    """Closed, and its latest event older than the retention at the partition's watermark."""
    last_at = state.get("last_at")
    if last_at is None:
        return False
    return int(last_at) < watermark - ENTITY_RETENTION_SECONDS and is_closed(kind, state)


def _cap_named(state: EntityState, names: str, attribute: str, default: str | None) -> EntityState:
    """Cap the list ``names`` of ``state``, keeping the one its ``attribute`` names now (else ``default``)."""
    named = state.get(names)
    if named is not None and len(named) > MAX_NAMED:
        current = state["attributes"].get(attribute)
        state[names] = capped(named, MAX_NAMED, keep=default if current is None else current[0])
    return state


def cap_deal(deal_id: str, state: EntityState) -> EntityState:
    stages = state.get("stages")
    if stages is not None:
        state["stages"] = capped(stages, MAX_STAGES)
    return _cap_named(state, "leads", "lead", None)


def cap_lead(lead_id: str, state: EntityState) -> EntityState:
    return _cap_named(state, "contacts", "contact", lead_id)


def cap_contact(contact_id: str, state: EntityState) -> EntityState:
    state["touches"] = capped_touches(state["touches"])
    return state


def cap_nothing(entity_id: str, state: EntityState) -> EntityState:
    return state
