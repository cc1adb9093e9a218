"""streams.core.facts: what an event counts (counter deltas) and where (scopes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.catalog import load_catalog
from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.events import AnyEvent, parse_event
from schemas.scopes import OVERALL, Scope
from streams.core.facts import UNASSIGNED_TEAM, counter_deltas, scopes_of
from streams.entities.accounts import account_facts, apply_account_event, empty_account
from streams.entities.attribution import leadless_deal_facts
from streams.entities.contacts import apply_contact_event, contact_facts, empty_contact
from streams.entities.deals_leads import (
    apply_deal_event,
    apply_lead_event,
    deal_facts,
    empty_deal,
    empty_lead,
    fact_changes,
    lead_facts,
)
from streams.entities.spend import apply_spend_event, empty_spend, spend_facts
from tests.unit.schemas.contract_examples import MINIMAL

CONFIG = KpimonConfig(
    timezone="Europe/Berlin",
    teams={"emea": TeamConfig(timezone="Europe/Berlin"), "amer": TeamConfig(timezone="America/New_York")},
    reps={"alice": RepConfig(team="emea"), "bob": RepConfig(team="amer")},
)


def make(event_type: str, **changes: Any) -> AnyEvent:
    data = {
        "event_id": "evt-1",
        "occurred_at": "2026-03-02T09:30:00Z",
        "source": "test",
        "type": event_type,
        **MINIMAL[event_type],
        **changes,
    }
    return parse_event(json.dumps({key: value for key, value in data.items() if value is not ...}).encode())


@pytest.mark.parametrize(
    ("event", "deltas"),
    [
        (
            make("call.logged", duration_seconds=95.5, outcome="connected"),
            {"calls": 1, "call_duration_seconds": 95.5, "calls_connected": 1},
        ),
        (make("call.logged", duration_seconds=0, outcome="no_answer"), {"calls": 1, "call_duration_seconds": 0.0}),
        (make("call.logged", duration_seconds=20, outcome="voicemail"), {"calls": 1, "call_duration_seconds": 20.0}),
        (make("email.sent"), {"emails_sent": 1}),
        (make("email.replied"), {"email_replies": 1}),
        (make("meeting.booked"), {"meetings_booked": 1}),
        (make("meeting.held"), {"meetings_held": 1}),
        (make("demo.completed"), {"demos_completed": 1}),
        (make("content.published"), {"content_published": 1}),
        (make("social.posted"), {"social_posts": 1}),
        (make("campaign.launched"), {"campaigns_launched": 1}),
        (make("email_campaign.sent", recipients=2500), {"email_campaign_sends": 2500}),
        (make("email_campaign.sent", recipients=0), {"email_campaign_sends": 0}),
        (
            make("web.session", pageviews=4, duration_seconds=130.5),
            {"web_sessions": 1, "web_pageviews": 4, "web_session_seconds": 130.5},
        ),
        (  # one page or none: a bounce
            make("web.session", pageviews=1, duration_seconds=8),
            {"web_sessions": 1, "web_pageviews": 1, "web_session_seconds": 8.0, "web_bounced_sessions": 1},
        ),
        (
            make("web.session", pageviews=0, duration_seconds=0),
            {"web_sessions": 1, "web_pageviews": 0, "web_session_seconds": 0.0, "web_bounced_sessions": 1},
        ),
        # a bot counts in web_bot_sessions only: no session, pageview, time or bounce
        (make("web.session", pageviews=1, bot=True), {"web_bot_sessions": 1}),
        (make("web.session", pageviews=9, duration_seconds=600, bot=True), {"web_bot_sessions": 1}),
        (make("survey.responded", kind="nps", score=9), {"nps_responses": 1, "nps_promoters": 1}),
        (make("survey.responded", kind="nps", score=6), {"nps_responses": 1, "nps_detractors": 1}),
        (make("survey.responded", kind="nps", score=7), {"nps_responses": 1}),
        (make("survey.responded", kind="csat", score=4), {"csat_responses": 1, "csat_satisfied": 1}),
        (make("survey.responded", kind="csat", score=3), {"csat_responses": 1}),
        (make("survey.responded", kind="ces", score=6), {"ces_responses": 1, "ces_score_total": 6}),
        (make("survey.responded", kind="ces", score=6, account_id="a-1"), {}),  # the account's (entities.accounts)
    ],
    ids=lambda value: getattr(value, "type", None),
)
def test_counter_deltas(event: AnyEvent, deltas: dict[str, float]) -> None:
    assert counter_deltas(event) == deltas


@pytest.mark.parametrize(
    "event_type",
    [
        "lead.created",
        "lead.qualified",
        "opportunity.created",
        "opportunity.stage_changed",
        "deal.won",
        "deal.lost",
        "subscription.started",
        "subscription.renewed",
        "subscription.changed",
        "subscription.churned",  # counted from the account's own history (streams.entities.accounts)
        "email.opened",
        "email.clicked",
        "email.bounced",
        "email.unsubscribed",
        "spend.recorded",  # counted from the spend's own records (streams.entities.spend)
    ],
)
def test_events_no_kpi_counts_yet_have_no_deltas(event_type: str) -> None:
    assert counter_deltas(make(event_type)) == {}


def test_catalog_and_code_agree_on_counters() -> None:
    """Every counter the catalog declares is emitted from its declared source, and no other.

    Activity counters come from counter_deltas, funnel counters from the deal and lead
    facts of streams.entities.deals_leads (their per-deal and per-reason counters aside).
    """
    catalog = load_catalog()
    emitted: dict[str, set[str]] = {}
    for event_type in MINIMAL:
        for outcome in ("connected", "no_answer"):
            changes = {"outcome": outcome} if event_type == "call.logged" else {}
            for counter in counter_deltas(make(event_type, **changes)):
                emitted.setdefault(counter, set()).add(event_type)
    created = apply_lead_event(empty_lead(), make("lead.created", event_id="c"))  # type: ignore[arg-type]
    for event in [
        make("lead.created"),
        make("lead.qualified", stage="mql"),
        make("lead.qualified", stage="sql"),
        make("lead.converted", stage="opportunity"),
        make("lead.converted", stage="customer"),
    ]:
        lead = apply_lead_event(created if event.type == "lead.converted" else empty_lead(), event)  # type: ignore[arg-type]
        for fact in fact_changes(lead_facts(created) if event.type == "lead.converted" else [], lead_facts(lead)):
            for counter in fact.counters:
                emitted.setdefault(counter, set()).add(event.type)
    deal_events = [make("opportunity.created"), make("deal.won", opened_at="2026-03-01T09:30:00Z"), make("deal.lost")]
    for event in deal_events:
        deal = apply_deal_event(empty_deal(), event, lambda amount, currency: float(amount))  # type: ignore[arg-type]
        for fact in deal_facts("d1", deal):
            for counter in fact.counters:
                if ":" not in counter:
                    emitted.setdefault(counter, set()).add(event.type)
    for event in [make("web.session", pageviews=1), make("web.session", bot=True)]:
        for counter in counter_deltas(event):
            emitted.setdefault(counter, set()).add(event.type)
    for kind in ("marketing", "sales"):
        spend = apply_spend_event(empty_spend(), make("spend.recorded", kind=kind), lambda amount, currency: 1.0)  # type: ignore[arg-type]
        for fact in spend_facts("evt-1", spend):
            for counter in fact.counters:
                emitted.setdefault(counter, set()).add("spend.recorded")
    # a person's (streams.entities.contacts): the email funnel, leads after a click; revenue attributed at the win
    for event in [make("email.opened"), make("email.clicked"), make("email.bounced"), make("email.unsubscribed")]:
        for fact in contact_facts("c-1", apply_contact_event(empty_contact(), event)):  # type: ignore[arg-type]
            implied = event.type == "email.clicked" and "email_unique_opens" in fact.counters  # an implied open
            for counter in [] if implied else fact.counters:
                emitted.setdefault(counter, set()).add(event.type)
    clicked = apply_contact_event(empty_contact(), make("email.clicked"))  # type: ignore[arg-type]
    person = {"value": "c-1", "at": 0, "event_id": "lc"}
    lead = make(
        "contact.lead_updated",
        event_id="v",
        person=person,
        created_at=int(make("email.clicked").occurred_at.timestamp()),
    )
    converted = apply_contact_event(clicked, lead)  # type: ignore[arg-type]
    for fact in fact_changes(contact_facts("c-1", clicked), contact_facts("c-1", converted)):
        for counter in fact.counters:
            emitted.setdefault(counter, set()).add("lead.created")
    costed = apply_deal_event(empty_deal(), make("deal.won", cost=100), lambda amount, currency: float(amount))  # type: ignore[arg-type]
    for fact in deal_facts("d1", costed):
        for counter in fact.counters:
            if ":" not in counter:
                emitted.setdefault(counter, set()).add("deal.won")
    emitted["configured_gross_margin"] = {"config"}  # not counted: the config file's, read with the stocks
    won = apply_deal_event(empty_deal(), make("deal.won"), lambda amount, currency: float(amount))  # type: ignore[arg-type]
    for fact in leadless_deal_facts("d1", won):
        for counter in fact.counters:
            emitted.setdefault(counter, set()).add("deal.won")
    # an account's (streams.entities.accounts): movements, stock and retention counters
    account = [
        make("subscription.started", mrr=10, cost=2, subscription_id="s1"),
        make("subscription.churned", event_id="e2", occurred_at="2026-03-03T00:00:00Z", subscription_id="s1"),
        make("subscription.started", event_id="e3", occurred_at="2026-03-04T00:00:00Z", mrr=10, subscription_id="s2"),
        make("subscription.changed", event_id="e4", occurred_at="2026-03-05T00:00:00Z", mrr=20, subscription_id="s2"),
        make("subscription.changed", event_id="e5", occurred_at="2026-03-06T00:00:00Z", mrr=5, subscription_id="s2"),
    ]
    scores = (("nps", 0), ("csat", 5), ("ces", 3))
    answers = [make("survey.responded", kind=kind, score=score) for kind, score in scores]
    for event in answers:
        for counter in counter_deltas(event):
            emitted.setdefault(counter, set()).add(event.type)
    state = empty_account()
    for event in account:
        new = apply_account_event(state, event, lambda amount, currency: float(amount))  # type: ignore[arg-type]
        for fact in fact_changes(account_facts("a-1", state), account_facts("a-1", new)):
            for counter in fact.counters:
                source = event.type if "stock_" not in counter and "retention_" not in counter else None
                emitted.setdefault(counter, set()).add(source or catalog.counters[counter].source)
        state = new
    assert set(emitted) == set(catalog.counters)
    assert {counter: {spec.source} for counter, spec in catalog.counters.items()} == emitted


@pytest.mark.parametrize(
    ("event", "scopes"),
    [
        # a rep with the team on the event (even if the config puts the rep elsewhere)
        (
            make("call.logged", rep_id="alice", team="amer"),
            [OVERALL, Scope(team="amer", rep="alice"), Scope(team="amer")],
        ),
        # the rep's team from the config
        (make("email.sent", rep_id="alice"), [OVERALL, Scope(team="emea", rep="alice"), Scope(team="emea")]),
        (make("email.sent", rep_id="bob"), [OVERALL, Scope(team="amer", rep="bob"), Scope(team="amer")]),
        # a rep the config does not know, no team on the event
        (
            make("meeting.booked", rep_id="carol"),
            [OVERALL, Scope(team="unassigned", rep="carol"), Scope(team="unassigned")],
        ),
        # a marketing event with a channel and no team
        (make("content.published", channel="blog"), [OVERALL, Scope(channel="blog")]),
        # a campaign's own events count under it (MINIMAL gives them campaign cmp-1)
        (
            make("campaign.launched", channel="paid_search"),
            [OVERALL, Scope(channel="paid_search"), Scope(campaign="cmp-1")],
        ),
        (
            make("spend.recorded", team="emea", campaign_id="spring"),
            [OVERALL, Scope(team="emea"), Scope(channel="paid_social"), Scope(campaign="spring")],
        ),
        # a web session without channel counts under "unknown", as a lead does
        (make("web.session", campaign_id="spring"), [OVERALL, Scope(channel="unknown"), Scope(campaign="spring")]),
        (make("web.session", channel="social"), [OVERALL, Scope(channel="social")]),
        (make("email.opened"), [OVERALL, Scope(campaign="cmp-1")]),
        # a team-only event
        (make("lead.created", team="emea"), [OVERALL, Scope(team="emea")]),
        # a team the config does not define is still a team scope
        (make("lead.created", team="apac"), [OVERALL, Scope(team="apac")]),
        # team and channel, no rep: no team x channel scope
        (
            make("social.posted", team="emea", channel="linkedin"),
            [OVERALL, Scope(team="emea"), Scope(channel="linkedin")],
        ),
        # rep and channel on an event that is not a rep event
        (
            make("lead.created", rep_id="bob", channel="web"),
            [OVERALL, Scope(team="amer", rep="bob"), Scope(team="amer"), Scope(channel="web")],
        ),
        (make("deal.won", rep_id="zed"), [OVERALL, Scope(team="unassigned", rep="zed"), Scope(team="unassigned")]),
        # nothing to scope by
        (make("deal.won"), [OVERALL]),
        (make("web.session"), [OVERALL, Scope(channel="unknown")]),
        # no campaign on the event: no campaign scope (there is no "unknown" campaign)
        (make("spend.recorded", channel="social"), [OVERALL, Scope(channel="social")]),
        (make("email_campaign.sent"), [OVERALL, Scope(campaign="cmp-1")]),
    ],
)
def test_scopes_of(event: AnyEvent, scopes: list[Scope]) -> None:
    assert scopes_of(event, CONFIG) == scopes


def test_unassigned_team_name() -> None:
    assert UNASSIGNED_TEAM == "unassigned"


def test_rep_without_config() -> None:
    assert scopes_of(make("email.sent", rep_id="alice"), KpimonConfig()) == [
        OVERALL,
        Scope(team="unassigned", rep="alice"),
        Scope(team="unassigned"),
    ]


@pytest.mark.parametrize(
    ("scope", "kind", "key"),
    [
        (OVERALL, "all", "|||"),
        (Scope(team="emea"), "team", "emea|||"),
        (Scope(team="emea", rep="alice"), "rep", "emea|alice||"),
        (Scope(channel="blog"), "channel", "||blog|"),
        (Scope(team="emea", channel="blog"), "channel", "emea||blog|"),
        (Scope(campaign="spring-2026"), "campaign", "|||spring-2026"),
        (Scope(campaign="a|b|c"), "campaign", "|||a|b|c"),  # an id may hold the separator: it comes last
    ],
)
def test_scope_kind_and_key(scope: Scope, kind: str, key: str) -> None:
    assert scope.kind == kind
    assert scope.key == key
    assert Scope.from_key(key) == scope
