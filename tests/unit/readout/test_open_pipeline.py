"""streams.readout.open_pipeline: open deals per scope kept from the states written, as open_deals computes them."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.config import KpimonConfig, RepConfig, TeamConfig
from schemas.scopes import Scope
from streams.core.facts import scopes_for
from streams.entities.deals_leads import DealState, open_deals
from streams.readout.open_pipeline import OpenPipeline

CONFIG = KpimonConfig(teams={"emea": TeamConfig(timezone="Europe/Berlin")}, reps={"ann": RepConfig(team="emea")})
ANN = Scope(team="emea", rep="ann")


def deal(amount: float | None, rep: str = "ann", won: bool = False, campaign: str = "", stage: str = "") -> DealState:
    attributes: dict[str, list[str | int]] = {"rep": [rep, 1, "e"]}
    if campaign:
        attributes["campaign"] = [campaign, 1, "e"]
    outcome = {"kind": "won", "at": 5, "event_id": "w", "amount": amount, "reason": "", "opened_at": None}
    return {
        "created_at": 1,
        "amount": amount,
        "attributes": attributes,
        "stage": [stage, 2, "s"] if stage else None,
        "outcome": outcome if won else None,
        "event_ids": [],
    }  # type: ignore[typeddict-item]


Kept = dict[tuple[Scope, str | None], tuple[int, float]]  # (scope, stage; None: every stage) -> deals, value


def reference(states: Iterable[tuple[str, object]]) -> Kept:
    """open_deals over every stored state, summed per scope and per scope and stage (amounts exact, rounded once)."""
    sums: dict[tuple[Scope, str | None], list[float]] = {}
    for found in open_deals(states):
        for scope in scopes_for(found.team, found.rep, found.channel, found.campaign, CONFIG):
            sums.setdefault((scope, None), []).append(found.amount)
            sums.setdefault((scope, found.stage), []).append(found.amount)
    return {key: (len(amounts), float(sum(map(Fraction, amounts)))) for key, amounts in sums.items()}


def kept(pipeline: OpenPipeline) -> Kept:
    found: Kept = {}
    for scope in pipeline.scopes:
        deals = pipeline.open_deals(scope)
        if deals is not None:
            found[scope, None] = deals
        found |= {(scope, stage): deals for stage, deals in pipeline.open_deals_by_stage(scope).items()}
    return found


def test_a_stage_change_moves_a_deals_value_to_its_new_stage() -> None:
    pipeline = OpenPipeline(CONFIG)
    pipeline.apply({"0|deal:a": deal(100.0), "0|deal:b": deal(250.0, stage="proposal")})
    assert pipeline.open_deals_by_stage(ANN) == {"unknown": (1, 100.0), "proposal": (1, 250.0)}
    pipeline.take_changes()
    pipeline.apply({"0|deal:a": deal(100.0, stage="proposal")})
    assert pipeline.open_deals_by_stage(ANN) == {"proposal": (2, 350.0)}
    assert pipeline.open_deals(ANN) == (2, 350.0)
    assert ANN in pipeline.take_changes()
    pipeline.apply({"0|deal:b": deal(250.0, stage="negotiation", won=True)})  # closed: out of every stage
    assert pipeline.open_deals_by_stage(ANN) == {"proposal": (1, 100.0)}


def test_a_deal_counts_while_open_in_every_scope_it_names() -> None:
    pipeline = OpenPipeline(CONFIG)
    pipeline.apply({"0|deal:a": deal(100.0, campaign="spring"), "0|lead:l": {"created_at": 1}})
    assert pipeline.open_deals(ANN) == (1, 100.0)
    assert pipeline.open_deals(Scope(campaign="spring")) == (1, 100.0)
    named = {Scope(), Scope(team="emea"), ANN, Scope(channel="unknown"), Scope(campaign="spring")}
    assert pipeline.take_changes() == named
    pipeline.apply({"0|deal:a": deal(100.0, rep="bob", campaign="spring")})  # moved to another rep
    assert pipeline.open_deals(ANN) is None and pipeline.open_deals(Scope(team="unassigned", rep="bob")) == (1, 100.0)
    pipeline.apply({"0|deal:a": deal(100.0, rep="bob", won=True)})  # closed
    assert pipeline.scopes == set()
    pipeline.apply({"0|deal:b": deal(None)})  # no amount: not in the pipeline value, as open_deals
    assert pipeline.scopes == set()


operation = st.tuples(
    st.sampled_from(["0|deal:a", "1|deal:b", "1|deal:c", "2|lead:x"]),
    st.one_of(
        st.none(),
        st.builds(
            deal,
            st.sampled_from([None, 1.0, 0.1, 250.75]),
            st.sampled_from(["ann", "bob"]),
            st.booleans(),
            st.sampled_from(["", "spring"]),
            st.sampled_from(["", "proposal", "negotiation"]),
        ),
    ),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(operation, max_size=25), st.integers(0, 25))
def test_any_writes_deletions_and_a_recovery_give_the_reference(
    writes: list[tuple[str, DealState | None]], recover_at: int
) -> None:
    store: dict[str, object] = {}
    pipeline = OpenPipeline(CONFIG)
    for number, (key, state) in enumerate(writes):
        if number == recover_at:  # the store changed behind the keeper's back; a write comes during the reconcile
            store.pop("0|deal:a", None)
            steps = pipeline.reconcile(list(store.items()))
            next(steps, None)
        if state is None:
            store.pop(key, None)
        else:
            store[key] = state
        pipeline.apply({key: state})
        if number == recover_at:
            list(steps)
        assert kept(pipeline) == reference(store.items())
