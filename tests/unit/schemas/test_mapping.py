"""schemas: mapping files (validated with file:line:col), templates, conditions, joins, dates and time zones.

Reading the CSV files (the columns checked against their headers, the joined files) is tested in tests/unit/tools.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schemas.cells import json_number, parse_timestamp, rfc3339
from schemas.mapping import CsvMapping, load_mapping
from schemas.row_mapping import JoinTable, RowMapping, map_row
from schemas.templates import Placeholder, parse_template
from schemas.yaml_source import ConfigFileError
from tests.unit.schemas.mapping_examples import DEAL_WON, DEALS_MAPPING

REPO_ROOT = Path(__file__).resolve().parents[3]
SHIPPED_MAPPINGS = sorted((REPO_ROOT / "deploy" / "mappings").glob("*.yaml"))

HEAD = "source: test-crm\ndate_formats: ['%Y-%m-%d']\n"
WON_ONLY = "events:\n" + DEAL_WON
REPS = JoinTable("reps.csv", ("rep", "office"), {"ann": {"rep": "ann", "office": "East"}})


def write(tmp_path: Path, text: str, name: str = "mapping.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    """Why a mapping file holding ``text`` is refused, each problem without the file's name."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        load_mapping(path)
    return [problem.removeprefix(f"{path}:") for problem in info.value.problems]


@pytest.fixture
def sales(tmp_path: Path) -> CsvMapping:
    return load_mapping(write(tmp_path, DEALS_MAPPING))


def row(**cells: str) -> dict[str, str]:
    base = {"id": "d1", "rep": "ann", "stage": "Won", "opened": "3/1/2024", "closed": "2024-03-10 16:30"}
    base.update({"value": "1200", "channel": "", "account": "Acme", "reason": ""})
    return base | cells


def mapped(mapping: CsvMapping, **cells: str) -> RowMapping:
    return map_row(mapping, row(**cells), {"reps": REPS})


# -- loading -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED_MAPPINGS, ids=lambda path: path.name)
def test_shipped_mappings_load(path: Path) -> None:
    assert load_mapping(path).events


def test_at_least_the_two_public_data_sets_have_a_mapping() -> None:
    names = {path.name for path in SHIPPED_MAPPINGS}
    assert {"crm-sales-opportunities.yaml", "olist-marketing-funnel.yaml"} <= names


def test_a_valid_file_loads(sales: CsvMapping) -> None:
    assert sales.source == "test-crm"
    assert [spec.type for spec in sales.events] == ["opportunity.created", "deal.won", "deal.lost"]
    assert sales.csv.delimiter == "," and sales.csv.encoding == "utf-8-sig"
    assert sales.join["reps"].lookup_column == "rep"
    assert sales.skip_when[0].equals == "Prospecting"
    assert sales.events[1].fields["team"].has_default  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            HEAD + WON_ONLY.replace("deal.won", "deal.wonn"),
            "4:11: events.0.type: unknown event type 'deal.wonn' (known: call.logged, email.sent,",
        ),
        (HEAD + WON_ONLY.replace("      currency: USD\n", ""), "9:7: events.0.fields: deal.won needs currency"),
        (
            HEAD + WON_ONLY + "      amout: 5\n",
            "12:14: events.0.fields.amout: deal.won has no field 'amout' (its fields: team, rep_id, deal_id,",
        ),
        (
            HEAD + WON_ONLY + "      source: other\n",
            "12:15: events.0.fields.source: set source on the event itself, not under fields",
        ),
        (
            HEAD + WON_ONLY.replace('"{id}"', '"{id"'),
            "9:16: events.0.fields.deal_id: unmatched '{' in '{id' (write {{ for a literal brace)",
        ),
        (HEAD + WON_ONLY.replace('"crm-{id}-won"', '"won"'), "6:15: events.0.event_id: event_id needs a {column}"),
        (
            HEAD + WON_ONLY.replace("equals: Won}", "equals: Won, not_empty: true}"),
            "5:11: events.0.when.0: give exactly one of equals, one_of, not_empty (got equals, not_empty)",
        ),
        (
            HEAD + WON_ONLY.replace("currency: USD", "currency: [USD]"),
            "11:17: events.0.fields.currency: a field value is a template string, a number, true/false or {column:",
        ),
        (
            HEAD + WON_ONLY.replace("{column: value,", "{colum: value,"),
            "10:15: events.0.fields.amount.column-value.colum: Extra inputs are not permitted",
        ),
        (
            "source: s\ndate_formats: ['%Y-%m-%d', 'yyyy']\n" + WON_ONLY,
            "2:28: date_formats.1: 'yyyy' has no % directive (e.g. %Y-%m-%d)",
        ),
        ("source: s\ndate_formats: ['%Q']\n" + WON_ONLY, "2:16: date_formats.0: '%Q' is not a usable strptime format"),
        (HEAD + "timezone: Mars/Olympus\n" + WON_ONLY, "3:11: timezone: unknown time zone 'Mars/Olympus'"),
        (HEAD + "csv: {encoding: klingon}\n" + WON_ONLY, "3:17: csv.encoding: unknown encoding 'klingon'"),
        (HEAD + "csv: {delimiter: ';;'}\n" + WON_ONLY, "3:18: csv.delimiter: String should have at most 1 character"),
        ("source: 'bad|label'\ndate_formats: ['%Y']\n" + WON_ONLY, "1:9: source: String should match pattern"),
        (HEAD + "events: []\n", "3:9: events: List should have at least 1 item after validation, not 0"),
        (HEAD + WON_ONLY + "    colour: blue\n", "12:13: events.0.colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_mapping_reported_with_line_and_column(tmp_path: Path, text: str, problem: str) -> None:
    problems = problems_of(tmp_path, text)
    assert any(line.startswith(problem) for line in problems), problems
    assert len(problems) == (2 if "colum:" in text else 1), problems  # a misspelt key is also a missing one


def test_two_events_with_the_same_id_template_are_refused(tmp_path: Path) -> None:
    text = HEAD + WON_ONLY + DEAL_WON
    assert problems_of(tmp_path, text) == [
        "14:15: events.1.event_id: same event_id template as events.0: ids would collide"
    ]


# -- templates -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "parts"),
    [
        ("USD", ("USD",)),
        ("{id}", (Placeholder("id"),)),
        ("crm-{id}-won", ("crm-", Placeholder("id"), "-won")),
        ("{a}{teams.office}", (Placeholder("a"), Placeholder("teams.office"))),
        ("{{literal}} {x}", ("{literal} ", Placeholder("x"))),
        ("{close value}", (Placeholder("close value"),)),
        ("", ()),
    ],
)
def test_parse_template(template: str, parts: tuple[object, ...]) -> None:
    assert parse_template(template) == parts


@pytest.mark.parametrize("template", ["{id", "id}", "{}", "{ }", "a{b{c}}"])
def test_malformed_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match=r"unmatched|empty placeholder"):
        parse_template(template)


# -- rows ----------------------------------------------------------------------------------------------------------


def test_one_row_emits_several_events_each_under_its_condition(sales: CsvMapping) -> None:
    result = mapped(sales)
    assert not result.problems and not result.skipped
    created, won = (event.event for event in result.events)
    assert created == {
        "type": "opportunity.created",
        "source": "test-crm",
        "event_id": "crm-d1-created",
        "occurred_at": "2024-03-01T05:00:00Z",  # midnight in New York
        "deal_id": "d1",
        "rep_id": "ann",
        "team": "East",
        "amount": 1200,
        "currency": "USD",
        "attributes": {"account": "Acme"},  # channel is empty: left out
    }
    assert won["occurred_at"] == "2024-03-10T20:30:00Z"  # 16:30 EDT
    assert won["opened_at"] == "2024-03-01T05:00:00Z"
    assert won["event_id"] == "crm-d1-won" and won["amount"] == 1200


@pytest.mark.parametrize(
    ("stage", "types"),
    [
        ("Open", ["opportunity.created"]),
        ("Won", ["opportunity.created", "deal.won"]),
        ("Lost", ["opportunity.created", "deal.lost"]),
    ],
)
def test_conditions_choose_the_events(sales: CsvMapping, stage: str, types: list[str]) -> None:
    assert [event.type for event in mapped(sales, stage=stage, reason="price").events] == types


def test_skip_when_skips_the_row(sales: CsvMapping) -> None:
    assert mapped(sales, stage="Prospecting") == RowMapping(skipped=True)


def test_a_row_no_condition_holds_for_is_a_problem_not_a_silent_skip(sales: CsvMapping) -> None:
    result = mapped(sales, stage="Closed Won")
    assert result.events == []
    assert result.problems == [
        "no event's condition holds (stage in ('Open', 'Won', 'Lost'); stage == 'Won'; stage == 'Lost') "
        "and skip_when does not match"
    ]


def test_not_empty_condition(tmp_path: Path) -> None:
    text = HEAD + WON_ONLY.replace("{column: stage, equals: Won}", "{column: closed, not_empty: true}")
    mapping = load_mapping(write(tmp_path, text))
    assert [event.type for event in map_row(mapping, {"id": "1", "closed": "2024-01-02", "value": "5"}).events] == [
        "deal.won"
    ]
    assert map_row(mapping, {"id": "1", "closed": " ", "value": "5"}).problems[0].startswith("no event's condition")


def test_an_empty_cell_leaves_the_field_out_or_takes_the_default(sales: CsvMapping) -> None:
    result = mapped(sales, value="")
    assert result.problems == []  # the contract decides later (streams.tools.replay) whether the field may be missing
    created, won = result.events
    assert "amount" not in created.event and created.empty["amount"] == "value"
    assert won.event["amount"] == 0  # the default "0", converted like a cell


def test_a_join_miss_is_a_problem_unless_the_value_has_a_default(sales: CsvMapping) -> None:
    result = mapped(sales, rep="zed")
    assert result.events == []
    assert result.problems == ["reps.office: rep 'zed' is not in reps.csv (for opportunity.created team)"]
    alone = mapped(sales, rep="zed", stage="Lost", reason="price")
    assert alone.problems == ["reps.office: rep 'zed' is not in reps.csv (for opportunity.created team)"]


def test_an_empty_join_key_reads_joined_columns_as_empty(sales: CsvMapping) -> None:
    created, won = mapped(sales, rep="").events
    assert "team" not in created.event and "team" not in won.event


def test_join_aliases_and_optional_joins(tmp_path: Path) -> None:
    text = (
        HEAD
        + "join:\n  products: {file: products.csv, key: name, column: product, aliases: {GTXPro: GTX Pro}, "
        + "optional: true}\n"
        + WON_ONLY.replace("    when: {column: stage, equals: Won}\n", "").replace(
            '{column: value, default: "0"}', '{column: products.price, default: "1"}'
        )
    )
    mapping = load_mapping(write(tmp_path, text))
    prices = {name: {"name": name, "price": price} for name, price in (("GTX Pro", "4821"), ("MG Special", "55"))}
    tables = {"products": JoinTable("products.csv", ("name", "price"), prices)}

    def amount(product: str) -> object:
        (event,) = map_row(mapping, {"id": "1", "product": product, "closed": "2024-01-02"}, tables).events
        return event.event["amount"]

    assert amount("GTXPro") == 4821  # the alias
    assert amount("MG Special") == 55
    assert amount("Unknown") == 1  # optional join: the default


def test_cells_are_stripped(sales: CsvMapping) -> None:
    created, _ = mapped(sales, id="  d1 ", stage=" Won ").events
    assert created.event["deal_id"] == "d1"


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        (
            {"closed": "13/45/2024"},
            "closed: '13/45/2024' matches none of the date formats (%m/%d/%Y, %Y-%m-%d %H:%M) "
            "(for deal.won occurred_at)",
        ),
        (
            {"opened": "2024-31-12"},
            "opened: '2024-31-12' matches none of the date formats (%m/%d/%Y, %Y-%m-%d %H:%M) "
            "(for opportunity.created occurred_at, deal.won opened_at)",
        ),
        ({"value": "1,200"}, "value: '1,200' is not a number (for opportunity.created amount, deal.won amount)"),
        ({"value": "NaN"}, "value: 'NaN' is not a finite number (for opportunity.created amount, deal.won amount)"),
    ],
)
def test_cells_that_cannot_become_their_fields_type(sales: CsvMapping, cells: dict[str, str], problem: str) -> None:
    result = mapped(sales, **cells)
    assert result.events == []
    assert result.problems == [problem]


def test_constants_keep_their_type(tmp_path: Path) -> None:
    text = (
        HEAD
        + "events:\n  - type: web.session\n    event_id: 'w-{id}'\n    occurred_at: '{at}'\n"
        + "    fields: {visitor_id: '{id}', pageviews: '{views}', duration_seconds: 12.5}\n"
    )
    mapping = load_mapping(write(tmp_path, text))
    (event,) = map_row(mapping, {"id": "v1", "at": "2024-01-02", "views": "3"}).events
    assert event.event["pageviews"] == 3 and event.event["duration_seconds"] == 12.5
    assert map_row(mapping, {"id": "v1", "at": "2024-01-02", "views": "2.5"}).problems == [
        "views: '2.5' is not a whole number (for web.session pageviews)"
    ]


# -- dates, time zones, numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("3/1/2017", "UTC", "2017-03-01T00:00:00Z"),
        ("3/1/2017", "America/Sao_Paulo", "2017-03-01T03:00:00Z"),
        ("1/12/2018", "America/Sao_Paulo", "2018-01-12T02:00:00Z"),  # Brazilian summer time, -02:00
        ("26-02-2018 19:58", "America/Sao_Paulo", "2018-02-26T22:58:00Z"),
        # midnight that does not exist in Sao Paulo (clocks jumped from 00:00 to 01:00): the offset before the change
        ("10/15/2017", "America/Sao_Paulo", "2017-10-15T03:00:00Z"),
        ("2024-03-10 16:30", "America/New_York", "2024-03-10T20:30:00Z"),
        ("2024-07-01 09:15:30+0200", "America/New_York", "2024-07-01T07:15:30Z"),  # an explicit offset wins
        ("2024-07-01 09:15:30Z", "Europe/Berlin", "2024-07-01T09:15:30Z"),
    ],
)
def test_parse_timestamp_in_the_mappings_time_zone(text: str, zone: str, expected: str) -> None:
    formats = ["%m/%d/%Y", "%d-%m-%Y %H:%M", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M"]
    moment = parse_timestamp(text, formats, ZoneInfo(zone))
    assert moment is not None and rfc3339(moment) == expected


def test_the_first_matching_format_wins() -> None:
    day_first = parse_timestamp("02/03/2024", ["%d/%m/%Y", "%m/%d/%Y"], ZoneInfo("UTC"))
    assert day_first == datetime(2024, 3, 2, tzinfo=ZoneInfo("UTC"))
    assert parse_timestamp("2024/03/02", ["%d/%m/%Y", "%m/%d/%Y"], ZoneInfo("UTC")) is None


def test_rfc3339_keeps_microseconds_only_when_there_are_some() -> None:
    assert rfc3339(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    assert rfc3339(datetime(2024, 1, 2, 3, 4, 5, 120, tzinfo=UTC)) == "2024-01-02T03:04:05.000120Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1054", 1054), ("1054.50", 1054.5), ("0.1", 0.1), ("-0", 0), ("1e3", 1000), ("0.12345678901234567891", None)],
)
def test_json_number_is_exact(text: str, expected: object) -> None:
    value = json_number(Decimal(text))
    assert value == (expected if expected is not None else "0.12345678901234567891")
    assert Decimal(str(value)) == Decimal(text)
