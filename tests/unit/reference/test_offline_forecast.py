"""tests/reference/offline_forecast.py: the acceptance set by hand, and kpimon's deal states against it.

kpimon's side is its own pure code (deal states from ``streams.entities.deals_leads`` in any delivery order
with copies, their counters, ``OpenPipeline``, ``schemas.forecast``); the reference walks each deal's events
in time order instead.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.config import KpimonConfig
from schemas.events import parse_event
from schemas.forecast import weighted_pipeline_projection
from schemas.scopes import Scope
from streams.entities.deals_leads import (
    LOST_STAGE_PREFIX,
    WON_STAGE_PREFIX,
    DealState,
    apply_deal_event,
    deal_facts,
    empty_deal,
)
from streams.readout.open_pipeline import OpenPipeline
from tests.reference.offline_forecast import NO_STAGE, StageForecast, acceptance_events, projection, stage_forecast

NOW = 1_765_000_000
WINDOW = 30 * 86_400
STAGES = ("discovery", "proposal", "negotiation")


def test_the_acceptance_set_by_hand() -> None:
    """See acceptance_events: 120,000 and 5.75 deals by month end (tests/unit/schemas/test_forecast.py)."""
    forecast = stage_forecast(acceptance_events(NOW, "f", "acme", "acme-ann"), NOW - WINDOW, NOW - 3_600)
    assert dict(forecast.won_from) == {"negotiation": 3, "proposal": 1}
    assert dict(forecast.lost_from) == {"negotiation": 1, "proposal": 1, "discovery": 2}
    assert dict(forecast.open_value) == {
        "negotiation": 40_000,
        "proposal": 20_000,
        "discovery": 30_000,
        NO_STAGE: 10_000,
    }
    assert (forecast.won_in_period, forecast.revenue_in_period) == (4, 75_000)
    assert projection(forecast, "revenue") == 120_000
    assert projection(forecast, "deals") == Fraction(23, 4)


def iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def random_deal(rng: random.Random, name: str) -> list[dict[str, Any]]:
    """A deal's events: created, stage changes, outcomes (some re-won, lost after a win, re-opened after one)."""
    events: list[dict[str, Any]] = []
    at = NOW - rng.randrange(WINDOW + 10 * 86_400)

    def add(kind: str, **fields: Any) -> None:
        nonlocal at
        at += rng.randrange(1, 5 * 86_400)
        envelope = {"event_id": f"{name}-{len(events)}", "type": kind, "occurred_at": iso(min(at, NOW)), "source": "t"}
        events.append({**envelope, "deal_id": name, **fields})

    if rng.random() < 0.9:  # some deals are known by their outcome only
        add("opportunity.created", amount=str(Decimal(rng.randrange(100, 10_000_000)) / 100), currency="USD")
    for _ in range(rng.randrange(6)):
        if rng.random() < 0.6:
            add("opportunity.stage_changed", from_stage="x", to_stage=rng.choice(STAGES))
        elif rng.random() < 0.6:
            add("deal.won", amount=str(rng.randrange(100, 50_000)), currency="USD")
        else:
            add("deal.lost", reason="price")
    return events


def kpimon_forecast(events: list[dict[str, Any]], window_start: int, period_start: int) -> StageForecast:
    """kpimon's per-stage counts of the scope ``all``: each deal's state, its counters, and the open pipeline."""
    states: dict[str, DealState] = defaultdict(empty_deal)
    for event in events:
        parsed = parse_event(orjson.dumps(event))
        states[event["deal_id"]] = apply_deal_event(states[event["deal_id"]], parsed, lambda a, c: float(a))  # type: ignore[arg-type]
    result = StageForecast()
    for deal_id, state in states.items():
        for fact in deal_facts(deal_id, state):
            for name, value in fact.counters.items():
                if fact.timestamp >= window_start and name.startswith(WON_STAGE_PREFIX):
                    result.won_from[name.removeprefix(WON_STAGE_PREFIX)] += int(value)
                if fact.timestamp >= window_start and name.startswith(LOST_STAGE_PREFIX):
                    result.lost_from[name.removeprefix(LOST_STAGE_PREFIX)] += int(value)
                if fact.timestamp >= period_start and name in ("deals_won", "revenue"):
                    if name == "deals_won":
                        result.won_in_period += int(value)
                    else:
                        result.revenue_in_period += Decimal(str(value))
    pipeline = OpenPipeline(KpimonConfig())
    pipeline.apply({f"0|deal:{deal_id}": state for deal_id, state in states.items()})
    for stage, (count, value) in pipeline.open_deals_by_stage(Scope()).items():
        result.open_deals[stage], result.open_value[stage] = count, Decimal(value)
    return result


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), copies=st.integers(0, 20))
def test_kpimon_gives_the_references_stage_counts_and_projection_in_any_order(seed: int, copies: int) -> None:
    rng = random.Random(seed)
    events = [event for number in range(25) for event in random_deal(rng, f"deal-{number}")]
    shuffled = [*events, *rng.choices(events, k=copies)]
    rng.shuffle(shuffled)
    window_start, period_start = NOW - WINDOW, NOW - 7 * 86_400
    expected = stage_forecast(events, window_start, period_start)
    found = kpimon_forecast(shuffled, window_start, period_start)
    assert {k: v for k, v in found.won_from.items() if v} == {k: v for k, v in expected.won_from.items() if v}
    assert {k: v for k, v in found.lost_from.items() if v} == {k: v for k, v in expected.lost_from.items() if v}
    assert dict(found.open_deals) == dict(expected.open_deals)
    assert {k: float(v) for k, v in found.open_value.items()} == pytest.approx(
        {k: float(v) for k, v in expected.open_value.items()}
    )
    assert found.won_in_period == expected.won_in_period
    assert found.revenue_in_period == expected.revenue_in_period  # whole amounts: exact
    for of, won, opened in (
        ("revenue", float(found.revenue_in_period), {k: float(v) for k, v in found.open_value.items()}),
        ("deals", float(found.won_in_period), {k: float(v) for k, v in found.open_deals.items()}),
    ):
        reference = projection(expected, of)
        computed = weighted_pipeline_projection(won, opened, found.won_from, found.lost_from)
        assert computed == (None if reference is None else pytest.approx(float(reference)))
