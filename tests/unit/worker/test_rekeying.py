"""Which events read from a source topic go to the re-keyed topic first (streams.worker.pipeline.must_be_rekeyed)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from schemas.events import parse_event, routing_key
from streams.worker.pipeline import must_be_rekeyed, partition_of
from tests.unit.schemas.contract_examples import MINIMAL

PARTITIONS = 6


def event(kind: str, **fields: Any) -> Any:
    payload = {"event_id": "e1", "type": kind, "occurred_at": "2025-12-01T11:00:00Z", "source": "test"}
    return parse_event(orjson.dumps(payload | MINIMAL[kind] | fields))


@pytest.mark.parametrize("kind", ["call.logged", "email.sent", "web.session", "spend.recorded", "deal.won"])
def test_an_event_on_the_wrong_partition_is_rekeyed(kind: str) -> None:
    parsed = event(kind)
    key = routing_key(parsed)
    wrong = (partition_of(key, PARTITIONS) + 1) % PARTITIONS
    assert must_be_rekeyed(parsed, wrong, key, PARTITIONS)


def test_an_event_of_no_entity_on_its_partition_is_applied_where_it_is_read() -> None:
    parsed = event("call.logged")
    key = routing_key(parsed)
    assert not must_be_rekeyed(parsed, partition_of(key, PARTITIONS), key, PARTITIONS)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("deal.won", {}),
        ("lead.created", {}),
        ("subscription.started", {}),
        ("spend.recorded", {}),
        ("web.session", {"contact_id": "p1"}),
    ],
)
def test_an_entitys_event_is_rekeyed_even_on_its_partition(kind: str, fields: dict[str, Any]) -> None:
    """An entity's events are applied from the re-keyed topic only: in one order, however often read again."""
    parsed = event(kind, **fields)
    key = routing_key(parsed)
    assert must_be_rekeyed(parsed, partition_of(key, PARTITIONS), key, PARTITIONS)
