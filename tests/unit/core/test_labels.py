"""streams.core.labels: bounded label values, placed the same way on every reading of a batch."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.config import KpimonConfig, LabelRule, LabelsConfig, RepConfig, TeamConfig
from schemas.events import parse_event
from streams.core.dedup import MemorySeen, chunk_key, encode_chunk
from streams.core.folding import BucketGroup, GroupKey, ProgressValue
from streams.core.labels import OTHER_LABEL, LabelPlacement, LabelPolicy, is_bounded_label, most_scopes
from streams.core.records import Accepted, Position, Record
from streams.core.validation import Rejection
from streams.ingest.batch import StoredState, plan_batch

AT = 1_764_590_400  # 2025-12-01 12:00 UTC


def config(**labels: LabelRule) -> KpimonConfig:
    return KpimonConfig(
        teams={"emea": TeamConfig()},
        reps={"ann": RepConfig(team="emea")},
        currency_rates={"USD": Decimal(1)},
        labels=LabelsConfig(**labels),
    )


def event(offset: int, event_type: str, partition: int = 0, **fields: Any) -> Accepted:
    payload = {"event_id": f"e{partition}-{offset}", "type": event_type, "source": "test", **fields}
    payload["occurred_at"] = datetime.fromtimestamp(AT, UTC).isoformat()
    return Accepted(Position("marketing", partition, offset), parse_event(orjson.dumps(payload)))


def session(offset: int, campaign: str, partition: int = 0) -> Accepted:
    return event(
        offset, "web.session", partition, visitor_id="v", pageviews=2, duration_seconds=5, campaign_id=campaign
    )


def placed(policy: LabelPolicy, records: list[Accepted]) -> tuple[list[Accepted], LabelPlacement]:
    placement = LabelPlacement(policy, {})
    return [placement.place(record, count=True) for record in records], placement


@pytest.mark.parametrize(
    ("value", "bounded"),
    [
        ("spring-2026", True),
        ("Frühling 2026 / München", True),
        ("a" * 100, True),
        ("a" * 101, False),
        ("line\nbreak", False),
        ("zero\u200bwidth", False),  # a format character
        ("\ue000private", False),
        ("nul\x00", False),
    ],
)
def test_label_values_are_bounded_in_length_and_characters(value: str, bounded: bool) -> None:
    assert is_bounded_label(value) is bounded


def test_the_first_unknown_values_of_a_partition_are_admitted_and_the_rest_folded_and_counted() -> None:
    policy = LabelPolicy.from_config(config(campaigns=LabelRule(max_unknown=2)))
    records, placement = placed(policy, [session(n, f"c{n % 4}") for n in range(8)])
    assert [r.event.campaign_id for r in records] == ["c0", "c1", "other", "other", "c0", "c1", "other", "other"]
    assert placement.admitted == {"0": {"campaign": ["c0", "c1"]}}
    assert placement.folded == {"0": {"campaign": 4}}


def test_known_and_reserved_values_are_always_labels_and_do_not_fill_the_cap() -> None:
    policy = LabelPolicy.from_config(config(channels=LabelRule(known=("web",), max_unknown=0)))
    records, placement = placed(
        policy,
        [
            event(0, "lead.created", lead_id="l0", channel="web"),
            event(1, "lead.created", lead_id="l1", channel="unknown"),
            event(2, "lead.created", lead_id="l2", channel="tv"),
        ],
    )
    assert [r.event.channel for r in records] == ["web", "unknown", OTHER_LABEL]
    assert placement.folded == {"0": {"channel": 1}}


def test_a_hostile_value_is_folded_even_below_the_cap() -> None:
    policy = LabelPolicy.from_config(config())
    records, placement = placed(policy, [session(0, "x" * 150), session(1, "tab\there")])
    assert [r.event.campaign_id for r in records] == [OTHER_LABEL, OTHER_LABEL]
    assert placement.admitted == {}


def test_loss_reasons_outside_the_configured_list_are_folded() -> None:
    policy = LabelPolicy.from_config(config(lost_reasons=LabelRule(known=("price",), unknown="fold")))
    records, _ = placed(
        policy,
        [
            event(0, "deal.lost", deal_id="d0", reason="price"),
            event(1, "deal.lost", deal_id="d1", reason="the champion left; budget moved to Q3 (see notes)"),
        ],
    )
    assert [r.event.reason for r in records] == ["price", OTHER_LABEL]


def test_deal_stages_beyond_the_cap_are_folded_and_the_from_stage_left_as_sent() -> None:
    """Only ``to_stage`` is a label (the stage a deal is in); ``from_stage`` is read by no KPI."""
    policy = LabelPolicy.from_config(config(stages=LabelRule(known=("proposal",), max_unknown=1)))
    changes = [("new", "proposal"), ("proposal", "negotiation"), ("negotiation", "legal review"), ("x", "unknown")]
    records, placement = placed(
        policy,
        [
            event(n, "opportunity.stage_changed", deal_id=f"d{n}", from_stage=before, to_stage=after)
            for n, (before, after) in enumerate(changes)
        ],
    )
    assert [(r.event.from_stage, r.event.to_stage) for r in records] == [
        ("new", "proposal"),  # known
        ("proposal", "negotiation"),  # the one admitted
        ("negotiation", OTHER_LABEL),  # past the cap
        ("x", "unknown"),  # reserved: always a label
    ]
    assert placement.admitted == {"0": {"stage": ["negotiation"]}}
    assert placement.folded == {"0": {"stage": 1}}


def test_unknown_reps_fold_into_other_within_their_team() -> None:
    policy = LabelPolicy.from_config(config(reps=LabelRule(unknown="fold")))
    records, _ = placed(
        policy,
        [
            event(0, "email.sent", rep_id="ann", contact_id="c"),
            event(1, "email.sent", rep_id="bob", team="emea", contact_id="c"),
        ],
    )
    assert [(r.event.team, r.event.rep_id) for r in records] == [(None, "ann"), ("emea", OTHER_LABEL)]


def test_unknown_reps_and_teams_can_be_refused_with_a_reason() -> None:
    policy = LabelPolicy.from_config(
        config(reps=LabelRule(unknown="deadletter"), teams=LabelRule(unknown="deadletter"))
    )
    assert policy.refusal(event(0, "email.sent", rep_id="ann", contact_id="c").event) is None
    refused = policy.refusal(event(1, "email.sent", rep_id="mallory", contact_id="c").event)
    assert isinstance(refused, Rejection) and refused.reason == "unknown_rep"
    assert "add it under reps" in refused.detail
    refused = policy.refusal(event(2, "email.sent", rep_id="ann", team="nowhere", contact_id="c").event)
    assert isinstance(refused, Rejection) and refused.reason == "unknown_team"


def test_the_config_refuses_dead_lettering_channels_and_known_reps_under_labels() -> None:
    problems = KpimonConfig(
        labels=LabelsConfig(channels=LabelRule(unknown="deadletter"), reps=LabelRule(known=("x",)))
    ).cross_reference_problems()
    assert [location for location, _ in problems] == [("labels", "reps", "known"), ("labels", "channels", "unknown")]


def _campaign_totals(groups: dict[str, BucketGroup], counter: str) -> Counter[str]:
    """The ``counter`` per campaign scope (``""``: the all scope), from the month groups."""
    totals: Counter[str] = Counter()
    for key, group in groups.items():
        decoded = GroupKey.decode(key)
        if decoded.resolution.name != "1mo" or decoded.scope.kind not in ("all", "campaign"):
            continue
        for counters in group["buckets"].values():
            totals[decoded.scope.campaign] += int(counters.get(counter, 0))
    return totals


def _run(
    batches: list[list[Record]], cfg: KpimonConfig, crash_after_progress: int | None = None
) -> tuple[dict[str, BucketGroup], dict[str, ProgressValue]]:
    """The batches planned and written in turn; the batch ``crash_after_progress`` writes its progress only."""
    seen: MemorySeen = MemorySeen()
    groups: dict[str, BucketGroup] = {}
    progress: dict[str, ProgressValue] = {}
    entities: dict[str, Any] = {}
    for number, batch in enumerate(batches):
        plan = plan_batch(batch, StoredState(seen, groups, progress, entities), cfg)
        for stage in plan.stages:
            for key, chunk in stage.seen.items():
                seen[chunk_key(key, chunk.day, str(number))] = encode_chunk(chunk.entries)
            progress.update(stage.progress)
            if number == crash_after_progress and stage.name == "progress":
                break
            groups.update(stage.groups)
            entities.update(stage.entities)
    return groups, progress


@settings(max_examples=60, deadline=None)
@given(
    campaigns=st.lists(st.sampled_from([f"c{n}" for n in range(12)]), min_size=1, max_size=40),
    cap=st.integers(0, 6),
    cut=st.integers(0, 40),
    replay=st.integers(0, 40),
)
def test_a_capped_dimension_keeps_the_total_exact_and_a_replay_places_every_event_as_before(
    campaigns: list[str], cap: int, cut: int, replay: int
) -> None:
    cfg = config(campaigns=LabelRule(max_unknown=cap))
    records: list[Record] = [session(offset, campaign) for offset, campaign in enumerate(campaigns)]
    groups, progress = _run([records[:cut], records[cut:]], cfg)
    totals = _campaign_totals(groups, "web_sessions")
    assert totals[""] == len(campaigns)  # the all scope: exact whatever the fold
    assert sum(count for campaign, count in totals.items() if campaign) == len(campaigns)
    admitted = progress["0"].get("labels", {}).get("campaign", [])
    assert admitted == list(dict.fromkeys(campaigns))[:cap]  # the first distinct values, in order
    assert set(totals) - {""} <= {*admitted, OTHER_LABEL}
    assert progress["0"].get("folded", {}).get("campaign", 0) == totals[OTHER_LABEL]
    # a crash after the second batch's progress: read again from ``replay``, with the admissions stored
    again, again_progress = _run([records[:cut], records[cut:], records[min(replay, cut) :]], cfg, 1)
    assert _campaign_totals(again, "web_sessions") == totals
    assert again_progress["0"] == progress["0"]


def test_the_most_scopes_of_a_config_count_known_reserved_and_admitted_values() -> None:
    policy = LabelPolicy.from_config(
        config(
            reps=LabelRule(unknown="fold"),
            teams=LabelRule(unknown="deadletter"),
            channels=LabelRule(known=("web",), max_unknown=10),
            campaigns=LabelRule(max_unknown=5),
        )
    )
    reserved = 3  # other, unknown, unassigned
    teams, reps = 1 + reserved, 1 + reserved  # emea; ann
    assert most_scopes(policy, partitions=4) == {
        "all": 1,
        "team": teams,
        "rep": teams * reps,
        "channel": 1 + reserved + 4 * 10,
        "campaign": reserved + 4 * 5,
    }
