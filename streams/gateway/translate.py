"""Records to Kafka messages: mapped, checked as the worker checks them, keyed by their routing key. Pure.

Every record ends as events to produce, a dead letter (reason, detail and the record's
raw JSON) or skipped on purpose (the mapping's ``skip_when``): nothing is dropped
without being counted. A record with any problem produces nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from schemas.events import routing_key
from streams.core.validation import Rejection
from streams.gateway.mapping import PayloadMapper, TopicKind
from streams.gateway.payloads import SourceRecord
from streams.worker.acceptance import Acceptance


@dataclass(frozen=True)
class OutgoingEvent:
    topic: TopicKind
    type: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    detail: str
    raw: bytes


@dataclass
class Translation:
    events: list[OutgoingEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0


def translate(mapper: PayloadMapper, records: Sequence[SourceRecord], checks: Acceptance, now: float) -> Translation:
    """What the records of one request become, each event checked as the worker will check it."""
    result = Translation()
    for record in records:
        if record.cells is None:
            result.dead_letters.append(DeadLetter("unreadable", record.problem or "", record.raw))
            continue
        mapped = mapper.map(record.cells)
        if mapped.skipped:
            result.skipped += 1
            continue
        if mapped.problem is not None:
            result.dead_letters.append(DeadLetter("unmappable", mapped.problem, record.raw))
            continue
        outgoing: list[OutgoingEvent] = []
        for event in mapped.events:
            value = orjson.dumps(event)
            checked = checks.check(value, now)
            if isinstance(checked, Rejection):
                detail = f"{event.get('type')} {event.get('event_id')}: {checked.detail}"
                result.dead_letters.append(DeadLetter(checked.reason, detail, record.raw))
                break
            outgoing.append(OutgoingEvent(mapper.mapping.topic, checked.type, routing_key(checked).encode(), value))
        else:
            result.events += outgoing
    return result
