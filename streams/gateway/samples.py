"""Recorded webhook requests checked against a mapping (``kpimon gateway check``). Pure but for reading files.

A sample is a JSON file::

    {"description": "a deal moved to closedwon",
     "path": "/webhooks/hubspot",                 # where the source posts it
     "body": [ ... ],                             # the body as the source sends it (a string: sent as it is)
     "crm_objects": {"deal/1234": {...}},         # HubSpot: what its CRM API answers for the objects of `fetch`
     "expect": [ {contract event}, ... ],         # optional: the events it must become, in order
     "expect_dead_letters": ["unmappable"]}       # optional: the reasons of the records dead-lettered
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.gateway.bodies import read_records
from streams.gateway.mapping import PayloadMapper
from streams.gateway.payloads import ObjectKey, wanted_objects, with_objects
from streams.gateway.translate import Translation, translate
from streams.worker.acceptance import Acceptance


class SampleError(ValueError):
    """A sample file that cannot be read."""


@dataclass(frozen=True)
class Sample:
    name: str
    path: str
    body: bytes
    objects: dict[ObjectKey, dict[str, Any]]
    expect: list[dict[str, Any]] | None = None
    expect_dead_letters: list[str] | None = None


def load_sample(file: Path) -> Sample:
    try:
        data = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SampleError(f"{file}: cannot read the sample: {exc}") from exc
    if not isinstance(data, dict) or "body" not in data or not isinstance(data.get("path"), str):
        raise SampleError(f"{file}: a sample is a JSON object with 'path' and 'body'")
    body = data["body"]
    objects: dict[ObjectKey, dict[str, Any]] = {}
    for name, answer in data.get("crm_objects", {}).items():
        object_type, _, object_id = name.partition("/")
        objects[object_type, object_id] = answer
    return Sample(
        name=file.name,
        path=data["path"],
        body=body.encode() if isinstance(body, str) else orjson.dumps(body),
        objects=objects,
        expect=data.get("expect"),
        expect_dead_letters=data.get("expect_dead_letters"),
    )


def sample_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.json`` files of the folder ``path`` in name order."""
    if path.is_dir():
        return sorted(path.glob("*.json"))
    if path.is_file():
        return [path]
    raise SampleError(f"{path}: no such file or folder")


@dataclass
class SampleOutcome:
    sample: Sample
    translation: Translation
    problems: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(event.value) for event in self.translation.events]


def map_sample(mapper: PayloadMapper, sample: Sample, checks: Acceptance, now: float) -> SampleOutcome:
    """What the gateway makes of ``sample`` (the CRM objects from the sample), and how that differs from its expect."""
    mapping = mapper.mapping
    records = read_records(mapping.format, sample.path, sample.body)
    if mapping.fetch:
        wanted = wanted_objects(records, mapping.fetch)
        records = with_objects(records, mapping.fetch, {key: sample.objects.get(key) for key in wanted})
    outcome = SampleOutcome(sample, translate(mapper, records, checks, now))
    if sample.expect is not None and outcome.events != sample.expect:
        outcome.problems.append(
            f"events differ from expect:\n  got:      {orjson.dumps(outcome.events).decode()}\n"
            f"  expected: {orjson.dumps(sample.expect).decode()}"
        )
    reasons = [letter.reason for letter in outcome.translation.dead_letters]
    if sample.expect_dead_letters is not None and reasons != sample.expect_dead_letters:
        outcome.problems.append(f"dead letters {reasons} differ from expect_dead_letters {sample.expect_dead_letters}")
    elif sample.expect_dead_letters is None and reasons:
        details = "; ".join(f"{letter.reason}: {letter.detail}" for letter in outcome.translation.dead_letters)
        outcome.problems.append(f"dead-lettered: {details}")
    return outcome
