"""A batch's entity events applied to their entities: new states, counter changes, emitted events. Pure.

Every kind of entity (a deal, a lead, ...) is an ``EntityKind``: an empty state, how
an event changes it (the same object back for an event it applied before), the
facts (counters) the state stands for, and the contract events it implies for
other entities (a won deal converts its lead). The counters an event changes are
the difference between the facts after and before (``fact_changes``), so the
result depends on the state alone, never on delivery order.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.events import entity_key
from streams.core.records import Accepted, Fact, Position
from streams.core.table_keys import table_key
from streams.entities.accounts import (
    account_facts,
    apply_account_event,
    cap_account,
    deal_subscription_events,
    empty_account,
)
from streams.entities.attribution import leadless_deal_facts
from streams.entities.contacts import apply_contact_event, contact_facts, empty_contact
from streams.entities.deals_leads import (
    ToReporting,
    apply_deal_event,
    deal_conversions,
    deal_facts,
    empty_deal,
    empty_lead,
    fact_changes,
    lead_facts,
)
from streams.entities.lead_views import apply_lead, deal_outcome_events, lead_view_events
from streams.entities.retention import cap_contact, cap_deal, cap_lead, cap_nothing, with_activity
from streams.entities.spend import apply_spend_event, empty_spend, spend_facts

EntityState = Any  # each kind's own TypedDict, stored as JSON
Emitted = dict[str, Any]  # a contract event as its JSON object


def _emits_nothing(entity_id: str, state: EntityState) -> list[Emitted]:
    return []


@dataclass(frozen=True)
class EntityKind:
    """How the entities of one key prefix (``deal:``, ``lead:``, ...) fold their events."""

    empty: Callable[[], EntityState]
    # (state, event, to_reporting): the event is one of the kind's own (its routing key's prefix)
    apply: Callable[[EntityState, Any, ToReporting], EntityState]
    facts: Callable[[str, EntityState], list[Fact]]  # (entity id, state)
    emitted: Callable[[str, EntityState], list[Emitted]] = _emits_nothing  # events with stable ids
    cap: Callable[[str, EntityState], EntityState] = cap_nothing  # (entity id, new state): its lists capped


ENTITY_KINDS: dict[str, EntityKind] = {
    "deal": EntityKind(
        empty_deal,
        apply_deal_event,
        lambda deal_id, state: [*deal_facts(deal_id, state), *leadless_deal_facts(deal_id, state)],
        lambda deal_id, state: [
            *deal_conversions(deal_id, state),
            *deal_outcome_events(deal_id, state),
            *deal_subscription_events(deal_id, state),
        ],
        cap_deal,
    ),
    "lead": EntityKind(
        empty_lead,
        lambda state, event, to_reporting: apply_lead(state, event),
        lambda lead_id, state: lead_facts(state),
        lead_view_events,
        cap_lead,
    ),
    # a person: email engagement, web sessions and the leads' views (email funnel, attribution)
    "contact": EntityKind(
        empty_contact,
        lambda state, event, to_reporting: apply_contact_event(state, event),
        contact_facts,
        cap=cap_contact,
    ),
    "spend": EntityKind(empty_spend, apply_spend_event, spend_facts),
    # a customer: its subscriptions (MRR movements, stock, retention) and survey answers
    "account": EntityKind(empty_account, apply_account_event, account_facts, cap=cap_account),
}


@dataclass
class EntityUpdate:
    facts: dict[Position, list[Fact]] = field(default_factory=dict)  # the counter changes each record caused
    states: dict[str, EntityState] = field(default_factory=dict)  # changed states by table key
    duplicates: list[Position] = field(default_factory=list)  # events their entity had applied already
    emitted: list[Emitted] = field(default_factory=list)  # new events for other entities, to send


def apply_entity_events(
    records: Iterable[Accepted],
    stored: Mapping[str, EntityState],
    to_reporting: ToReporting,
    late: Container[Position] = (),
) -> EntityUpdate:
    """Apply the batch's entity events to their entities, in order.

    Other records are ignored, and so are events routed to an entity of a kind that
    keeps no state (a key prefix without an ``EntityKind``), and ``late`` events of an
    entity without a state (older than every bucket's retention: nothing they could
    count is kept, and the entity may have been evicted, see ``streams.entities.retention``).
    """
    update = EntityUpdate()
    for record in records:
        event = record.event
        key = entity_key(event)
        if key is None:
            continue
        prefix, entity_id = key.split(":", 1)
        kind = ENTITY_KINDS.get(prefix)
        if kind is None:
            continue
        stored_key = table_key(record.position.partition, key)
        state = update.states.get(stored_key) or stored.get(stored_key)
        if state is None and record.position in late:
            continue
        current = state if state is not None else kind.empty()
        new = kind.apply(current, event, to_reporting)
        if new is state:
            update.duplicates.append(record.position)
            continue
        new = kind.cap(entity_id, with_activity(new, current, record.timestamp))
        update.states[stored_key] = new
        update.facts[record.position] = fact_changes(kind.facts(entity_id, current), kind.facts(entity_id, new))
        known = {emitted["event_id"] for emitted in kind.emitted(entity_id, current)}
        update.emitted += [emitted for emitted in kind.emitted(entity_id, new) if emitted["event_id"] not in known]
    return update
