"""Column mappings: how the rows of a CRM or marketing CSV export become contract events.

A mapping file (YAML) says, for one kind of CSV file, which events each row
emits, each under its own condition, and where every field of those events
comes from. Example (``deploy/mappings/crm-sales-opportunities.yaml``)::

    source: maven-crm                 # the events' "source"
    csv: {delimiter: ",", encoding: utf-8-sig}
    timezone: UTC                     # how dates and times without an offset are read
    date_formats: ["%m/%d/%Y"]        # tried in order (Python strptime)
    join:                             # lookup tables: other CSV files next to the data file
      teams: {file: sales_teams.csv, key: sales_agent}
    skip_when: {column: deal_stage, equals: Prospecting}
    events:
      - type: deal.won
        when: {column: deal_stage, equals: Won}
        event_id: "maven-{opportunity_id}-won"      # stable: replaying twice gives the same ids
        occurred_at: "{close_date}"
        fields:
          deal_id: "{opportunity_id}"
          team: "{teams.regional_office}"           # a column of the joined row
          amount: {column: close_value, default: "0"}
          currency: USD

A field value is a template string (``"{column}"``, ``"{join.column}"``,
``"maven-{id}"``; ``{{`` and ``}}`` are literal braces), a constant number or
true/false, or ``{column: NAME, default: VALUE}``. Cells are stripped of
surrounding blanks. A template whose column is empty leaves the field out (the
event contract then decides whether it may be missing); a column value's
``default`` is used instead, and ``default: null`` leaves the field out even
when a join finds no row. Rendered text is converted to the type the contract
gives the field: timestamps are parsed with ``date_formats`` (naive ones in
``timezone``) and written in UTC, whole numbers, numbers and decimal amounts
are parsed as such.

A join finds the row of another CSV file (next to the data file) whose ``key``
column equals the data row's ``column`` (default: the same name); ``aliases``
map data values spelled differently to keys. A row whose key is not found is
bad if it uses a joined column, unless the join is ``optional: true``.

Rows the mapping emits no event for are errors unless they match
``skip_when``: nothing is dropped without being counted.

A mapping is checked against the contract when it is loaded (``load_mapping``);
mapping a row is ``schemas.row_mapping``, converting a cell ``schemas.cells``,
reading the CSV files ``streams.tools.csv_source`` and producing the events
``streams.tools.replay``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    field_validator,
    model_validator,
)

from schemas.config import TimeZoneName
from schemas.events import EVENT_TYPES, Label
from schemas.field_kinds import CONTRACT_KINDS, REQUIRED_FIELDS
from schemas.templates import parse_template, placeholders
from schemas.yaml_source import CrossCheck, Location, load_yaml_model

ColumnName = Annotated[str, Field(min_length=1, max_length=200)]

ENVELOPE_FIELDS = ("type", "event_id", "occurred_at", "source", "attributes")
"""Set by an event's own keys, never under ``fields``."""


# -- the mapping file ----------------------------------------------------------------------------------------------


def _known_encoding(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (e.g. utf-8, utf-8-sig, latin-1, cp1252)") from None
    return name


def _valid_date_format(text: str) -> str:
    if "%" not in text:
        raise ValueError(f"{text!r} has no % directive (e.g. %Y-%m-%d)")
    sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    try:
        datetime.strptime(sample.strftime(text), text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a usable strptime format: {exc}") from None
    return text


def _as_list(value: object) -> object:
    return [value] if isinstance(value, dict) else value


class CsvFormat(BaseModel):
    """How the data file and the joined files are written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: Annotated[str, AfterValidator(_known_encoding)] = "utf-8-sig"


class Join(BaseModel):
    """A lookup table: the row of ``file`` whose ``key`` equals the data row's ``column``.

    A data row whose key is not in ``file`` is a bad row when it uses a joined
    column, unless the join is ``optional`` (its columns then read as empty).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Annotated[str, Field(min_length=1)]
    key: ColumnName
    column: ColumnName | None = None
    aliases: dict[str, str] = Field(default_factory=dict)
    optional: bool = False

    @property
    def lookup_column(self) -> str:
        """The data file's column holding the key (by default the key's own name)."""
        return self.column or self.key

    def key_for(self, value: str) -> str:
        """The key a data value stands for (``aliases`` fix spellings that differ between the files)."""
        return self.aliases.get(value, value)


class Condition(BaseModel):
    """One test on a column; exactly one of ``equals``, ``one_of`` and ``not_empty``."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    column: ColumnName
    equals: str | None = None
    one_of: tuple[str, ...] | None = None
    not_empty: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one_test(self) -> Condition:
        tests = [name for name in ("equals", "one_of", "not_empty") if getattr(self, name) is not None]
        if len(tests) != 1:
            raise ValueError(f"give exactly one of equals, one_of, not_empty (got {', '.join(tests) or 'none'})")
        return self

    def holds(self, value: str) -> bool:
        if self.equals is not None:
            return value == self.equals
        if self.one_of is not None:
            return value in self.one_of
        return value != ""

    def __str__(self) -> str:
        if self.equals is not None:
            return f"{self.column} == {self.equals!r}"
        if self.one_of is not None:
            return f"{self.column} in ({', '.join(map(repr, self.one_of))})"
        return f"{self.column} not empty"


class ColumnValue(BaseModel):
    """A column's value, with a ``default`` when the cell is empty or a join finds no row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: ColumnName
    default: str | StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | None = None

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set


def _field_value_kind(value: object) -> str | None:
    if isinstance(value, dict):
        return "column-value"
    if isinstance(value, str):
        return "template"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "whole-number"
    return "number" if isinstance(value, float) else None


FieldValue = Annotated[
    Annotated[str, Tag("template")]
    | Annotated[ColumnValue, Tag("column-value")]
    | Annotated[StrictBool, Tag("true/false")]
    | Annotated[StrictInt, Tag("whole-number")]
    | Annotated[StrictFloat, Field(allow_inf_nan=False), Tag("number")],
    Discriminator(
        _field_value_kind,
        custom_error_type="field_value",
        custom_error_message="a field value is a template string, a number, true/false "
        "or {column: NAME, default: VALUE}",
    ),
]
Conditions = Annotated[tuple[Condition, ...], BeforeValidator(_as_list)]


class EventSpec(BaseModel):
    """One event a row may emit: its type, condition, stable id, time and fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    when: Conditions = ()
    event_id: Annotated[str, Field(min_length=1)]
    occurred_at: FieldValue
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    attributes: dict[str, FieldValue] = Field(default_factory=dict)

    def values(self) -> dict[str, FieldValue]:
        """Every value the event's own fields are built from, by field name (``attributes`` apart)."""
        return {"event_id": self.event_id, "occurred_at": self.occurred_at, **self.fields}

    def located_values(self) -> Iterable[tuple[Location, str, FieldValue]]:
        """(where in the spec, field or attribute name, value) of every value the event is built from."""
        yield ("event_id",), "event_id", self.event_id
        yield ("occurred_at",), "occurred_at", self.occurred_at
        for section, values in (("fields", self.fields), ("attributes", self.attributes)):
            yield from (((section, name), name, value) for name, value in values.items())


class CsvMapping(BaseModel):
    """A mapping file: how each row of one kind of CSV file becomes events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Label
    csv: CsvFormat = CsvFormat()
    timezone: TimeZoneName = "UTC"
    date_formats: list[Annotated[str, AfterValidator(_valid_date_format)]] = Field(min_length=1)
    join: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Join] = Field(default_factory=dict)
    skip_when: Conditions = ()
    events: list[EventSpec] = Field(min_length=1)

    @field_validator("date_formats", mode="before")
    @classmethod
    def _one_or_more_formats(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def split_column(self, name: str) -> tuple[str | None, str]:
        """(join, column) for ``join.column`` when the part before the first dot names a join, else (None, name)."""
        prefix, dot, column = name.partition(".")
        return (prefix, column) if dot and prefix in self.join else (None, name)

    def contract_problems(self) -> list[tuple[Location, str]]:
        """What field validation cannot see: event types, field names and templates against the contract."""
        problems: list[tuple[Location, str]] = []
        first_with_id: dict[str, int] = {}
        for index, spec in enumerate(self.events):
            where: Location = ("events", index)
            problems += _spec_problems(spec, where)
            if spec.event_id in first_with_id:
                message = f"same event_id template as events.{first_with_id[spec.event_id]}: ids would collide"
                problems.append(((*where, "event_id"), message))
            first_with_id.setdefault(spec.event_id, index)
        return problems

    def column_problems(
        self, columns: Sequence[str], join_columns: Mapping[str, Sequence[str]]
    ) -> list[tuple[Location, str]]:
        """Columns the mapping names that the data file (``columns``) or a joined file does not have."""
        problems: list[tuple[Location, str]] = []
        for where, name in self._column_references():
            join_name, column = self.split_column(name)
            known = columns if join_name is None else join_columns.get(join_name, ())
            if column not in known:
                in_file = "the data file" if join_name is None else self.join[join_name].file
                problems.append((where, f"no column {column!r} in {in_file} (it has: {', '.join(known)})"))
        for name, join in self.join.items():
            if join.key not in join_columns.get(name, ()):
                known = ", ".join(join_columns.get(name, ()))
                problems.append((("join", name, "key"), f"no column {join.key!r} in {join.file} (it has: {known})"))
        return problems

    def _column_references(self) -> Iterable[tuple[Location, str]]:
        for name, join in self.join.items():
            yield ("join", name, "column" if join.column else "key"), join.lookup_column
        for index, condition in enumerate(self.skip_when):
            yield ("skip_when", index, "column"), condition.column
        for index, spec in enumerate(self.events):
            for number, condition in enumerate(spec.when):
                yield ("events", index, "when", number, "column"), condition.column
            for where, _, value in spec.located_values():
                yield from ((("events", index, *where), column) for column in columns_of(value))


def columns_of(value: FieldValue) -> list[str]:
    """The columns a value reads (none for a constant or a template that does not parse)."""
    if isinstance(value, ColumnValue):
        return [value.column]
    if isinstance(value, str):
        try:
            return placeholders(value)
        except ValueError:
            return []
    return []


def _spec_problems(spec: EventSpec, where: Location) -> list[tuple[Location, str]]:
    if spec.type not in EVENT_TYPES:
        return [((*where, "type"), f"unknown event type {spec.type!r} (known: {', '.join(EVENT_TYPES)})")]
    model_fields = CONTRACT_KINDS[spec.type]
    problems: list[tuple[Location, str]] = []
    for name in spec.fields:
        if name in ENVELOPE_FIELDS:
            problems.append(((*where, "fields", name), f"set {name} on the event itself, not under fields"))
        elif name not in model_fields:
            known = ", ".join(field for field in model_fields if field not in ENVELOPE_FIELDS)
            problems.append(((*where, "fields", name), f"{spec.type} has no field {name!r} (its fields: {known})"))
    missing = [name for name in REQUIRED_FIELDS[spec.type] if name not in spec.values()]
    if missing:
        problems.append(((*where, "fields"), f"{spec.type} needs {', '.join(missing)}"))
    for located, _, value in spec.located_values():
        if isinstance(value, str):
            try:
                parse_template(value)
            except ValueError as exc:
                problems.append(((*where, *located), str(exc)))
    if not columns_of(spec.event_id):
        message = "event_id needs a {column} that differs per row (e.g. the record's id), so ids are unique"
        problems.append(((*where, "event_id"), message))
    return problems


def load_mapping(path: Path, fits: CrossCheck[CsvMapping] | None = None) -> CsvMapping:
    """Read and validate a mapping file; raises ConfigFileError with ``file:line:col`` problems.

    Once the mapping agrees with the contract, ``fits`` may find more problems,
    e.g. columns the CSV files do not have (``streams.tools.csv_source.load_mapping_for``).
    """

    def cross_check(mapping: CsvMapping) -> list[tuple[Location, str]]:
        return mapping.contract_problems() or (fits(mapping) if fits is not None else [])

    return load_yaml_model(path, CsvMapping, cross_check=cross_check)
