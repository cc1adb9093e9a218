"""streams.tools.replay, replay_source and csv_source: CSV (with a mapping) and JSONL files to events; bad rows by line;
the mapping's columns checked against the CSV files; event-time order; producing keyed by routing key.

The public data sets are read from ``../shared/datasets/`` (next to the repository); their tests are
skipped when the folder is missing.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.config import KpimonConfig
from schemas.mapping import CsvFormat, CsvMapping
from schemas.yaml_source import ConfigFileError
from streams.tools import replay
from streams.tools.csv_source import CsvSourceError, load_join_table, load_mapping_for, read_header
from streams.tools.replay import ReplaySummary, progress_line, run_replay
from streams.tools.replay_source import (
    BadRow,
    ReplayInputError,
    ReplayPlan,
    RowEvent,
    SkippedRow,
    jsonl_to_events,
    plan_replay,
    rows_to_events,
)
from streams.worker.acceptance import Acceptance
from streams.worker.settings import Settings
from tests.unit.schemas.mapping_examples import DEALS_HEADER, DEALS_MAPPING, REPS_CSV

REPO_ROOT = Path(__file__).resolve().parents[3]
DATASETS = REPO_ROOT.parent / "shared" / "datasets"
MAPPINGS = REPO_ROOT / "deploy" / "mappings"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")

DEALS = f"""\
{DEALS_HEADER}
d1,ann,Won,3/1/2024,3/20/2024,100,,Acme,ok
d2,bob,Open,3/5/2024,,50,,Acme,"a note on
two lines"
d3,ann,Prospecting,,,,,,skipped on purpose

d4,ann,Won,3/2/2024,13/45/2024,10,,Acme,bad close date
d5,zed,Open,3/3/2024,,5,,Acme,unknown rep
d6,ann,Won,3/4/2024,3/9/2024,-5,,Acme,negative amount
d7,ann,Open,,,5,,Acme,no open date
d1,bob,Open,3/6/2024,,1,,Acme,the id of line 2 again
d8,ann,Closed,3/1/2024,,1,,Acme,a stage the mapping does not know
d9,ann,Open,3/1/2024,,1
d10,ann,Lost,2/28/2024,3/1/2024,7,,Acme,price
"""
EXPECTED_BAD_ROWS = [
    BadRow(
        7,
        "closed: '13/45/2024' matches none of the date formats (%m/%d/%Y, %Y-%m-%d %H:%M) (for deal.won occurred_at)",
    ),
    BadRow(8, "reps.office: rep 'zed' is not in reps.csv (for opportunity.created team)"),
    BadRow(
        9,
        "value: Input should be greater than or equal to 0, got -5 (for opportunity.created amount); "
        "value: Input should be greater than or equal to 0, got -5 (for deal.won amount)",
    ),
    BadRow(10, "opened: empty, but opportunity.created needs occurred_at"),
    BadRow(11, "event_id 'crm-d1-created' repeats the one of line 2"),
    BadRow(
        12,
        "no event's condition holds (stage in ('Open', 'Won', 'Lost'); stage == 'Won'; stage == 'Lost') "
        "and skip_when does not match",
    ),
    BadRow(13, "6 values, but the header has 9 columns"),
]

CONFIG = KpimonConfig(currency_rates={"EUR": Decimal("1.1"), "BRL": Decimal("0.2")})  # rates to USD
SMALL = Acceptance(max_event_bytes=1000, known_currencies=CONFIG.known_currencies())


def event_line(**fields: Any) -> str:
    base = {"event_id": "e1", "occurred_at": "2024-03-02T09:00:00Z", "source": "crm", "type": "lead.created"}
    return orjson.dumps(base | {"lead_id": "l1"} | fields).decode()


@pytest.fixture
def deals(tmp_path: Path) -> tuple[CsvMapping, Path]:
    (tmp_path / "reps.csv").write_text(REPS_CSV, encoding="utf-8")
    data = tmp_path / "deals.csv"
    data.write_text(DEALS, encoding="utf-8")
    mapping = tmp_path / "deals.yaml"
    mapping.write_text(DEALS_MAPPING, encoding="utf-8")
    return load_mapping_for(mapping, data), data


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    lines = [
        "\ufeff" + event_line(),
        "",
        "not json",
        event_line(type="deal.closed"),
        event_line(lead_id="l9"),  # e1 again
        event_line(event_id="e2", occurred_at="2024-03-01T09:00:00+01:00"),
        event_line(event_id="e3", occurred_at="2999-01-01T00:00:00Z"),
        event_line(event_id="e4", attributes={"blob": "x" * 2000}),
        event_line(event_id="e5", type="spend.recorded", channel="social", amount=12.5, currency="EUR", lead_id=None),
        "   ",
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines).replace(',"lead_id":null', "") + "\n", encoding="utf-8")
    return path


# -- CSV -----------------------------------------------------------------------------------------------------------


def test_csv_rows_become_events_bad_rows_and_skipped_rows(deals: tuple[CsvMapping, Path]) -> None:
    outcomes = list(rows_to_events(*deals))
    assert [outcome for outcome in outcomes if isinstance(outcome, BadRow)] == EXPECTED_BAD_ROWS
    assert [outcome for outcome in outcomes if isinstance(outcome, SkippedRow)] == [SkippedRow(5)]
    events = [(outcome.line, outcome.event_id) for outcome in outcomes if isinstance(outcome, RowEvent)]
    assert events == [
        (2, "crm-d1-created"),
        (2, "crm-d1-won"),
        (3, "crm-d2-created"),
        (14, "crm-d10-created"),
        (14, "crm-d10-lost"),
    ]


def test_every_row_is_accounted_for(deals: tuple[CsvMapping, Path]) -> None:
    plan = plan_replay(deals[1], deals[0])
    assert plan.rows == 11  # 14 lines: the header, a blank line and a record over two lines are not rows
    assert plan.rows == len({event.line for event in plan.events}) + len(plan.bad_rows) + plan.skipped_rows


def test_events_are_in_event_time_order(deals: tuple[CsvMapping, Path]) -> None:
    plan = plan_replay(deals[1], deals[0])
    assert [event.event_id for event in plan.events] == [
        "crm-d10-created",
        "crm-d1-created",  # at the same time as crm-d10-lost: the file's order
        "crm-d10-lost",
        "crm-d2-created",
        "crm-d1-won",
    ]
    assert plan.events_by_type() == {"opportunity.created": 3, "deal.won": 1, "deal.lost": 1}


def test_the_produced_message_is_the_contract_event(deals: tuple[CsvMapping, Path]) -> None:
    won = next(event for event in plan_replay(deals[1], deals[0]).events if event.type == "deal.won")
    assert orjson.loads(won.value) == {
        "type": "deal.won",
        "source": "test-crm",
        "event_id": "crm-d1-won",
        "occurred_at": "2024-03-20T04:00:00Z",  # midnight in New York
        "deal_id": "d1",
        "amount": 100,
        "currency": "USD",
        "rep_id": "ann",
        "team": "East",
        "opened_at": "2024-03-01T05:00:00Z",
    }
    assert won.occurred_at == datetime(2024, 3, 20, 4, tzinfo=UTC)
    assert won.key == b"deal:d1"


def test_replaying_twice_gives_the_same_event_ids_and_messages(deals: tuple[CsvMapping, Path]) -> None:
    first, second = plan_replay(deals[1], deals[0]), plan_replay(deals[1], deals[0])
    assert [(event.event_id, event.value) for event in first.events] == [
        (event.event_id, event.value) for event in second.events
    ]


def test_an_event_time_in_the_future_is_a_bad_row(tmp_path: Path, deals: tuple[CsvMapping, Path]) -> None:
    data = tmp_path / "future.csv"
    data.write_text(f"{DEALS_HEADER}\nf1,ann,Open,1/1/2999,,1,,,\n", encoding="utf-8")
    (bad,) = rows_to_events(deals[0], data)
    assert isinstance(bad, BadRow) and bad.line == 2
    assert bad.problem.startswith("opened: occurred_at 2999-01-01T05:00:00+00:00 is ")
    assert bad.problem.endswith("s in the future (tolerance 300 s): check the producer's clock")


def test_a_csv_file_without_a_mapping_is_refused(deals: tuple[CsvMapping, Path]) -> None:
    with pytest.raises(ReplayInputError, match="a CSV file needs a mapping"):
        plan_replay(deals[1], None)


def test_a_mapping_that_does_not_fit_the_file_is_refused(tmp_path: Path, deals: tuple[CsvMapping, Path]) -> None:
    data = tmp_path / "other.csv"
    data.write_text(DEALS_HEADER.replace("closed,", "") + "\n", encoding="utf-8")
    with pytest.raises(ReplayInputError) as info:
        list(rows_to_events(deals[0], data))
    columns = "id, rep, stage, opened, value, channel, account, reason"
    assert str(info.value) == (
        "the mapping does not fit other.csv:\n"
        f"  events.1.occurred_at: no column 'closed' in the data file (it has: {columns})\n"
        f"  events.2.occurred_at: no column 'closed' in the data file (it has: {columns})"
    )


def test_a_file_in_another_encoding_says_so(tmp_path: Path, deals: tuple[CsvMapping, Path]) -> None:
    data = tmp_path / "latin.csv"
    data.write_bytes(f"{DEALS_HEADER}\nd1,ann,Open,1/1/2024,,1,,,\nd2,Jos\xe9,Open,1/1/2024,,1,,,\n".encode("latin-1"))
    with pytest.raises(ReplayInputError, match=r"^latin.csv line 3: not utf-8-sig text \(set csv.encoding"):
        list(rows_to_events(deals[0], data))


@pytest.mark.parametrize(("name", "line"), [("deals.csv", 15), ("reps.csv", 4)])
def test_a_record_that_is_not_csv_is_refused_by_line(deals: tuple[CsvMapping, Path], name: str, line: int) -> None:
    path = deals[1].with_name(name)
    too_long = '"' + "x" * (csv.field_size_limit() + 1) + '"\n'
    path.write_text(path.read_text(encoding="utf-8") + too_long, encoding="utf-8")
    with pytest.raises(ReplayInputError, match=rf"^{name} line {line}: unreadable CSV: field larger than field limit"):
        list(rows_to_events(*deals))


# -- the CSV files: headers, joined files --------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def fit_problems(folder: Path, data_header: str) -> list[str]:
    """The problems of the deals mapping with a data file of ``data_header`` (and the joined files in ``folder``)."""
    mapping = write(folder, "deals.yaml", DEALS_MAPPING)
    with pytest.raises(ConfigFileError) as info:
        load_mapping_for(mapping, write(folder, "deals.csv", data_header + "\n"))
    return [problem.removeprefix(f"{mapping}:") for problem in info.value.problems]


def test_columns_are_checked_against_the_data_file_and_the_joined_files(tmp_path: Path) -> None:
    write(tmp_path, "reps.csv", "rep,region\n")
    assert fit_problems(tmp_path, DEALS_HEADER.replace("channel,", "")) == [
        "15:13: events.0.fields.team: no column 'office' in reps.csv (it has: rep, region)",
        "18:16: events.0.fields.channel: no column 'channel' in the data file "
        "(it has: id, rep, stage, opened, closed, value, account, reason)",
        "30:13: events.1.fields.team: no column 'office' in reps.csv (it has: rep, region)",
    ]


def test_a_missing_joined_file_points_at_the_join(tmp_path: Path) -> None:
    assert fit_problems(tmp_path, DEALS_HEADER) == [
        "5:16: join.reps.file: reps.csv: cannot read: No such file or directory"
    ]


def test_a_join_key_missing_from_the_joined_file(tmp_path: Path) -> None:
    write(tmp_path, "reps.csv", "agent,office\n")
    assert fit_problems(tmp_path, DEALS_HEADER) == [
        "5:31: join.reps.key: no column 'rep' in reps.csv (it has: agent, office)"
    ]


def test_the_columns_fit_when_the_files_have_them(tmp_path: Path) -> None:
    write(tmp_path, "reps.csv", "rep,office\n")
    data = write(tmp_path, "deals.csv", "\ufeff" + DEALS_HEADER + "\n")
    assert load_mapping_for(write(tmp_path, "deals.yaml", DEALS_MAPPING), data).source == "test-crm"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "deals.csv: no header line"),
        ("\nid,rep\n", "deals.csv: no header line"),
        ("id, rep ,id\n", "deals.csv: duplicate columns in the header: id"),
        (None, "deals.csv: cannot read: No such file or directory"),
    ],
)
def test_a_header_that_cannot_be_used(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / "deals.csv" if text is None else write(tmp_path, "deals.csv", text)
    with pytest.raises(CsvSourceError) as info:
        read_header(path, CsvFormat())
    assert str(info.value) == problem


def test_a_joined_file_by_its_key(deals: tuple[CsvMapping, Path]) -> None:
    write(deals[1].parent, "reps.csv", "rep , office\nann, East \n\nbob,West,extra\n")
    table = load_join_table(deals[1], "reps", deals[0])
    assert table.file == "reps.csv" and table.columns == ("rep", "office")
    assert table.rows == {"ann": {"rep": "ann", "office": "East"}, "bob": {"rep": "bob", "office": "West"}}


def test_a_joined_file_with_a_repeated_key_is_refused(deals: tuple[CsvMapping, Path]) -> None:
    write(deals[1].parent, "reps.csv", "rep,office\nann,East\nbob,West\nann,West\n")
    with pytest.raises(CsvSourceError, match=r"^reps.csv line 4: rep 'ann' appears twice$"):
        load_join_table(deals[1], "reps", deals[0])
    with pytest.raises(ReplayInputError, match=r"^reps.csv line 4: rep 'ann' appears twice$"):
        list(rows_to_events(*deals))


# -- JSONL ---------------------------------------------------------------------------------------------------------


def test_jsonl_lines_are_checked_like_the_worker_checks_them(jsonl: Path) -> None:
    outcomes = list(jsonl_to_events(jsonl, acceptance=SMALL))
    bad = [(outcome.line, outcome.problem) for outcome in outcomes if isinstance(outcome, BadRow)]
    assert [line for line, _ in bad] == [3, 4, 5, 7, 8]
    assert bad[0][1].startswith("Invalid JSON")
    assert bad[1][1] == "unknown event type 'deal.closed'; `kpimon schema` lists the accepted types"
    assert bad[2][1] == "event_id 'e1' repeats the one of line 1"
    assert "in the future" in bad[3][1]
    assert bad[4][1].startswith("the message is 2") and bad[4][1].endswith("over the 1000-byte limit")
    events = [(outcome.line, outcome.event_id) for outcome in outcomes if isinstance(outcome, RowEvent)]
    assert events == [(1, "e1"), (6, "e2"), (9, "e5")]


def test_jsonl_events_are_produced_as_written_in_event_time_order(jsonl: Path) -> None:
    plan = plan_replay(jsonl, None, acceptance=SMALL)
    assert [event.event_id for event in plan.events] == ["e2", "e1", "e5"]  # 08:00Z, then 09:00Z twice
    assert plan.events[1].value == event_line().encode()
    assert plan.rows == 8  # blank lines are not rows


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayInputError, match=r"missing.jsonl: cannot read: No such file or directory"):
        plan_replay(tmp_path / "missing.jsonl", None)


# -- reporting -----------------------------------------------------------------------------------------------------


def test_progress_line() -> None:
    assert progress_line(4000, 17600, 2.05, 3) == "replay: 4,000/17,600 events (22%), 1,951 events/s, 3 bad rows so far"
    assert progress_line(0, 0, 0.0, 0) == "replay: 0/0 events (100%), 0 events/s, 0 bad rows so far"


def test_the_summary_lists_twenty_bad_rows_then_how_many_more() -> None:
    bad_rows = tuple(BadRow(line, "value: '?' is not a number") for line in range(2, 27))
    summary = ReplaySummary("deals.csv", 40, {"deal.won": 10, "deal.lost": 3}, 2, bad_rows, True, 1.25)
    lines = summary.report()
    assert lines[:2] == [
        "replay: deals.csv: 13 events produced in 1.2 s (deal.won 10, deal.lost 3)",
        "replay: 40 rows, 2 skipped by the mapping's skip_when, 25 bad rows (not produced):",
    ]
    assert lines[2] == "  line 2: value: '?' is not a number"
    assert len(lines) == 2 + 20 + 1 and lines[-1] == "  and 5 more"
    assert summary.events == 13


# -- producing (a fake producer: no broker) ------------------------------------------------------------------------


class FakeProducer:
    sent: list[tuple[str, bytes, bytes]]

    def __init__(self, **options: Any) -> None:
        FakeProducer.sent = []
        self.options = options

    async def start(self) -> None: ...

    async def flush(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: bytes) -> Any:
        FakeProducer.sent.append((topic, key, value))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    ensured: list[list[str]] = []

    async def ensure_topics(servers: str, names: list[str], partitions: int, replication: int = 1, **_: object) -> None:
        ensured.append(names)

    monkeypatch.setattr(replay, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(replay, "ensure_topics", ensure_topics)
    return ensured


SETTINGS = Settings.model_validate({"crm_topic": "test.crm", "marketing_topic": "test.marketing"})


async def test_run_replay_produces_keyed_by_routing_key_in_order(
    deals: tuple[CsvMapping, Path], fake_kafka: list[list[str]]
) -> None:
    lines: list[str] = []
    mapping_file = deals[1].with_name("deals.yaml")
    summary = await run_replay(SETTINGS, CONFIG, deals[1], mapping_file, rate=None, progress=lines.append)
    assert fake_kafka == [["test.crm", "test.marketing"]]
    assert [(topic, key) for topic, key, _ in FakeProducer.sent] == [
        ("test.crm", b"deal:d10"),
        ("test.crm", b"deal:d1"),
        ("test.crm", b"deal:d10"),
        ("test.crm", b"deal:d2"),
        ("test.crm", b"deal:d1"),
    ]
    assert summary.events_by_type == {"opportunity.created": 3, "deal.won": 1, "deal.lost": 1}
    assert summary.bad_rows == tuple(EXPECTED_BAD_ROWS) and summary.skipped_rows == 1 and summary.rows == 11
    assert lines[0] == "replay: deals.csv: 11 rows read: 5 events, 1 rows skipped, 7 bad rows"
    assert lines[1] == "replay: 5/5 events (100%), " + lines[1].split(", ")[1] + ", 7 bad rows so far"
    assert lines[3] == "replay: 11 rows, 1 skipped by the mapping's skip_when, 7 bad rows (not produced):"
    assert lines[4:] == [f"  {bad_row}" for bad_row in EXPECTED_BAD_ROWS]


async def test_marketing_events_go_to_the_marketing_topic(jsonl: Path, fake_kafka: list[list[str]]) -> None:
    await run_replay(SETTINGS, CONFIG, jsonl, None, rate=None, progress=lambda _: None)
    sent = {orjson.loads(value)["event_id"]: (topic, key) for topic, key, value in FakeProducer.sent}
    assert sent == {  # a lead's events keyed by the lead, a spend record by its first record
        "e1": ("test.crm", b"lead:l1"),
        "e2": ("test.crm", b"lead:l1"),
        "e4": ("test.crm", b"lead:l1"),
        "e5": ("test.marketing", b"spend:e5"),
    }


async def test_rate_paces_the_events(deals: tuple[CsvMapping, Path], fake_kafka: list[list[str]]) -> None:
    started = time.monotonic()
    await run_replay(SETTINGS, CONFIG, deals[1], deals[1].with_name("deals.yaml"), rate=20, progress=lambda _: None)
    assert time.monotonic() - started >= 0.09  # 5 events at 20/s in batches of 2: the second batch waits 0.1 s


async def test_a_dry_run_produces_nothing(deals: tuple[CsvMapping, Path], fake_kafka: list[list[str]]) -> None:
    FakeProducer.sent = []
    lines: list[str] = []
    summary = await run_replay(
        SETTINGS,
        CONFIG,
        deals[1],
        deals[1].with_name("deals.yaml"),
        rate=None,
        progress=lines.append,
        dry_run=True,
    )
    assert FakeProducer.sent == [] and fake_kafka == []
    assert summary.events == 5 and not summary.produced
    assert "none produced (dry run)" in lines[1]


@pytest.mark.parametrize("rate", [0, -1.0])
async def test_a_rate_must_be_positive(jsonl: Path, rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be a positive number"):
        await run_replay(SETTINGS, CONFIG, jsonl, None, rate=rate, progress=lambda _: None)


# -- the public data sets ------------------------------------------------------------------------------------------


def dataset(*parts: str) -> Path:
    path = DATASETS.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"public data set not found: {Path('..', 'shared', 'datasets', *parts)} (next to the repository)")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def planned(data: Path, mapping_name: str) -> ReplayPlan:
    acceptance = Acceptance(known_currencies=CONFIG.known_currencies())
    return plan_replay(data, load_mapping_for(MAPPINGS / mapping_name, data), acceptance=acceptance)


def of_type(plan: ReplayPlan, kind: str) -> list[dict[str, Any]]:
    return [event.event for event in plan.events if event.type == kind]


def in_order(plan: ReplayPlan) -> bool:
    times = [event.occurred_at for event in plan.events]
    return times == sorted(times)


@pytest.fixture(scope="module")
def maven() -> tuple[ReplayPlan, list[dict[str, str]], Callable[[str], list[dict[str, str]]]]:
    data = dataset("crm-sales-opportunities", "sales_pipeline.csv")
    return planned(data, "crm-sales-opportunities.yaml"), read_rows(data), lambda name: read_rows(data.with_name(name))


def test_crm_sales_opportunities(
    maven: tuple[ReplayPlan, list[dict[str, str]], Callable[[str], list[dict[str, str]]]],
) -> None:
    plan, rows, other = maven
    stages = Counter(row["deal_stage"] for row in rows)
    assert plan.bad_rows == []
    assert plan.rows == len(rows) == 8800
    assert plan.skipped_rows == stages["Prospecting"] == 500
    assert plan.events_by_type() == {
        "opportunity.created": len(rows) - stages["Prospecting"],
        "deal.won": stages["Won"],
        "deal.lost": stages["Lost"],
    }
    assert in_order(plan)

    won_rows = {row["opportunity_id"]: row for row in rows if row["deal_stage"] == "Won"}
    won = of_type(plan, "deal.won")
    won_value = sum(Decimal(row["close_value"]) for row in won_rows.values())
    assert sum(Decimal(str(event["amount"])) for event in won) == won_value == 10_005_534
    for event in won:
        row = won_rows[event["deal_id"]]
        assert event["occurred_at"][:10] == datetime.strptime(row["close_date"], "%m/%d/%Y").date().isoformat()
        assert event["opened_at"][:10] == datetime.strptime(row["engage_date"], "%m/%d/%Y").date().isoformat()
        assert event["rep_id"] == row["sales_agent"] and event["currency"] == "USD"

    office = {row["sales_agent"]: row["regional_office"] for row in other("sales_teams.csv")}
    price = {row["product"].replace(" ", ""): Decimal(row["sales_price"]) for row in other("products.csv")}
    for event in of_type(plan, "opportunity.created"):
        assert event["team"] == office[event["rep_id"]]
        assert Decimal(str(event["amount"])) == price[event["attributes"]["product"].replace(" ", "")]
    assert {event["reason"] for event in of_type(plan, "deal.lost")} == {"unknown"}


@pytest.fixture(scope="module")
def olist() -> tuple[ReplayPlan, list[dict[str, str]], list[dict[str, str]]]:
    leads = dataset("olist-marketing-funnel", "olist_marketing_qualified_leads_dataset.csv")
    deals = dataset("olist-marketing-funnel", "olist_closed_deals_dataset.csv")
    return planned(leads, "olist-marketing-funnel.yaml"), read_rows(leads), read_rows(deals)


def test_olist_marketing_funnel(olist: tuple[ReplayPlan, list[dict[str, str]], list[dict[str, str]]]) -> None:
    plan, leads, deals = olist
    assert plan.bad_rows == [] and plan.skipped_rows == 0
    assert plan.rows == len(leads) == 8000
    assert plan.events_by_type() == {"lead.created": len(leads), "lead.qualified": len(leads), "deal.won": len(deals)}
    assert in_order(plan)

    channels = Counter(event.get("channel", "") for event in of_type(plan, "lead.created"))
    assert channels == Counter(row["origin"] for row in leads)
    assert {event["stage"] for event in of_type(plan, "lead.qualified")} == {"mql"}

    by_lead = {row["mql_id"]: row for row in deals}
    won = of_type(plan, "deal.won")
    assert {event["deal_id"] for event in won} == set(by_lead)
    for event in won:
        deal = by_lead[event["deal_id"]]
        assert event["rep_id"] == deal["sr_id"] and event["amount"] == 0 and event["currency"] == "BRL"
        local = datetime.strptime(deal["won_date"], "%d-%m-%Y %H:%M")
        assert datetime.fromisoformat(event["occurred_at"]).astimezone(SAO_PAULO).replace(tzinfo=None) == local
