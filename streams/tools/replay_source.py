"""Rows of a JSONL file or a CSV export (through a mapping) to checked contract events. Pure but for reading the file.

Every row ends as events, a bad row (with its line number and what is wrong with which
column), or a row skipped on purpose (the mapping's ``skip_when``). Events are checked the
way the worker checks them (the contract, the size limit, timestamps in the future), so none
of them ends in the dead-letter topic. ``streams.tools.replay`` produces them.
"""

from __future__ import annotations

import codecs
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import AnyEvent, parse_event, routing_key
from schemas.mapping import CsvMapping
from schemas.row_mapping import JoinTable, MappedEvent, RowMapper
from streams.core.validation import Rejection
from streams.tools.csv_source import CsvSourceError, load_join_tables, read_header, rows
from streams.worker.acceptance import Acceptance

EventDict = dict[str, Any]

CSV_SUFFIXES = (".csv", ".tsv")


class ReplayInputError(ValueError):
    """A file that cannot be replayed at all (missing, unreadable, not the expected format)."""


# -- outcomes ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowEvent:
    """An event from line ``line``, checked like the worker checks it; ``key`` and ``value``: the message produced."""

    line: int
    event: EventDict
    occurred_at: datetime
    key: bytes
    value: bytes

    @classmethod
    def checked(cls, line: int, event: EventDict, contract_event: AnyEvent, value: bytes) -> RowEvent:
        """The event ``value`` that the contract accepted as ``contract_event``, keyed by its routing key."""
        return cls(line, event, contract_event.occurred_at, routing_key(contract_event).encode(), value)

    @property
    def event_id(self) -> str:
        return str(self.event["event_id"])

    @property
    def type(self) -> str:
        return str(self.event["type"])


@dataclass(frozen=True)
class BadRow:
    """A row (CSV record or JSONL line) that produces nothing, and why."""

    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass(frozen=True)
class SkippedRow:
    """A CSV row the mapping skips on purpose (``skip_when``)."""

    line: int


RowOutcome = RowEvent | BadRow | SkippedRow


class _FirstLines:
    """The line each event_id was first seen on: a repeated id is reported, never produced twice."""

    def __init__(self) -> None:
        self._lines: dict[str, int] = {}

    def checked(self, line: int, events: list[RowEvent]) -> list[RowEvent] | BadRow:
        """``events`` of one row, or a BadRow if one of their ids came earlier (in the file or the row)."""
        seen_in_row: set[str] = set()
        for event in events:
            first = self._lines.get(event.event_id)
            if first is not None or event.event_id in seen_in_row:
                where = f"line {first}" if first is not None else "this row"
                return BadRow(line, f"event_id {event.event_id!r} repeats the one of {where}")
            seen_in_row.add(event.event_id)
        self._lines.update(dict.fromkeys(seen_in_row, line))
        return events


def _row_outcomes(checked: list[RowEvent] | BadRow) -> Iterator[RowOutcome]:
    if isinstance(checked, BadRow):
        yield checked
    else:
        yield from checked


# -- JSONL ---------------------------------------------------------------------------------------------------------


def jsonl_to_events(path: Path, *, acceptance: Acceptance | None = None) -> Iterator[RowOutcome]:
    """One outcome per non-blank line of a JSONL file of contract events (line numbers from 1)."""
    acceptance = acceptance or Acceptance()
    first_lines, now = _FirstLines(), time.time()
    try:
        with path.open("rb") as handle:
            for line, raw_line in enumerate(handle, start=1):
                raw = (raw_line.removeprefix(codecs.BOM_UTF8) if line == 1 else raw_line).strip()
                if not raw:
                    continue
                event = acceptance.check(raw, now)
                if isinstance(event, Rejection):
                    yield BadRow(line, event.detail)
                    continue
                row_event = RowEvent.checked(line, orjson.loads(raw), event, raw)
                yield from _row_outcomes(first_lines.checked(line, [row_event]))
    except OSError as exc:
        raise ReplayInputError(f"{path.name}: cannot read: {exc.strerror}") from None


# -- CSV with a mapping --------------------------------------------------------------------------------------------


def _contract_problems(mapped: MappedEvent, exc: ValidationError) -> list[str]:
    """The contract's objections to a mapped event, naming the columns the values came from."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = error["loc"][1:] if error["loc"][:1] == (mapped.type,) else error["loc"]
        name = str(loc[0]) if loc else ""
        target = " ".join([mapped.type, ".".join(map(str, loc))]).strip()
        if error["type"] == "missing" and name in mapped.empty:
            problems.append(f"{mapped.empty[name]}: empty, but {mapped.type} needs {name}")
            continue
        value = error.get("input")
        got = f", got {value!r}" if isinstance(value, str | int | float) and loc else ""
        origin = mapped.origins.get(name, target)
        problems.append(f"{origin}: {error['msg']}{got}" + ("" if origin == target else f" (for {target})"))
    return problems


def _checked_event(line: int, mapped: MappedEvent, acceptance: Acceptance, now: float) -> RowEvent | list[str]:
    value = orjson.dumps(mapped.event)
    checked = acceptance.check(value, now)
    if isinstance(checked, Rejection):
        try:
            parse_event(value)
        except ValidationError as exc:
            return _contract_problems(mapped, exc)
        origin = mapped.origins["occurred_at"] if checked.reason == "future_timestamp" else mapped.type
        return [f"{origin}: {checked.detail}"]
    return RowEvent.checked(line, mapped.event, checked, value)


def _fitting_header(path: Path, mapping: CsvMapping, tables: dict[str, JoinTable]) -> list[str]:
    """The data file's columns, once every column the mapping names is known to exist."""
    header = read_header(path, mapping.csv)
    problems = mapping.column_problems(header, {name: table.columns for name, table in tables.items()})
    if problems:
        lines = "".join(f"\n  {'.'.join(map(str, where))}: {message}" for where, message in problems)
        raise ReplayInputError(f"the mapping does not fit {path.name}:{lines}")
    return header


@dataclass
class _CsvReplay:
    """What mapping one CSV file's rows needs besides the row."""

    mapper: RowMapper
    header: list[str]
    acceptance: Acceptance
    now: float = field(default_factory=time.time)
    first_lines: _FirstLines = field(default_factory=_FirstLines)

    def outcome(self, line: int, record: list[str]) -> list[RowEvent] | BadRow | SkippedRow:
        if len(record) != len(self.header):
            return BadRow(line, f"{len(record)} values, but the header has {len(self.header)} columns")
        mapped = self.mapper.map(dict(zip(self.header, record, strict=True)))
        if mapped.skipped:
            return SkippedRow(line)
        problems, events = list(mapped.problems), []
        for mapped_event in mapped.events:
            checked = _checked_event(line, mapped_event, self.acceptance, self.now)
            if isinstance(checked, RowEvent):
                events.append(checked)
            else:
                problems += checked
        if problems:
            return BadRow(line, "; ".join(dict.fromkeys(problems)))
        return self.first_lines.checked(line, events)


def rows_to_events(
    mapping: CsvMapping, csv_path: Path, *, acceptance: Acceptance | None = None
) -> Iterator[RowOutcome]:
    """Each data row of ``csv_path`` as its events, a BadRow or a SkippedRow (``line``: the row's first line).

    Raises ReplayInputError when a file cannot be read or lacks a column the mapping names.
    """
    try:
        tables = load_join_tables(csv_path, mapping)
        header = _fitting_header(csv_path, mapping, tables)
        replay = _CsvReplay(RowMapper(mapping, tables), header, acceptance or Acceptance())
        for line, record in rows(csv_path, mapping.csv):
            outcome = replay.outcome(line, record)
            yield from [outcome] if isinstance(outcome, SkippedRow) else _row_outcomes(outcome)
    except CsvSourceError as exc:
        raise ReplayInputError(str(exc)) from None


def source_outcomes(
    source: Path, mapping: CsvMapping | None, *, acceptance: Acceptance | None = None
) -> Iterator[RowOutcome]:
    """The outcomes of a CSV file with its mapping, or of a JSONL file (no mapping)."""
    if mapping is not None:
        return rows_to_events(mapping, source, acceptance=acceptance)
    if source.suffix.lower() in CSV_SUFFIXES:
        raise ReplayInputError(f"{source.name}: a CSV file needs a mapping (--mapping; see deploy/mappings/)")
    return jsonl_to_events(source, acceptance=acceptance)


# -- the plan: every outcome, events in event-time order -----------------------------------------------------------


@dataclass(frozen=True)
class ReplayPlan:
    """A file read and checked: its events in event-time order, its bad and skipped rows."""

    rows: int
    events: list[RowEvent]
    bad_rows: list[BadRow]
    skipped_rows: int

    def events_by_type(self) -> dict[str, int]:
        return dict(Counter(event.type for event in self.events).most_common())


def plan_replay(source: Path, mapping: CsvMapping | None, *, acceptance: Acceptance | None = None) -> ReplayPlan:
    """Read and check all of ``source``; events sorted by occurred_at (ties keep the file's order)."""
    events: list[RowEvent] = []
    bad_rows: list[BadRow] = []
    lines: set[int] = set()
    skipped = 0
    for outcome in source_outcomes(source, mapping, acceptance=acceptance):
        lines.add(outcome.line)
        if isinstance(outcome, RowEvent):
            events.append(outcome)
        elif isinstance(outcome, BadRow):
            bad_rows.append(outcome)
        else:
            skipped += 1
    events.sort(key=lambda event: event.occurred_at.timestamp())
    return ReplayPlan(len(lines), events, bad_rows, skipped)
