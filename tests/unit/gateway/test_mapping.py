"""Gateway mappings: the shipped samples map to their expected events; records split, flattened and bounded."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from schemas.yaml_source import ConfigFileError
from streams.gateway.mapping import MAX_CELLS, GatewayMapping, PayloadMapper, flatten, load_gateway_mapping
from streams.gateway.payloads import MAX_RECORDS, hubspot_records, pipedrive_records, segment_records
from streams.gateway.samples import load_sample, map_sample, sample_files
from streams.gateway.translate import translate
from streams.tools.cli import main
from streams.worker.acceptance import Acceptance

REPO = Path(__file__).resolve().parents[3]
MAPPINGS = REPO / "deploy" / "gateway" / "mappings"
SAMPLES = REPO / "deploy" / "gateway" / "samples"
SOURCES = sorted(path.stem for path in MAPPINGS.glob("*.yaml"))


@pytest.mark.parametrize("source", SOURCES)
def test_every_sample_maps_to_its_expected_events(source: str) -> None:
    mapper = PayloadMapper(load_gateway_mapping(MAPPINGS / f"{source}.yaml"))
    files = sample_files(SAMPLES / source)
    assert files, f"no samples for {source}"
    for file in files:
        outcome = map_sample(mapper, load_sample(file), Acceptance(known_currencies=None), time.time())
        assert outcome.problems == [], file.name
        assert load_sample(file).expect is not None, f"{file.name} has no expect"


def test_check_command_reports_each_sample(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["gateway", "check", str(MAPPINGS / "hubspot.yaml"), str(SAMPLES / "hubspot"), "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "deal-won.json: ok: 1 event (deal.won 1), 1 ignored, 0 dead letters" in out
    assert "unmappable.json: ok: 0 events, 0 ignored, 2 dead letters (unmappable 1, missing_field 1)" in out


def test_check_command_fails_on_a_sample_that_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = orjson.loads((SAMPLES / "hubspot" / "contact-created.json").read_bytes())
    sample["expect"][0]["lead_id"] = "another"
    (tmp_path / "changed.json").write_bytes(orjson.dumps(sample))
    code = main(["gateway", "check", str(MAPPINGS / "hubspot.yaml"), str(tmp_path / "changed.json")])
    assert code == 1
    assert "events differ from expect" in capsys.readouterr().out


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path


def test_mapping_problems_name_their_lines(tmp_path: Path) -> None:
    text = """\
source: pipedrive
format: pipedrive
fetch: {deal: {properties: [amount]}}
events:
  - type: lead.created
    event_id: "pd-{meta.id}"
    occurred_at: "{meta.timestamp}"
    fields: {lead_id: "{data.id}", stage: mql}
"""
    with pytest.raises(ConfigFileError) as error:
        load_gateway_mapping(_mapping(tmp_path, text))
    problems = "\n".join(error.value.problems)
    assert "mapping.yaml:8:" in problems and "lead.created has no field 'stage'" in problems
    assert "mapping.yaml:3:" in problems and "only a hubspot mapping may have it" in problems


def _mapper(**lookups: object) -> PayloadMapper:
    return PayloadMapper(
        GatewayMapping.model_validate(
            {
                "source": "pipedrive",
                "format": "pipedrive",
                "lookups": {"owners": {"column": "data.owner_id", "rows": {"5": {"rep_id": "emea-anna"}}}},
                "ignore": [[{"column": "meta.entity", "equals": "person"}], {"column": "owners.rep_id", "equals": "x"}],
                "events": [
                    {
                        "type": "call.logged",
                        "when": {"column": "meta.entity", "equals": "activity"},
                        "event_id": "pd-{meta.id}",
                        "occurred_at": "{meta.timestamp}",
                        "fields": {
                            "rep_id": "{owners.rep_id}",
                            "duration_seconds": "{seconds}",
                            "outcome": "connected",
                        },
                    }
                ],
                "seconds_from_milliseconds": {"seconds": "data.duration_ms"},
                **lookups,
            }
        )
    )


def _body(**data: object) -> bytes:
    meta = {"entity": "activity", "id": "m-1", "timestamp": "2026-11-30T10:00:00.000Z", "action": "create"}
    return orjson.dumps({"meta": {**meta, **data.pop("meta", {})}, "data": data})  # type: ignore[dict-item]


def test_lookups_ignore_and_derived_seconds() -> None:
    mapper = _mapper()
    checks = Acceptance(known_currencies=None)
    result = translate(mapper, pipedrive_records(_body(owner_id=5, duration_ms=90500)), checks, time.time())
    assert [orjson.loads(event.value) for event in result.events] == [
        {
            "type": "call.logged",
            "source": "pipedrive",
            "event_id": "pd-m-1",
            "occurred_at": "2026-11-30T10:00:00Z",
            "rep_id": "emea-anna",
            "duration_seconds": 90.5,
            "outcome": "connected",
        }
    ]
    assert result.events[0].key == b"pd-m-1"
    ignored = translate(mapper, pipedrive_records(_body(meta={"entity": "person"})), checks, time.time())
    assert (ignored.skipped, ignored.events, ignored.dead_letters) == (1, [], [])
    unknown_owner = translate(mapper, pipedrive_records(_body(owner_id=6, duration_ms=1)), checks, time.time())
    assert [letter.reason for letter in unknown_owner.dead_letters] == ["unmappable"]
    assert "owner_id '6' is not in lookups.owners" in unknown_owner.dead_letters[0].detail
    nothing = translate(mapper, pipedrive_records(_body(meta={"entity": "deal"})), checks, time.time())
    assert nothing.dead_letters[0].detail.endswith("and no ignore item matches")
    bad_number = translate(mapper, pipedrive_records(_body(owner_id=5, duration_ms="soon")), checks, time.time())
    assert [letter.reason for letter in bad_number.dead_letters] == ["missing_field"]


def test_unreadable_bodies_are_one_dead_letter_with_the_whole_body() -> None:
    for records in (hubspot_records(b"{not json"), segment_records(b"[1]", "track"), pipedrive_records(b"{}")):
        assert len(records) == 1 and records[0].cells is None and records[0].problem
    too_many = orjson.dumps([{"eventId": number} for number in range(MAX_RECORDS + 1)])
    assert hubspot_records(too_many)[0].problem == f"{MAX_RECORDS + 1} events in one request, over the limit of 1000"
    mixed = hubspot_records(b'[{"eventId": 1, "occurredAt": 1796000000000, "subscriptionType": "deal.creation"}, 7]')
    assert mixed[0].cells is not None and mixed[0].cells["occurredAt"] == "2026-11-30T00:53:20Z"
    assert (mixed[0].cells["objectType"], mixed[0].cells["change"]) == ("deal", "creation")
    assert mixed[1].raw == b"7" and mixed[1].problem == "not a JSON object (one of the request's events)"


def test_segment_calls_take_their_type_from_the_path_or_the_batch() -> None:
    single = segment_records(b'{"event": "Signed Up", "messageId": "a"}', "track")
    assert single[0].cells == {"type": "track", "event": "Signed Up", "messageId": "a"}
    batch = segment_records(b'{"batch": [{"type": "page", "messageId": "b"}, {"type": "identify"}]}', "batch")
    assert [record.cells["type"] for record in batch if record.cells] == ["page", "identify"]


def test_flatten_is_bounded() -> None:
    assert flatten({"a": {"b": [1, {"c": None}], "d": True}}) == {"a.b.0": "1", "a.b.1.c": "", "a.d": "true"}
    deep: object = "bottom"
    for _ in range(20):
        deep = {"x": deep}
    assert flatten(deep) == {}
    assert len(flatten({str(number): number for number in range(MAX_CELLS + 50)})) == MAX_CELLS
    assert len(flatten({"long": "x" * 50_000})["long"]) == 10_000
