"""Hostile bytes and JSON through the real ingest path: each message counted or dead-lettered with a reason.

Random bytes, random JSON (huge and odd numbers, deep nesting, odd Unicode, giant strings) and valid
events with one field made hostile go through ``IngestPipeline`` (validation, label placement,
dedup, entities, folding) into in-memory tables. Nothing may raise, no message may need the
``processing_error`` escape hatch, every message is accounted for exactly once, the overall calls,
emails sent and web traffic equal an offline count of the accepted messages' JSON (first copy of each
event id), and the state holds finite numbers under bounded labels only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.config import KpimonConfig
from schemas.events import entity_key_of
from streams.core.folding import GroupKey
from streams.core.labels import is_bounded_label
from streams.core.validation import REASON_CODES
from streams.worker.settings import Settings
from tests.unit.schemas.contract_examples import MINIMAL
from tests.unit.worker.pipeline_fakes import memory_pipeline

NOW = 1_764_590_400.0  # 2025-12-01 12:00 UTC
SETTINGS = Settings(partitions=1)  # one partition: only entity events are forwarded (to the re-keyed topic)
CONFIG = KpimonConfig(currency_rates={"USD": Decimal(1), "GBP": Decimal("1.2")}, reporting_currency="EUR")
SOURCE_TYPES = sorted(
    kind for kind in MINIMAL if kind not in ("lead.converted", "lead.deal_closed", "contact.lead_updated")
)

ODD_TEXTS = ["", " ", "\x00", "\u202e", "\ufeff", "\ud7ff", "\U0010ffff", "a|b", "other", "unknown", "é" * 300]
GIANT_TEXT_LENGTH = 100_001
ODD_NUMBERS = [0, -1, 2**63 - 1, 2**64 - 1, -(2**64), 10**400, 1.7e308, -1.7e308, 5e-324, 0.1, 1e15, True]
ODD_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1970-01-01T00:00:00Z",
    "2025-12-01T12:00:00",  # no offset
    "2025-12-01T11:59:00+00:00",
    "2025-12-01T12:04:59Z",
    "2025-02-30T00:00:00Z",
    "2025-12-01T12:00:00+24:00",
    "yesterday",
]
DEEP_NESTING = "[" * 5000 + "]" * 5000

odd_text = (
    st.text(st.characters(codec="utf-8"), max_size=40)
    | st.sampled_from(ODD_TEXTS)
    | st.just(GIANT_TEXT_LENGTH).map("x".__mul__)
)
odd_numbers = st.sampled_from(ODD_NUMBERS) | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
odd_times = st.sampled_from(ODD_TIMES)
json_values = st.recursive(
    st.none() | st.booleans() | odd_numbers | odd_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(odd_text, children, max_size=4),
    max_leaves=12,
)


@st.composite
def near_valid_events(draw: st.DrawFn) -> bytes:
    """A valid event of a random source type with one field replaced or added (or none)."""
    kind = draw(st.sampled_from(SOURCE_TYPES))
    event: dict[str, Any] = {
        "event_id": draw(st.sampled_from(["e1", "e2", "e3"]) | odd_text),
        "type": kind,
        "occurred_at": "2025-12-01T11:00:00Z",
        "source": "fuzz",
        **MINIMAL[kind],
    }
    field = draw(st.sampled_from([*event, "campaign_id", "channel", "rep_id", "team", "reason", "attributes"]))
    value = draw(st.none() | odd_numbers | odd_text | odd_times | json_values | st.just(DEEP_NESTING))
    if draw(st.booleans()):
        event[field] = value
    return json.dumps(event, allow_nan=True).encode("utf-8", "surrogatepass")


messages = st.lists(
    st.binary(max_size=300)
    | json_values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass"))
    | st.just(b"[" * 100_000)
    | near_valid_events(),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(batches=st.lists(messages, min_size=1, max_size=3))
async def test_every_hostile_message_is_counted_or_dead_lettered_with_a_reason(batches: Sequence[list[bytes]]) -> None:
    pipeline, state = memory_pipeline(SETTINGS, CONFIG, NOW)
    values = [value for batch in batches for value in batch]
    offset = 0
    for batch in batches:
        records = []
        for value in batch:
            records.append(SimpleNamespace(topic="crm", partition=0, offset=offset, key=None, value=value))
            offset += 1
        await pipeline.ingest(records)
    # An entity's events go on to the re-keyed topic, where they are applied: read it as the worker does.
    forwarded = [
        SimpleNamespace(topic=SETTINGS.rekeyed_topic, partition=0, offset=number, key=sent["key"], value=sent["value"])
        for number, sent in enumerate(state.rekeyed.sent)
    ]
    if forwarded:
        await pipeline.ingest(forwarded)

    reasons = [reason.decode() for reason in state.reasons()]
    assert all(reason in REASON_CODES and reason != "processing_error" for reason in reasons), reasons
    dead = [int(dict(message["headers"])["kpimon-source-offset"]) for message in state.deadletter.sent]
    assert len(dead) == len(set(dead))  # one dead letter per message at most
    progress = state.progress["0"]
    assert progress["late"] == {}  # every valid time is within minutes of NOW
    assert sum(progress["rejected"].values()) == len(reasons)
    counted = sum(progress["events"].values()) + sum(progress["duplicates"].values())
    assert counted + len(reasons) == offset  # every message exactly once (a forwarded one where it is applied)
    assert progress["offsets"]["crm"] == offset - 1
    valid = [json.loads(value) for number, value in enumerate(values) if number not in set(dead)]
    # the order they are applied in: an entity's events after the rest, from the re-keyed topic
    expected = activity_offline(sorted(valid, key=lambda event: entity_key_of(event) is not None))
    counted_all = _all_scope_totals(state.buckets)
    for counter, value in expected.items():
        assert math.isclose(counted_all.get(counter, 0), value, rel_tol=1e-9, abs_tol=1e-9), counter
    for key, group in state.buckets.items():
        scope = GroupKey.decode(key).scope
        assert all(is_bounded_label(value) for value in (scope.team, scope.rep, scope.channel, scope.campaign))
        for counters in group["buckets"].values():
            assert all(isinstance(value, int | float) and math.isfinite(value) for value in counters.values())
            assert all(is_bounded_label(name.split(":", 1)[-1]) for name in counters if name.startswith("lost_reason:"))


def activity_offline(accepted: list[dict[str, Any]]) -> dict[str, float]:
    """Calls, emails sent and web traffic of the first copy of each event id, from the JSON alone, in this order."""
    totals = dict.fromkeys(("calls", "call_duration_seconds", "emails_sent", "web_sessions", "web_pageviews"), 0.0)
    seen: set[str] = set()
    for event in accepted:
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        if event["type"] == "call.logged":
            totals["calls"] += 1
            totals["call_duration_seconds"] += event["duration_seconds"]
        elif event["type"] == "email.sent":
            totals["emails_sent"] += 1
        elif event["type"] == "web.session" and not event.get("bot", False):
            totals["web_sessions"] += 1
            totals["web_pageviews"] += event["pageviews"]
    return totals


def _all_scope_totals(buckets: dict[str, Any]) -> dict[str, float]:
    """Every counter of the ``all`` scope, summed over its month buckets."""
    totals: dict[str, float] = {}
    for key, group in buckets.items():
        decoded = GroupKey.decode(key)
        if decoded.scope.kind == "all" and decoded.resolution.name == "1mo":
            for counters in group["buckets"].values():
                for name, value in counters.items():
                    totals[name] = totals.get(name, 0) + value
    return totals


async def test_the_year_1_in_a_plus_14_zone_is_dead_lettered_as_out_of_range() -> None:
    """It once passed the contract and raised in the window code."""
    event = {"event_id": "e", "type": "call.logged", "source": "s", **MINIMAL["call.logged"]}
    event["occurred_at"] = "0001-01-01T00:00:00+14:00"
    pipeline, state = memory_pipeline(SETTINGS, CONFIG, datetime(2025, 12, 1, tzinfo=UTC).timestamp())
    message = SimpleNamespace(topic="crm", partition=0, offset=0, key=None, value=json.dumps(event).encode())
    await pipeline.ingest([message])
    assert state.reasons() == [b"out_of_range"]
