"""A data row as events, under a mapping (``schemas.mapping``): pure, the joined files given as tables.

``RowMapper`` prepares a mapping once for many rows; each row becomes its
events, its problems (a row with any problem emits nothing), or is skipped on
purpose (``skip_when``). The contract checks the events afterwards
(``streams.tools.replay``); reading the CSV files is ``streams.tools.csv_source``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.cells import CellError, convert
from schemas.field_kinds import CONTRACT_KINDS, ValueKind
from schemas.mapping import ColumnValue, Condition, CsvMapping, EventSpec, FieldValue, columns_of
from schemas.templates import parse_template

Cells = Mapping[str, str]


@dataclass(frozen=True)
class JoinTable:
    """The rows of a joined file by key, and its columns."""

    file: str
    columns: tuple[str, ...]
    rows: Mapping[str, Cells]


class JoinMiss(ValueError):
    """A join that finds no row for the data row's key."""


@dataclass(frozen=True)
class Empty:
    """A value left out because ``column`` was empty (or a join found nothing and the default is null)."""

    column: str


@dataclass(frozen=True)
class _Slot:
    """One value of an event spec, prepared for many rows."""

    name: str
    value: FieldValue
    kind: ValueKind
    attribute: bool


@dataclass
class MappedEvent:
    """An event built from a row, before the contract checks it."""

    type: str
    event: dict[str, Any]
    origins: Mapping[str, str]  # field -> the columns its value comes from
    empty: dict[str, str] = field(default_factory=dict)  # field left out -> the empty column that did it


@dataclass
class RowMapping:
    """What a row becomes: events, or problems (a row with a problem emits nothing), or skipped."""

    events: list[MappedEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: bool = False


Spoiled = dict[tuple[str, str], list[str]]  # (origin, problem) -> the fields it spoils: one line per problem


def origin_of(spec: EventSpec, name: str, value: FieldValue) -> str:
    """Where a value comes from, for messages: its columns, or the event's field for a constant."""
    return ", ".join(columns_of(value)) or f"{spec.type} {name}"


class RowMapper:
    """A mapping made ready for many rows: slots prepared once, the joined files at hand."""

    def __init__(self, mapping: CsvMapping, tables: Mapping[str, JoinTable]) -> None:
        if problems := mapping.contract_problems():
            raise ValueError("; ".join(f"{'.'.join(map(str, where))}: {message}" for where, message in problems))
        self.mapping = mapping
        self.tables = tables
        self._columns: dict[str, tuple[str | None, str]] = {}
        self._specs: list[tuple[EventSpec, list[_Slot], dict[str, str]]] = []
        for spec in mapping.events:
            kinds = CONTRACT_KINDS[spec.type]
            slots = [_Slot(name, value, kinds[name], False) for name, value in spec.values().items()]
            slots += [_Slot(name, value, "text", True) for name, value in spec.attributes.items()]
            origins = {name: origin_of(spec, name, value) for name, value in spec.values().items()}
            self._specs.append((spec, slots, origins))

    def map(self, cells: Cells) -> RowMapping:
        """The events one data row emits."""
        row = _Row(self, {name: text.strip() for name, text in cells.items()})
        try:
            if self.mapping.skip_when and row.holds(self.mapping.skip_when):
                return RowMapping(skipped=True)
            chosen = [(spec, slots, origins) for spec, slots, origins in self._specs if row.holds(spec.when)]
        except JoinMiss as exc:
            return RowMapping(problems=[f"a condition's join: {exc}"])
        if not chosen:
            tests = "; ".join(" and ".join(map(str, spec.when)) or "always" for spec in self.mapping.events)
            return RowMapping(problems=[f"no event's condition holds ({tests}) and skip_when does not match"])
        spoiled: Spoiled = {}
        events = [row.event(spec, slots, origins, spoiled) for spec, slots, origins in chosen]
        if spoiled:
            return RowMapping(problems=[_problem_line(*key, fields) for key, fields in spoiled.items()])
        return RowMapping(events=events)

    def split_column(self, name: str) -> tuple[str | None, str]:
        if name not in self._columns:
            self._columns[name] = self.mapping.split_column(name)
        return self._columns[name]


class _Row:
    """One data row (cells stripped) and the rows its joins find."""

    def __init__(self, mapper: RowMapper, cells: Cells) -> None:
        self.mapper = mapper
        self.cells = cells
        self._joined: dict[str, Cells] = {}

    def value(self, name: str) -> str:
        """The cell ``name`` (``join.column``: of the joined row); raises JoinMiss."""
        join_name, column = self.mapper.split_column(name)
        if join_name is None:
            return self.cells.get(column, "")
        if join_name not in self._joined:
            join = self.mapper.mapping.join[join_name]
            key = self.cells.get(join.lookup_column, "")
            found = self.mapper.tables[join_name].rows.get(join.key_for(key)) if key else {}
            if found is None and not join.optional:
                raise JoinMiss(f"{join.lookup_column} {key!r} is not in {join.file}")
            self._joined[join_name] = found or {}
        return self._joined[join_name].get(column, "")

    def holds(self, conditions: Iterable[Condition]) -> bool:
        return all(condition.holds(self.value(condition.column)) for condition in conditions)

    def render(self, value: FieldValue) -> object:
        """A field value for this row: text, a constant, or Empty; raises JoinMiss."""
        if isinstance(value, ColumnValue):
            try:
                text = self.value(value.column)
            except JoinMiss:
                if not value.has_default:
                    raise
                text = ""
            if text:
                return text
            return value.default if value.has_default and value.default is not None else Empty(value.column)
        if not isinstance(value, str):
            return value
        rendered: list[str] = []
        for part in parse_template(value):
            if isinstance(part, str):
                rendered.append(part)
            elif text := self.value(part.name):
                rendered.append(text)
            else:
                return Empty(part.name)
        return "".join(rendered)

    def event(self, spec: EventSpec, slots: list[_Slot], origins: dict[str, str], spoiled: Spoiled) -> MappedEvent:
        mapped = MappedEvent(spec.type, {"type": spec.type, "source": self.mapper.mapping.source}, origins)
        attributes: dict[str, Any] = {}
        for slot in slots:
            target = attributes if slot.attribute else mapped.event
            try:
                rendered = self.render(slot.value)
                if isinstance(rendered, Empty):
                    if not slot.attribute:
                        mapped.empty[slot.name] = rendered.column
                elif isinstance(rendered, str):
                    target[slot.name] = convert(rendered, slot.kind, self.mapper.mapping)
                else:
                    target[slot.name] = rendered
            except (JoinMiss, CellError) as exc:
                origin = origins.get(slot.name) or origin_of(spec, slot.name, slot.value)
                spoiled.setdefault((origin, str(exc)), []).append(f"{spec.type} {slot.name}")
        if attributes:
            mapped.event["attributes"] = attributes
        return mapped


def map_row(mapping: CsvMapping, cells: Cells, tables: Mapping[str, JoinTable] | None = None) -> RowMapping:
    """The events one data row emits under ``mapping`` (for many rows, make one RowMapper)."""
    return RowMapper(mapping, tables or {}).map(cells)


def _problem_line(origin: str, problem: str, fields: list[str]) -> str:
    used_for = ", ".join(fields)
    return f"{origin}: {problem}" if origin == used_for else f"{origin}: {problem} (for {used_for})"
