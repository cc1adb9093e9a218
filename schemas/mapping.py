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

Mapping a row (``RowMapper``) is pure; reading the data file and producing the
events is ``streams.replay``.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
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
from schemas.events import EVENT_MODELS, EVENT_TYPES, Label
from schemas.yaml_source import ConfigFileError, Location, load_yaml_model

ColumnName = Annotated[str, Field(min_length=1, max_length=200)]
Cells = Mapping[str, str]

ENVELOPE_FIELDS = ("type", "event_id", "occurred_at", "source", "attributes")
"""Set by an event's own keys, never under ``fields``."""


# -- templates -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """``{name}`` in a template: a column of the data row, or ``join.column`` of the row a join found."""

    name: str


TemplatePart = str | Placeholder
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@cache
def parse_template(text: str) -> tuple[TemplatePart, ...]:
    """Split a template into literal text and placeholders; ValueError on a lone brace or ``{}``."""
    parts: list[TemplatePart] = []
    literal = ""
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
        elif token in ("{", "}"):
            raise ValueError(f"unmatched {token!r} in {text!r} (write {token * 2} for a literal brace)")
        elif not match.group(1).strip():
            raise ValueError(f"empty placeholder {{}} in {text!r}")
        else:
            parts += [literal, Placeholder(match.group(1))] if literal else [Placeholder(match.group(1))]
            literal = ""
    literal += text[position:]
    return (*parts, literal) if literal else tuple(parts)


def placeholders(text: str) -> list[str]:
    """The names between braces in a template, in order."""
    return [part.name for part in parse_template(text) if isinstance(part, Placeholder)]


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
                yield from ((("events", index, *where), column) for column in _columns_of(value))


def _columns_of(value: FieldValue) -> list[str]:
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
    if not _columns_of(spec.event_id):
        message = "event_id needs a {column} that differs per row (e.g. the record's id), so ids are unique"
        problems.append(((*where, "event_id"), message))
    return problems


def load_mapping(path: Path, data_file: Path | None = None) -> CsvMapping:
    """Read and validate a mapping file; raises ConfigFileError with ``file:line:col`` problems.

    With ``data_file``, the columns it names are also checked against the header
    of that CSV file and of the joined files next to it.
    """

    def cross_check(mapping: CsvMapping) -> list[tuple[Location, str]]:
        problems = mapping.contract_problems()
        if data_file is None or problems:
            return problems
        join_columns: dict[str, list[str]] = {}
        for name, join in mapping.join.items():
            try:
                join_columns[name] = read_header(data_file.parent / join.file, mapping.csv)
            except ValueError as exc:
                problems.append((("join", name, "file"), str(exc)))
        try:
            columns = read_header(data_file, mapping.csv)
        except ValueError as exc:
            raise ConfigFileError([str(exc)]) from exc
        return problems or mapping.column_problems(columns, join_columns)

    return load_yaml_model(path, CsvMapping, cross_check=cross_check)


def not_decodable(path: Path, encoding: str) -> str:
    """A message naming the first line of ``path`` that is not ``encoding`` text."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 0
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):  # noqa: B007 (the line is wanted after the loop)
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                break
    return f"{path.name} line {line}: not {encoding} text (set csv.encoding in the mapping)"


def read_header(path: Path, csv_format: CsvFormat) -> list[str]:
    """The column names on the first line of a CSV file; ValueError if it cannot be read."""
    try:
        with path.open(newline="", encoding=csv_format.encoding) as handle:
            header = next(csv.reader(handle, delimiter=csv_format.delimiter), [])
    except OSError as exc:
        raise ValueError(f"{path.name}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(not_decodable(path, csv_format.encoding)) from None
    header = [name.strip() for name in header]
    if not header or not any(header):
        raise ValueError(f"{path.name}: no header line")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ValueError(f"{path.name}: duplicate columns in the header: {', '.join(duplicated)}")
    return header


# -- the contract's types ------------------------------------------------------------------------------------------

ValueKind = Literal["timestamp", "whole number", "number", "decimal", "text"]


def _leaf_types(annotation: object) -> list[object]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaf_types(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return [leaf for arg in get_args(annotation) for leaf in _leaf_types(arg)]
    return [annotation]


def _kind_of(annotation: object) -> ValueKind:
    leaves = [leaf for leaf in _leaf_types(annotation) if leaf is not NoneType]
    if any(leaf is AwareDatetime or leaf is datetime for leaf in leaves):
        return "timestamp"
    if int in leaves:
        return "whole number"
    if float in leaves:
        return "number"
    return "decimal" if Decimal in leaves else "text"


CONTRACT_KINDS: dict[str, dict[str, ValueKind]] = {
    _type: {name: _kind_of(info.annotation) for name, info in model.model_fields.items()}
    for _type, model in zip(EVENT_TYPES, EVENT_MODELS, strict=True)
}
"""Per event type, what each field of the contract holds: rendered text is converted to it."""

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    _type: tuple(
        name for name, info in model.model_fields.items() if info.is_required() and name not in ("type", "source")
    )
    for _type, model in zip(EVENT_TYPES, EVENT_MODELS, strict=True)
}


# -- parsing cells -------------------------------------------------------------------------------------------------


def parse_timestamp(text: str, formats: Sequence[str], zone: ZoneInfo) -> datetime | None:
    """The first format that reads ``text``; times without an offset are in ``zone``. None if none does.

    A local time that does not exist (skipped by a daylight-saving change) is
    read with the offset before the change; an ambiguous one as its first occurrence.
    """
    for date_format in formats:
        try:
            parsed = datetime.strptime(text, date_format)
        except ValueError:
            continue
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    return None


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as ``2017-03-01T05:00:00Z`` (microseconds only when there are some)."""
    utc = moment.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def json_number(amount: Decimal) -> int | float | str:
    """A decimal as a JSON number when that is exact, else as a string (the contract accepts both)."""
    if amount == amount.to_integral_value() and abs(amount) < LARGEST_JSON_INTEGER:
        return int(amount)
    as_float = float(amount)
    return as_float if Decimal(repr(as_float)) == amount else str(amount)


@lru_cache(maxsize=65536)
def _timestamp_text(text: str, formats: tuple[str, ...], timezone: str) -> str | None:
    """RFC 3339 of a cell (exports repeat dates a lot, and strptime is slow)."""
    moment = parse_timestamp(text, formats, ZoneInfo(timezone))
    return None if moment is None else rfc3339(moment)


LARGEST_JSON_INTEGER = 2**63


class CellError(ValueError):
    """A cell that cannot become the value its field needs."""


def convert(text: str, kind: ValueKind, mapping: CsvMapping) -> Any:
    """Rendered ``text`` as the JSON value of a field of ``kind``; raises CellError."""
    if kind == "timestamp":
        timestamp = _timestamp_text(text, tuple(mapping.date_formats), mapping.timezone)
        if timestamp is None:
            raise CellError(f"{text!r} matches none of the date formats ({', '.join(mapping.date_formats)})")
        return timestamp
    if kind == "text":
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CellError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise CellError(f"{text!r} is not a finite number")
    if kind == "whole number":
        if abs(number) >= LARGEST_JSON_INTEGER:
            raise CellError(f"{text!r} is too large")
        if number != number.to_integral_value():
            raise CellError(f"{text!r} is not a whole number")
        return int(number)
    return float(number) if kind == "number" else json_number(number)


# -- rendering a row -----------------------------------------------------------------------------------------------


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
    return ", ".join(_columns_of(value)) or f"{spec.type} {name}"


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


def load_join_table(data_file: Path, name: str, mapping: CsvMapping) -> JoinTable:
    """Read the joined file ``name`` (next to ``data_file``); ValueError if unreadable or a key repeats."""
    join = mapping.join[name]
    path = data_file.parent / join.file
    columns = read_header(path, mapping.csv)
    rows: dict[str, Cells] = {}
    try:
        with path.open(newline="", encoding=mapping.csv.encoding) as handle:
            reader = csv.reader(handle, delimiter=mapping.csv.delimiter)
            next(reader)  # the header
            for record in filter(None, reader):
                cells = {column: text.strip() for column, text in zip(columns, record, strict=False)}
                key = cells.get(join.key, "")
                if key in rows:
                    raise ValueError(f"{join.file} line {reader.line_num}: {join.key} {key!r} appears twice")
                rows[key] = cells
    except OSError as exc:
        raise ValueError(f"{join.file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(not_decodable(path, mapping.csv.encoding)) from None
    except csv.Error as exc:
        raise ValueError(f"{join.file}: unreadable CSV: {exc}") from None
    return JoinTable(join.file, tuple(columns), rows)
