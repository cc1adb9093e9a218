"""streams.entities.accounts: customers, MRR movements, retention and survey answers, exact in any order and copies.

The values are the catalog's formulas over the counters an account's facts put in a window that ends after its
last event (stocks over all facts), compared with hand-worked numbers and with tests/reference/offline_customers.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.catalog import STOCK_PREFIX, load_catalog
from schemas.config import KpimonConfig
from schemas.events import AnyEvent, entity_key, parse_event
from schemas.scopes import OVERALL, Scope
from streams.core.facts import counter_deltas, event_channel, scopes_for
from streams.core.records import Accepted, Fact, Position
from streams.entities.accounts import AccountState, account_facts, apply_account_event, cap_account, empty_account
from streams.entities.deals_leads import fact_changes
from streams.entities.registry import apply_entity_events
from tests.reference.offline_customers import customer_events, customer_figures, survey_figures

DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
RATES = {"USD": Decimal(1), "EUR": Decimal("1.1")}
CATALOG = load_catalog()
CONFIG = KpimonConfig()


def to_usd(amount: Decimal, currency: str) -> float:
    return float(amount * RATES[currency])


def event(event_type: str, at: int, **fields: Any) -> AnyEvent:
    stamp = datetime.fromtimestamp(at, UTC).isoformat()
    data = {"event_id": f"{event_type}-{at}-{len(fields)}", "type": event_type, "occurred_at": stamp, "source": "t"}
    money = {"currency": "USD"} if event_type.startswith("subscription.") else {}
    return parse_event(orjson.dumps(data | {"account_id": "a1"} | money | fields))


def run(events: Sequence[AnyEvent]) -> tuple[AccountState, list[Fact]]:
    """Apply events in order (capped as the registry caps them); the final state and the counter changes made."""
    state = empty_account()
    changes: list[Fact] = []
    for item in events:
        new = apply_account_event(state, item, to_usd)  # type: ignore[arg-type]
        new = state if new is state else cap_account("a1", new)
        changes += fact_changes(account_facts("a1", state), account_facts("a1", new))
        state = new
    return state, fact_changes([], changes)


def window(facts: Sequence[Fact], start: int, scope: Scope = OVERALL) -> dict[str, float]:
    """The counters of ``scope`` in a window from ``start`` to after the last event; stocks over every fact."""
    sums: dict[str, float] = defaultdict(float)
    for fact in facts:
        if scope not in scopes_for(fact.team, fact.rep, fact.channel, fact.campaign, CONFIG):
            continue
        for name, value in fact.counters.items():
            if name.startswith(STOCK_PREFIX) or fact.timestamp >= start:
                sums[name] += value
    return dict(sums)


def kpis(
    facts: Sequence[Fact], start: int, scope: Scope = OVERALL, config: KpimonConfig = CONFIG
) -> dict[str, float | None]:
    counters = window(facts, start, scope)
    if any(name.startswith(STOCK_PREFIX) for name in counters):  # read with the stocks (kpis.with_constants)
        counters |= config.constants()
    return {kpi.id: kpi.formula.evaluate(counters) for kpi in CATALOG.kpis}


def test_start_upgrade_and_churn_on_one_day() -> None:
    _, facts = run(
        [
            event("subscription.started", T0, mrr=100, team="emea", rep_id="alice"),
            event("subscription.changed", T0 + 3600, mrr=150),
            event("subscription.churned", T0 + 7200),
        ]
    )
    values = kpis(facts, T0)
    assert values["customers_new"] == 1 and values["customers_churned"] == 1
    assert (values["mrr_new"], values["mrr_expansion"], values["mrr_churned"]) == (100, 50, 150)
    assert values["mrr_net_change"] == 0 and values["mrr"] == 0 and values["customers"] == 0
    assert values["customer_retention_rate"] is None  # no customer at the start
    assert kpis(facts, T0, Scope(team="emea", rep="alice"))["mrr_new"] == 100


def test_churn_and_return_in_one_period_is_retained_and_counted_both_ways() -> None:
    _, facts = run(
        [
            event("subscription.started", T0, mrr=100),
            event("subscription.churned", T0 + 40 * DAY),
            event("subscription.started", T0 + 50 * DAY, mrr=80),
        ]
    )
    values = kpis(facts, T0 + 31 * DAY)  # a period from day 31: active at its start and now
    assert values["customers_at_start"] == 1 and values["customers"] == 1
    assert values["customers_churned"] == 1 and values["customers_reactivated"] == 1
    assert values["customer_retention_rate"] == 1.0 and values["logo_churn_rate"] == 0.0
    assert (values["mrr_churned"], values["mrr_reactivated"], values["mrr_at_start"]) == (100, 80, 100)
    assert values["gross_revenue_retention"] == 0.0  # the churn counts, the return does not
    assert values["net_revenue_retention"] == 0.8  # the cohort's MRR now (80) over its MRR at the start
    from_day_45 = kpis(facts, T0 + 45 * DAY)  # inactive at its start: not in the cohort
    assert from_day_45["customers_at_start"] == 0 and from_day_45["customer_retention_rate"] is None


def test_a_customer_won_and_lost_in_the_period_is_in_no_rate() -> None:
    _, facts = run(
        [
            event("subscription.started", T0, mrr=100, subscription_id="old"),
            event("subscription.started", T0 + 40 * DAY, mrr=50, account_id="a1", subscription_id="new"),
        ]
    )
    _, lost = run([event("subscription.started", T0 + 35 * DAY, mrr=70), event("subscription.churned", T0 + 36 * DAY)])
    values = kpis([*facts, *lost], T0 + 31 * DAY)
    assert values["customers_at_start"] == 1 and values["customer_retention_rate"] == 1.0
    assert values["mrr_expansion"] == 50 and values["customers_churned"] == 1


def test_yearly_price_in_another_currency_is_monthly_in_the_reporting_currency() -> None:
    _, facts = run([event("subscription.started", T0, amount="1200.00", billing_period="year", currency="EUR")])
    values = kpis(facts, T0)
    assert values["mrr"] == 110.0 and values["arr"] == 1320.0 and values["mrr_new"] == 110.0


def test_two_subscriptions_one_ends_is_contraction_not_churn() -> None:
    _, facts = run(
        [
            event("subscription.started", T0, mrr=100, subscription_id="s1"),
            event("subscription.started", T0 + DAY, mrr=40, subscription_id="s2"),
            event("subscription.churned", T0 + 2 * DAY, subscription_id="s1"),
        ]
    )
    values = kpis(facts, T0 + DAY)
    assert (values["mrr_expansion"], values["mrr_contraction"], values["customers_churned"]) == (40, 100, 0)
    assert values["mrr"] == 40 and values["customer_retention_rate"] == 1.0


def test_a_repeated_answer_counts_once_and_a_late_earlier_answer_changes_nothing() -> None:
    first = event("survey.responded", T0, kind="nps", score=3)
    again = event("survey.responded", T0 + 2 * DAY, kind="nps", score=10)
    next_wave = event("survey.responded", T0 + 90 * DAY, kind="nps", score=7)
    _, facts = run([again, next_wave, again, first])  # a copy, and the earlier answer arriving late
    values = kpis(facts, T0)
    assert values["nps_responses"] == 2 and values["nps"] == 50.0  # one promoter, one passive


def test_survey_scores() -> None:
    answers = [
        event("survey.responded", T0 + i * 40 * DAY, kind=kind, score=score)
        for i, (kind, score) in enumerate([("csat", 5), ("csat", 3), ("ces", 2), ("ces", 5)])
    ]
    values = kpis(run(answers)[1], T0)
    assert values["csat"] == 0.5 and values["ces"] == 3.5 and values["csat_responses"] == 2


def test_answers_count_under_the_account_owner_unless_they_name_one() -> None:
    _, facts = run(
        [
            event("subscription.started", T0, mrr=10, team="emea", rep_id="alice", channel="partner"),
            event("survey.responded", T0 + DAY, kind="csat", score=5),
            event("survey.responded", T0 + DAY, kind="ces", score=2, team="amer", rep_id="bob", channel="chat"),
        ]
    )
    assert kpis(facts, T0, Scope(team="emea", rep="alice"))["csat_responses"] == 1
    assert kpis(facts, T0, Scope(channel="partner"))["ces_responses"] is not None
    assert kpis(facts, T0, Scope(channel="chat"))["ces"] == 2.0
    assert kpis(facts, T0, Scope(team="amer", rep="bob"))["ces"] == 2.0


def test_events_of_an_account_share_one_entity() -> None:
    assert entity_key(event("subscription.renewed", T0, mrr=1)) == "account:a1"
    assert entity_key(event("survey.responded", T0, kind="ces", score=1)) == "account:a1"


def test_a_batch_recognises_copies() -> None:
    started = event("subscription.started", T0, mrr=100)
    records = [Accepted(Position("crm", 0, offset), item) for offset, item in enumerate([started, started])]
    update = apply_entity_events(records, {}, to_usd)
    assert update.duplicates == [Position("crm", 0, 1)] and list(update.states) == ["0|account:a1"]


GENERATED = customer_events(seed=7, accounts=12, first=T0, last=T0 + 400 * DAY)
STARTS = [T0 + 100 * DAY, T0 + 300 * DAY, T0 + 390 * DAY]


def by_account(events: Sequence[dict[str, Any]]) -> dict[str, list[AnyEvent]]:
    accounts: dict[str, list[AnyEvent]] = defaultdict(list)
    for data in events:
        parsed = parse_event(orjson.dumps(data))
        key = entity_key(parsed) or data["event_id"]
        accounts[key].append(parsed)
    return accounts


def all_facts(groups: dict[str, list[AnyEvent]]) -> list[Fact]:
    facts: list[Fact] = []
    for key, events in groups.items():
        if key.startswith("account:"):
            state = empty_account()
            for item in events:
                state = apply_account_event(state, item, to_usd)  # type: ignore[arg-type]
            facts += account_facts(key, state)
        else:  # an answer without account: a plain counter (streams.core.facts)
            (item,) = events
            at = int(item.occurred_at.timestamp())
            facts.append(Fact(at, item.team, item.rep_id, event_channel(item), counter_deltas(item)))
    return facts


def scope_of(key: tuple[str, ...]) -> Scope:
    kind, *rest = key
    if kind == "all":
        return OVERALL
    if kind == "team":
        return Scope(team=rest[0])
    if kind == "rep":
        return Scope(team=rest[0], rep=rest[1])
    return Scope(channel=rest[0])


@pytest.mark.parametrize("start", STARTS)
def test_generated_accounts_match_the_offline_reference(start: int) -> None:
    facts = all_facts(by_account(GENERATED))
    customers = customer_figures(GENERATED, start, RATES)
    surveys = survey_figures(GENERATED, start)
    assert customers
    for key, expected in customers.items():
        values = kpis(facts, start, scope_of(key))
        assert values["customers"] == expected.now, key
        assert values["customers_at_start"] == expected.at_start, key
        assert (values["customers_new"] or 0, values["customers_churned"] or 0) == (expected.new, expected.churned)
        assert (values["customers_reactivated"] or 0) == expected.reactivated
        assert values["mrr"] == expected.mrr_now / 100 and values["mrr_at_start"] == expected.mrr_at_start / 100
        for kind in ("new", "expansion", "contraction", "churned", "reactivated"):
            assert (values[f"mrr_{kind}"] or 0) == expected.movements[kind] / 100, (key, kind)
        assert values["customer_retention_rate"] == pytest.approx(expected.retention_rate()), key
        assert values["logo_churn_rate"] == pytest.approx(expected.logo_churn_rate()), key
        assert values["gross_revenue_retention"] == pytest.approx(expected.gross_revenue_retention()), key
        assert values["net_revenue_retention"] == pytest.approx(expected.net_revenue_retention()), key
        assert values["arpa"] == pytest.approx(expected.arpa()), key
        assert values["gross_margin"] == pytest.approx(expected.gross_margin(1.0)), key
        assert values["customer_lifetime_value"] == pytest.approx(expected.lifetime_value(1.0)), key
    for key, expected_surveys in surveys.items():
        values = kpis(facts, start, scope_of(key))
        assert values["nps"] == pytest.approx(expected_surveys.nps()), key
        assert values["csat"] == pytest.approx(expected_surveys.csat()), key
        assert values["ces"] == pytest.approx(expected_surveys.ces()), key


BUSIEST = max(
    (key for key in by_account(GENERATED) if key.startswith("account:")),
    key=lambda key: len(by_account(GENERATED)[key]),
)
ACCOUNT_DICTS = [data for data in GENERATED if f"account:{data.get('account_id')}" == BUSIEST]
ACCOUNT_EVENTS = [parse_event(orjson.dumps(data)) for data in ACCOUNT_DICTS]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_order_and_copies_give_the_same_facts_and_movements_sum_to_the_change(data: st.DataObject) -> None:
    events = ACCOUNT_EVENTS
    order = data.draw(st.permutations(range(len(events))))
    copies = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=10))
    start = data.draw(st.integers(T0, T0 + 400 * DAY))
    state, in_order = run(events)
    _, shuffled = run([events[i] for i in order] + [events[i] for i in copies])
    assert window(shuffled, start) == window(in_order, start) == window(account_facts("a1", state), start)
    counters = window(shuffled, start)
    moved = sum(counters.get(f"mrr_{kind}_cents", 0) for kind in ("new", "expansion", "reactivated"))
    moved -= sum(counters.get(f"mrr_{kind}_cents", 0) for kind in ("contraction", "churned"))
    expected = customer_figures(ACCOUNT_DICTS, start, RATES)[("all",)]
    assert moved == expected.mrr_now - expected.mrr_at_start
    assert all(float(value).is_integer() for name, value in counters.items() if "cents" in name)


def won(event_id: str, at: int, **fields: Any) -> AnyEvent:
    data = {"event_id": event_id, "type": "deal.won", "occurred_at": datetime.fromtimestamp(at, UTC).isoformat()}
    data |= {"source": "crm", "deal_id": "d1", "amount": "2400.00", "currency": "EUR", "rep_id": "alice", **fields}
    return parse_event(orjson.dumps(data))


def opened_subscriptions(wins: Sequence[AnyEvent]) -> list[dict[str, Any]]:
    """What the deal sends, applying its wins in turn (each batch sends what the state newly implies)."""
    records = [Accepted(Position("crm", 0, offset), item) for offset, item in enumerate(wins)]
    sent: list[dict[str, Any]] = []
    states: dict[str, Any] = {}
    for record in records:
        update = apply_entity_events([record], states, to_usd)
        states |= update.states
        sent += update.emitted
    return [event for event in sent if event["type"] == "subscription.started"]


def test_a_won_deal_naming_an_account_opens_a_subscription() -> None:
    (started,) = opened_subscriptions([won("w1", T0, account_id="a1", channel="partner")])
    assert started == {
        "event_id": "kpimon-subscription-d1-w1",
        "type": "subscription.started",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "source": "kpimon",
        "account_id": "a1",
        "subscription_id": "deal:d1",
        "amount": "2400.00",
        "currency": "EUR",
        "billing_period": "year",
        "rep_id": "alice",
        "channel": "partner",
    }
    assert entity_key(parse_event(orjson.dumps(started))) == "account:a1"
    values = kpis(run([parse_event(orjson.dumps(started))])[1], T0)
    assert values["mrr"] == 220.0 and values["customers_new"] == 1  # 2400 EUR a year at 1.1
    assert opened_subscriptions([won("w1", T0)]) == []  # no account: no subscription


def test_an_earlier_win_arriving_late_gives_the_same_customer_figures() -> None:
    first, second = won("w1", T0, account_id="a1"), won("w2", T0 + 5 * DAY, account_id="a1", amount="3600.00")
    in_order = opened_subscriptions([first, second])
    late = opened_subscriptions([second, first])
    assert [event["event_id"] for event in in_order] == ["kpimon-subscription-d1-w1"]
    assert len(late) == 2  # the later win's start, then the earlier one's
    for sent in (in_order, late):
        values = kpis(run([parse_event(orjson.dumps(event)) for event in sent])[1], T0)
        assert (values["mrr"], values["mrr_new"], values["customers_new"]) == (220.0, 220.0, 1), sent


def cohort(accounts: int, churned: int, **price: Any) -> list[Fact]:
    """``accounts`` accounts paying from day 0, ``churned`` of them churning on day 40."""
    facts: list[Fact] = []
    for number in range(accounts):
        events = [event("subscription.started", T0, account_id=f"a{number}", **price)]
        if number < churned:
            events.append(event("subscription.churned", T0 + 40 * DAY, account_id=f"a{number}"))
        facts += run(events)[1]
    return facts


WINDOW_START = T0 + 31 * DAY  # the 30 days from day 31: all 25 active at its start


def test_clv_is_arpa_times_gross_margin_over_the_churn_rate() -> None:
    costed = kpis(cohort(25, 5, mrr=100, cost=30), WINDOW_START)  # 5 of 25 churned: a churn rate of 0.2
    assert costed["arpa"] == 100 and costed["gross_margin"] == pytest.approx(0.7)
    assert costed["logo_churn_rate"] == 0.2
    assert costed["customer_lifetime_value"] == pytest.approx(100 * 0.7 / 0.2)  # 350
    uncosted = cohort(25, 5, mrr=100)
    assert kpis(uncosted, WINDOW_START)["customer_lifetime_value"] == pytest.approx(500)  # margin 1 by default
    configured = kpis(uncosted, WINDOW_START, config=KpimonConfig(gross_margin=0.8))
    assert configured["gross_margin"] == pytest.approx(0.8) and configured["customer_lifetime_value"] == pytest.approx(
        400
    )


def test_clv_has_no_value_without_churn_or_with_a_small_cohort() -> None:
    assert kpis(cohort(25, 0, mrr=100), WINDOW_START)["customer_lifetime_value"] is None  # no churn: no end
    small = kpis(cohort(19, 5, mrr=100), WINDOW_START)
    assert small["logo_churn_rate"] == pytest.approx(5 / 19) and small["customer_lifetime_value"] is None


def test_ltv_to_cac_and_cac_payback() -> None:
    acquisition = Fact(
        WINDOW_START + DAY, None, None, None, {"marketing_spend": 800, "sales_spend": 200, "deals_won": 4}
    )
    values = kpis([*cohort(25, 5, mrr=100, cost=30), acquisition], WINDOW_START)
    assert values["customer_acquisition_cost"] == 250
    assert values["ltv_to_cac"] == pytest.approx(350 / 250)
    assert values["cac_payback"] == pytest.approx(250 / 70)  # months of 70 gross profit per account


def test_generated_clv_matches_the_offline_reference() -> None:
    events = customer_events(seed=11, accounts=120, first=T0, last=T0 + 400 * DAY)
    facts = all_facts(by_account(events))
    start = T0 + 370 * DAY
    expected = customer_figures(events, start, RATES)[("all",)]
    config = KpimonConfig(gross_margin=0.6)
    values = kpis(facts, start, config=config)
    assert expected.lifetime_value(0.6) is not None
    assert values["customer_lifetime_value"] == pytest.approx(expected.lifetime_value(0.6))
    assert values["gross_margin"] == pytest.approx(expected.gross_margin(0.6))


def test_past_the_cap_renewals_go_first_and_the_facts_stay() -> None:
    events = [event("subscription.started", T0, mrr=100, subscription_id="s1")]
    events += [
        event("subscription.renewed", T0 + month * 30 * DAY, mrr=100, subscription_id="s1") for month in range(1, 600)
    ]
    events.append(event("subscription.changed", T0 + 601 * 30 * DAY, mrr=150, subscription_id="s1"))
    state, facts = run(events)
    assert len(state["points"]) == 512
    assert window(facts, T0) == window(account_facts("a1", state), T0)
    assert kpis(facts, T0)["mrr_new"] == 100 and kpis(facts, T0)["mrr_expansion"] == 50
