"""alerts.engine.decide: condition, quiet hours and state machine joined, and the event it names."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.engine import decide, state_key
from alerts.model import AlertState, Observation
from alerts.rules import AlertRule
from schemas.catalog import Catalog, load_catalog
from schemas.scopes import Scope

BERLIN = ZoneInfo("Europe/Berlin")
EMEA = Scope(team="emea")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def rule(**fields: object) -> AlertRule:
    base = {
        "id": "conversion-low",
        "kpi": "lead_to_opportunity",
        "window": "24h",
        "scope": {"kind": "team"},
        "condition": {"below": 0.1},
        "min_sample": 20,
        "routes": ["sales"],
    }
    return AlertRule.model_validate(base | fields)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


def ratio(converted: int, leads: int) -> Observation:
    return Observation(value=converted / leads if leads else None, numerator=converted, denominator=leads)


def test_three_leads_none_converted_do_not_alert_below_the_minimum_sample(catalog: Catalog) -> None:
    decision = decide(
        rule(), catalog.kpi("lead_to_opportunity"), EMEA, ratio(0, 3), AlertState(), at("2026-11-25 11:00"), BERLIN
    )
    assert decision.check.verdict == "unknown"
    assert decision.step.state == AlertState() and decision.event is None


def test_a_breach_fires_at_once_and_names_everything_a_message_shows(catalog: Catalog) -> None:
    now = at("2026-11-25 11:00")
    decision = decide(rule(), catalog.kpi("lead_to_opportunity"), EMEA, ratio(1, 40), AlertState(), now, BERLIN)
    event = decision.event
    assert event is not None
    assert (event.kind, event.episode, event.sequence, event.since, event.at) == ("firing", 1, 0, now, now)
    assert (event.value, event.threshold, event.sample_size) == (1 / 40, 0.1, 40)
    assert (event.kpi_name, event.unit, event.window, event.scope, event.routes) == (
        "Lead to opportunity ratio",
        "ratio",
        "24h",
        EMEA,
        ("sales",),
    )
    assert event.idempotency_key == "conversion-low/team:emea:::/1/firing/0"
    assert decision.key == state_key("conversion-low", EMEA) == "conversion-low/team:emea:::"
    record = decision.audit_record()
    assert (record["from"], record["to"], record["event"], record["scope"]["team"]) == (
        "ok",
        "firing",
        "firing",
        "emea",
    )


def test_quiet_hours_defer_the_message_not_the_state(catalog: Catalog) -> None:
    quiet = rule(quiet_hours={"start": "20:00", "end": "08:00"})
    kpi = catalog.kpi("lead_to_opportunity")
    night = decide(quiet, kpi, EMEA, ratio(1, 40), AlertState(), at("2026-11-25 23:00"), BERLIN)
    assert night.step.state.status == "firing" and night.event is None
    morning = decide(quiet, kpi, EMEA, ratio(1, 40), night.step.state, at("2026-11-26 08:00"), BERLIN)
    assert morning.event is not None and morning.event.kind == "firing"
    assert morning.event.since == at("2026-11-25 23:00")  # firing since the night, told in the morning
    assert morning.step.transition is None  # no status change: nothing for the audit trail


def test_recovery_resolves_and_tells_how_long_it_fired(catalog: Catalog) -> None:
    kpi = catalog.kpi("lead_to_opportunity")
    fired = decide(rule(), kpi, EMEA, ratio(1, 40), AlertState(), at("2026-11-25 11:00"), BERLIN)
    resolved = decide(rule(), kpi, EMEA, ratio(10, 40), fired.step.state, at("2026-11-25 12:30"), BERLIN)
    assert resolved.event is not None
    assert (resolved.event.kind, resolved.event.since, resolved.event.sequence) == (
        "resolved",
        at("2026-11-25 11:00"),
        1,
    )
    assert resolved.step.transition == ("firing", "resolved")
