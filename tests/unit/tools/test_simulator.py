"""The simulator's pure part: deterministic, valid, ordered, shaped like a working day, at the asked rate."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import EVENT_TYPES, parse_event, routing_key
from streams.tools.simulation.live import Simulation
from streams.tools.simulation.model import DEMO_CAMPAIGNS, SOURCE, SimulatedEvent, message, rfc3339
from tests.unit.tools.funnel_order import funnel_times, occurred

# Wednesday 13 March 2024, 09:00 UTC: 10:00 in Berlin, 05:00 in New York, 17:00 in Singapore
WORKDAY_MORNING = datetime(2024, 3, 13, 9, 0, tzinfo=UTC).timestamp()
# 23:30 UTC the same day: 00:30 in Berlin, 19:30 in New York, 07:30 in Singapore: nobody works
NIGHT = datetime(2024, 3, 13, 23, 30, tzinfo=UTC).timestamp()
DEMO_TEAMS = {"emea", "amer", "apac"}
FOUR_HOURS, TEN_MINUTES = 4 * 3600, 600
KEYED_KINDS = ("opportunity.created", "deal.lost", "lead.qualified", "call.logged")  # by deal, deal, lead, event_id


def generate(sim: Simulation, start: float, seconds: float, step: float = TEN_MINUTES) -> list[SimulatedEvent]:
    """Ask in windows of ``step`` seconds, as the live loop does."""
    events: list[SimulatedEvent] = []
    moment = start
    while moment < start + seconds:
        events += sim.events_between(moment, min(moment + step, start + seconds))
        moment += step
    return events


@pytest.fixture(scope="module")
def workday() -> list[SimulatedEvent]:
    return generate(Simulation(KpimonConfig(), seed=42, rate=2), WORKDAY_MORNING, FOUR_HOURS)


def test_the_same_seed_gives_the_same_events_and_another_seed_others() -> None:
    first = Simulation(KpimonConfig(), seed=7, rate=10).events_between(WORKDAY_MORNING, WORKDAY_MORNING + 300)
    again = Simulation(KpimonConfig(), seed=7, rate=10).events_between(WORKDAY_MORNING, WORKDAY_MORNING + 300)
    other = Simulation(KpimonConfig(), seed=8, rate=10).events_between(WORKDAY_MORNING, WORKDAY_MORNING + 300)
    assert first == again
    assert first != other


def test_every_event_validates_against_the_contract(workday: list[SimulatedEvent]) -> None:
    for topic_kind, event in workday:
        parsed = parse_event(orjson.dumps(event))
        assert topic_kind in ("crm", "marketing")
        assert parsed.source == SOURCE
        if parsed.rep_id is not None:
            assert parsed.team in DEMO_TEAMS
            assert parsed.rep_id.startswith(f"{parsed.team}-")


def test_the_model_covers_sales_and_marketing(workday: list[SimulatedEvent]) -> None:
    renewals = {"subscription.renewed"}  # the demo's subscriptions change or churn within weeks: none renews
    derived = {"lead.converted", "lead.deal_closed", "contact.lead_updated"}  # the worker sends these itself
    assert {event["type"] for _, event in workday} == set(EVENT_TYPES) - renewals - derived
    assert {event["type"] for kind, event in workday if kind == "crm"} >= {"call.logged", "deal.won"}
    assert {event["type"] for kind, event in workday if kind == "marketing"} >= {"web.session", "spend.recorded"}


def test_messages_are_keyed_by_the_routing_key(workday: list[SimulatedEvent]) -> None:
    for _, event in workday:
        key, value = message(event)
        assert value == orjson.dumps(event)
        assert key == routing_key(parse_event(value)).encode()  # what validating first would give, at no cost
    first = {kind: next(event for _, event in workday if event["type"] == kind) for kind in KEYED_KINDS}
    assert message(first["opportunity.created"])[0] == f"deal:{first['opportunity.created']['deal_id']}".encode()
    assert message(first["deal.lost"])[0] == f"deal:{first['deal.lost']['deal_id']}".encode()
    assert message(first["lead.qualified"])[0] == f"lead:{first['lead.qualified']['lead_id']}".encode()
    assert message(first["call.logged"])[0] == first["call.logged"]["event_id"].encode()


def test_event_ids_are_unique(workday: list[SimulatedEvent]) -> None:
    ids = [event["event_id"] for _, event in workday]
    assert len(ids) == len(set(ids))


def test_events_fall_in_the_asked_window_in_time_order() -> None:
    sim = Simulation(KpimonConfig(), seed=3, rate=50)
    for window_start in (WORKDAY_MORNING, WORKDAY_MORNING + 0.25, WORKDAY_MORNING + 60.125):
        window_end = window_start + 59.875
        times = [occurred(event) for _, event in sim.events_between(window_start, window_end)]
        assert times
        assert all(window_start <= moment < window_end for moment in times)
        assert times == sorted(times)


def test_funnel_follow_ups_come_after_what_they_follow(workday: list[SimulatedEvent]) -> None:
    first_seen = funnel_times(workday)
    assert all(event["rep_id"] for _, event in workday if event["type"] in ("email.replied", "meeting.held"))
    won = [event for _, event in workday if event["type"] == "deal.won"]
    assert won
    assert all(event["opened_at"] == rfc3339(first_seen["deal", event["deal_id"]]) for event in won)


def test_reps_are_busiest_in_their_team_business_hours() -> None:
    events = Simulation(KpimonConfig(), seed=5, rate=5).events_between(WORKDAY_MORNING, WORKDAY_MORNING + 3600)
    per_rep = Counter(event["rep_id"] for _, event in events if event.get("rep_id"))
    per_team = Counter(event["team"] for _, event in events if event.get("rep_id"))
    assert len(per_rep) == 12
    emea_reps = [rep for rep in per_rep if rep.startswith("emea-")]
    assert all(per_rep[rep] > 500 for rep in emea_reps)  # ~9% of ~17,000 events each
    assert per_team["emea"] > 2 * per_team["amer"]  # 10:00 in Berlin, 05:00 in New York
    assert per_team["apac"] > 1.5 * per_team["amer"]  # 17:00 in Singapore: winding down


def test_every_rep_shows_activity_within_a_minute_at_night() -> None:
    events = Simulation(KpimonConfig(), seed=11, rate=10).events_between(NIGHT, NIGHT + 60)
    per_rep = Counter(event["rep_id"] for _, event in events if event.get("rep_id"))
    assert len(per_rep) == 12
    assert len(events) >= 0.3 * 10 * 60


@pytest.mark.parametrize("start", [WORKDAY_MORNING, NIGHT], ids=["workday", "night"])
@pytest.mark.parametrize("rate", [5.0, 40.0])
def test_the_rate_is_about_the_asked_one(start: float, rate: float) -> None:
    events = generate(Simulation(KpimonConfig(), seed=13, rate=rate), start, TEN_MINUTES, step=0.1 * 60)
    assert 0.85 * rate * TEN_MINUTES <= len(events) <= 1.15 * rate * TEN_MINUTES  # asked: within 30%


def test_configured_reps_replace_the_demo_roster() -> None:
    config = KpimonConfig(
        timezone="Europe/Berlin",
        teams={"dach": TeamConfig(timezone="Europe/Berlin")},
        reps={"alice": RepConfig(team="dach"), "bob": RepConfig(team="dach")},
    )
    events = Simulation(config, seed=1, rate=5).events_between(WORKDAY_MORNING, WORKDAY_MORNING + 600)
    assert {event["rep_id"] for _, event in events if event.get("rep_id")} == {"alice", "bob"}
    assert {event["team"] for _, event in events if event.get("team")} == {"dach"}


def test_teams_without_reps_get_demo_reps() -> None:
    config = KpimonConfig(teams={"nordics": TeamConfig(timezone="Europe/Stockholm")})
    assert set(Simulation(config, seed=1).config.reps) == {f"nordics-rep{n}" for n in range(1, 5)}
    demo = Simulation(KpimonConfig(), seed=1).config
    assert set(demo.teams) == DEMO_TEAMS
    assert "emea-anna" in demo.reps
    assert Counter(rep.team for rep in demo.reps.values()) == dict.fromkeys(DEMO_TEAMS, 4)


def test_duplicates_re_emit_earlier_events_unchanged() -> None:
    sim = Simulation(KpimonConfig(), seed=17, rate=20, duplicate_rate=0.1)
    events = sim.events_between(WORKDAY_MORNING, WORKDAY_MORNING + TEN_MINUTES)
    first_by_id: dict[str, dict[str, object]] = {}
    repeats = 0
    for _, event in events:
        if event["event_id"] in first_by_id:
            assert event == first_by_id[event["event_id"]]
            repeats += 1
        else:
            first_by_id[event["event_id"]] = event
    assert repeats == sim.injected_duplicates
    assert 0.07 * len(first_by_id) < repeats < 0.13 * len(first_by_id)


def test_no_duplicates_unless_asked() -> None:
    sim = Simulation(KpimonConfig(), seed=17, rate=20)
    sim.events_between(WORKDAY_MORNING, WORKDAY_MORNING + TEN_MINUTES)
    assert sim.injected_duplicates == 0


@pytest.mark.parametrize(("rate", "duplicate_rate"), [(0, 0.0), (-1, 0.0), (10, 1.0), (10, -0.1)])
def test_invalid_rates_are_refused(rate: float, duplicate_rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Simulation(KpimonConfig(), seed=1, rate=rate, duplicate_rate=duplicate_rate)


def test_campaigns_come_from_a_small_fixed_set_and_follow_the_lead_into_its_deal(
    workday: list[SimulatedEvent],
) -> None:
    known = dict(DEMO_CAMPAIGNS)
    named = [event for _, event in workday if "campaign_id" in event]
    assert {event["campaign_id"] for event in named} <= set(known)
    for event in named:
        if "channel" in event:
            assert known[event["campaign_id"]] == event["channel"], event
    launched = {event["campaign_id"] for _, event in workday if event["type"] == "campaign.launched"}
    assert launched and launched <= set(known)
    leads = {event["lead_id"]: event for _, event in workday if event["type"] == "lead.created"}
    assert {lead.get("campaign_id") for lead in leads.values()} >= {None, "search-brand", "newsletter"}
    deals = {}
    for _, event in workday:
        if event["type"] == "opportunity.created":
            lead = leads[event["lead_id"]]
            assert (event.get("channel"), event.get("campaign_id")) == (lead["channel"], lead.get("campaign_id"))
            deals[event["deal_id"]] = event
    won = [event for _, event in workday if event["type"] == "deal.won"]
    assert any("campaign_id" in event for event in won)
    for event in won:
        assert event.get("campaign_id") == deals[event["deal_id"]].get("campaign_id")


def test_some_spend_is_corrected_later_and_some_sessions_are_bots(workday: list[SimulatedEvent]) -> None:
    spend = [event for _, event in workday if event["type"] == "spend.recorded"]
    first = {event["event_id"]: event for event in spend if "replaces" not in event}
    corrections = [event for event in spend if "replaces" in event]
    assert corrections and {event["kind"] for event in first.values()} == {"marketing", "sales"}
    for correction in corrections:
        original = first[correction["replaces"]]
        assert occurred(correction) > occurred(original)
        assert message(correction)[0] == message(original)[0] == f"spend:{original['event_id']}".encode()
        same = ("channel", "campaign_id", "kind", "currency")
        assert [correction.get(name) for name in same] == [original.get(name) for name in same]
    sessions = [event for _, event in workday if event["type"] == "web.session"]
    bots = sum(1 for event in sessions if event.get("bot"))
    assert 0.03 < bots / len(sessions) < 0.07
