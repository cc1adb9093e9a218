"""A request body as the records a source sent in it, each flattened to cells for the mapping. Pure.

- HubSpot: a JSON array of events (up to 100 a request); each event's ``subscriptionType``
  (``deal.propertyChange``) is also split into ``objectType`` and ``change``, and its
  ``occurredAt`` (epoch milliseconds) given as RFC 3339.
- Segment: one call (``/v1/track``, ``/v1/page``, ``/v1/identify``: its ``type`` from the path
  when absent) or ``{"batch": [calls]}``.
- A Salesforce relay: a JSON array of ``{event, recordId, record}`` (docs/connectors.md); a change
  event's ``ChangeEventHeader.commitTimestamp`` (epoch milliseconds) given as RFC 3339.
- Pipedrive (webhooks v2): one object ``{meta, data, previous}``; ``meta.timestamp`` given as
  RFC 3339 when sent in epoch seconds.

A body that is not what the source sends is one unreadable record (its whole body dead-lettered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.cells import rfc3339
from streams.gateway.mapping import Cells, Fetch, flatten

MAX_RECORDS = 1000  # HubSpot sends up to 100 a request, Segment's batches are limited to 500 KB
EARLIEST_MS, LATEST_MS = 0, 32_503_680_000_000  # epoch milliseconds up to the year 3000


@dataclass(frozen=True)
class SourceRecord:
    """One record of a request: its cells, or why it cannot be read; ``raw`` is what a dead letter keeps."""

    raw: bytes
    cells: Cells | None = None
    problem: str | None = None


def _unreadable(body: bytes, problem: str) -> list[SourceRecord]:
    return [SourceRecord(body, problem=problem)]


def _loads(body: bytes) -> tuple[Any, str | None]:
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        return None, f"the body is not JSON: {exc}"


def _records(items: list[Any], body: bytes, kind: str, cells_of: Any) -> list[SourceRecord]:
    if len(items) > MAX_RECORDS:
        return _unreadable(body, f"{len(items)} {kind} in one request, over the limit of {MAX_RECORDS}")
    records = []
    for item in items:
        raw = orjson.dumps(item)
        if isinstance(item, dict):
            records.append(SourceRecord(raw, cells=cells_of(item)))
        else:
            records.append(SourceRecord(raw, problem=f"not a JSON object (one of the request's {kind})"))
    return records


def _epoch_text(value: Any, per_second: int) -> str:
    """RFC 3339 of an epoch time in 1/``per_second`` seconds; empty when it is not one (or out of bounds)."""
    if isinstance(value, int) and not isinstance(value, bool) and EARLIEST_MS <= value * 1000 // per_second < LATEST_MS:
        return rfc3339(datetime.fromtimestamp(value / per_second, UTC))
    return ""


def _hubspot_cells(event: dict[str, Any]) -> Cells:
    cells = flatten(event)
    object_type, _, change = str(event.get("subscriptionType", "")).partition(".")
    cells["objectType"], cells["change"] = object_type, change
    cells["occurredAt"] = _epoch_text(event.get("occurredAt"), 1000)
    return cells


def hubspot_records(body: bytes) -> list[SourceRecord]:
    payload, problem = _loads(body)
    if problem is not None:
        return _unreadable(body, problem)
    items = payload if isinstance(payload, list) else [payload]
    return _records(items, body, "events", _hubspot_cells)


def _relay_cells(item: dict[str, Any]) -> Cells:
    cells = flatten(item)
    header = item.get("event", {}).get("ChangeEventHeader") if isinstance(item.get("event"), dict) else None
    if isinstance(header, dict):
        cells["event.ChangeEventHeader.commitTimestamp"] = _epoch_text(header.get("commitTimestamp"), 1000)
    return cells


def salesforce_relay_records(body: bytes) -> list[SourceRecord]:
    """A relay's JSON array of Salesforce change or platform events, one item per record (docs/connectors.md)."""
    payload, problem = _loads(body)
    if problem is not None:
        return _unreadable(body, problem)
    if not isinstance(payload, list):
        return _unreadable(body, "a relay request is a JSON array of items {event, recordId, record}")
    return _records(payload, body, "items", _relay_cells)


def segment_records(body: bytes, call_type: str) -> list[SourceRecord]:
    """The calls of a Segment request to ``/v1/<call_type>`` (``batch``: the calls under ``batch``)."""
    payload, problem = _loads(body)
    if problem is not None:
        return _unreadable(body, problem)
    if not isinstance(payload, dict):
        return _unreadable(body, "the body is not a JSON object")
    if call_type != "batch":
        return _records([{"type": call_type, **payload}], body, "calls", flatten)
    batch = payload.get("batch")
    if not isinstance(batch, list):
        return _unreadable(body, "a batch request needs a list under 'batch'")
    return _records(batch, body, "calls", flatten)


def pipedrive_records(body: bytes) -> list[SourceRecord]:
    payload, problem = _loads(body)
    if problem is not None:
        return _unreadable(body, problem)
    if not isinstance(payload, dict) or not isinstance(payload.get("meta"), dict):
        return _unreadable(body, "a Pipedrive webhook v2 is a JSON object with 'meta' (and 'data', 'previous')")
    cells = flatten(payload)
    if isinstance(payload["meta"].get("timestamp"), int):  # epoch seconds in some deliveries, RFC 3339 in others
        cells["meta.timestamp"] = _epoch_text(payload["meta"]["timestamp"], 1)
    return [SourceRecord(body, cells=cells)]


ObjectKey = tuple[str, str]  # (HubSpot object type, object id)


def wanted_objects(records: Sequence[SourceRecord], fetches: Mapping[str, Fetch]) -> dict[ObjectKey, Fetch]:
    """The HubSpot objects the records name whose type the mapping fetches, each once."""
    wanted: dict[ObjectKey, Fetch] = {}
    for record in records:
        if record.cells is not None and record.cells.get("objectType") in fetches:
            object_type, object_id = record.cells["objectType"], record.cells.get("objectId", "")
            if object_id.isdigit():
                wanted[object_type, object_id] = fetches[object_type]
    return wanted


def with_objects(
    records: Sequence[SourceRecord], fetches: Mapping[str, Fetch], objects: Mapping[ObjectKey, dict[str, Any] | None]
) -> list[SourceRecord]:
    """The records, those of a fetched type with their object's cells under ``object``.

    A record whose object was not found (deleted since, or not a valid id) is unreadable: dead-lettered.
    """
    enriched = []
    for record in records:
        if record.cells is None or record.cells.get("objectType") not in fetches:
            enriched.append(record)
            continue
        key = (record.cells["objectType"], record.cells.get("objectId", ""))
        found = objects.get(key)
        if found is None:
            enriched.append(SourceRecord(record.raw, problem=f"HubSpot has no {key[0]} {key[1]!r} (deleted since?)"))
        else:
            enriched.append(replace(record, cells=flatten(found, "object", dict(record.cells))))
    return enriched
