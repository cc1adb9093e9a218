"""A source's webhook mapping (YAML): which payloads become which contract events. Pure.

The replay mapping language (``schemas.mapping``) applied to webhook payloads: each
record a source sends (one HubSpot event of a batch, one Segment call, one Pipedrive
webhook, one Salesforce notification) is flattened to named cells (``meta.action``,
``data.value``, ``properties.revenue``: nested keys joined by dots) and mapped like
a CSV row: events chosen by ``when`` conditions, fields from ``{cell}`` templates.
``ignore`` lists the records skipped on purpose (counted, not dead-lettered): each
item is a list of conditions, and a record is ignored when all of one item's hold.
Instead of joined CSV files, a mapping has ``lookups``, tables written in the mapping
itself: stage names to kpimon stages, owner ids to rep ids and teams. Example
(``deploy/gateway/mappings/hubspot.yaml``)::

    source: hubspot
    format: hubspot
    topic: crm
    lookups:
      owners:                       # a record's object.properties.hubspot_owner_id -> {owners.rep_id}, {owners.team}
        column: object.properties.hubspot_owner_id
        rows: {"7001": {rep_id: anna, team: emea}}
    fetch:                          # HubSpot only: the object read from its CRM API, as {object.properties.NAME}
      deal: {properties: [amount, deal_currency_code, hubspot_owner_id]}
    ignore:
      - {column: subscriptionType, one_of: [contact.deletion, deal.deletion]}
      - [{column: propertyName, equals: dealstage}, {column: stages.outcome, equals: open}]
    events:
      - type: deal.won
        when: [{column: subscriptionType, equals: deal.propertyChange}, {column: propertyValue, equals: closedwon}]
        event_id: "hubspot-{portalId}-{eventId}-{objectId}"
        occurred_at: "{occurredAt}"
        fields: {deal_id: "hubspot-deal-{objectId}", amount: "{object.properties.amount}", currency: USD}

``seconds_from_milliseconds`` derives cells in seconds (``call_seconds: object.properties.hs_call_duration``).
A lookup without ``optional: true`` makes a record whose key is not in it unmappable
(dead-lettered) when the record uses the lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.config import TimeZoneName
from schemas.events import Label
from schemas.mapping import ColumnName, Conditions, CsvMapping, EventSpec, Join, _valid_date_format
from schemas.row_mapping import JoinTable, RowMapper
from schemas.yaml_source import Location, load_yaml_model

SourceFormat = Literal["hubspot", "segment", "pipedrive", "salesforce", "salesforce_relay"]
TopicKind = Literal["crm", "marketing"]
LOOKUP_KEY = "key"
MAX_DEPTH = 8
MAX_CELLS = 2000
MAX_CELL_CHARS = 10_000

Cells = dict[str, str]


class Lookup(BaseModel):
    """A table in the mapping: the row whose key equals the record's ``column``; ``{name.field}`` reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    column: ColumnName
    rows: dict[str, dict[str, str]] = Field(min_length=1)
    optional: bool = False


PropertyName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$", max_length=100)]


class Fetch(BaseModel):
    """What HubSpot's CRM API is asked for an object of this type: its answer is flattened under ``object``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    properties: list[PropertyName] = Field(min_length=1)
    associations: list[PropertyName] = Field(default_factory=list)


class GatewayMapping(BaseModel):
    """A mapping file: how one source's records become events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Label
    format: SourceFormat
    topic: TopicKind = "crm"
    timezone: TimeZoneName = "UTC"
    date_formats: list[Annotated[str, AfterValidator(_valid_date_format)]] = Field(
        default=["%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"], min_length=1
    )
    lookups: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Lookup] = Field(default_factory=dict)
    fetch: dict[Annotated[str, Field(pattern=r"^[a-z_]+$")], Fetch] = Field(default_factory=dict)
    seconds_from_milliseconds: dict[ColumnName, ColumnName] = Field(default_factory=dict)
    ignore: list[Conditions] = Field(default_factory=list)
    events: list[EventSpec] = Field(min_length=1)

    def as_csv_mapping(self) -> CsvMapping:
        """The same mapping in the replay language: each lookup a join on a table named ``lookups.NAME``."""
        joins = {
            name: Join(file=f"lookups.{name}", key=LOOKUP_KEY, column=lookup.column, optional=lookup.optional)
            for name, lookup in self.lookups.items()
        }
        return CsvMapping(
            source=self.source,
            timezone=self.timezone,
            date_formats=self.date_formats,
            join=joins,
            events=self.events,
        )

    def tables(self) -> dict[str, JoinTable]:
        tables = {}
        for name, lookup in self.lookups.items():
            columns = tuple(dict.fromkeys(column for row in lookup.rows.values() for column in row))
            tables[name] = JoinTable(f"lookups.{name}", (LOOKUP_KEY, *columns), lookup.rows)
        return tables

    def problems(self) -> list[tuple[Location, str]]:
        """What validation of the fields alone cannot see: the events against the contract, fetch outside HubSpot."""
        problems = self.as_csv_mapping().contract_problems()
        if self.fetch and self.format != "hubspot":
            problems.append((("fetch",), "fetch reads HubSpot's CRM API: only a hubspot mapping may have it"))
        return problems


def load_gateway_mapping(path: Path) -> GatewayMapping:
    """Read and check a mapping file; raises ConfigFileError with ``file:line:col`` problems."""
    return load_yaml_model(path, GatewayMapping, cross_check=GatewayMapping.problems)


def flatten(value: Any, prefix: str = "", cells: Cells | None = None, depth: int = 0) -> Cells:
    """A JSON value as cells: nested keys joined by dots, list items by their index, scalars as text.

    Bounded: at most MAX_DEPTH levels, MAX_CELLS cells and MAX_CELL_CHARS characters a cell;
    what is beyond is left out (a mapping that needs it finds it empty).
    """
    cells = {} if cells is None else cells
    if len(cells) >= MAX_CELLS or depth > MAX_DEPTH:
        return cells
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        if prefix:
            cells[prefix] = _text(value)[:MAX_CELL_CHARS]
        return cells
    for key, item in items:
        flatten(item, f"{prefix}.{key}" if prefix else str(key), cells, depth + 1)
    return cells


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class RecordMapping:
    """What one record becomes: events (as JSON objects, not yet checked by the contract), or a problem, or skipped."""

    events: tuple[dict[str, Any], ...] = ()
    problem: str | None = None
    skipped: bool = False


class PayloadMapper:
    """A gateway mapping made ready for many records."""

    def __init__(self, mapping: GatewayMapping) -> None:
        self.mapping = mapping
        self._rows = RowMapper(mapping.as_csv_mapping(), mapping.tables())

    def value(self, cells: Mapping[str, str], name: str) -> str:
        """The cell ``name``, or ``lookup.field`` of the row a lookup finds (empty when it finds none)."""
        prefix, dot, field_name = name.partition(".")
        lookup = self.mapping.lookups.get(prefix) if dot else None
        if lookup is None:
            return cells.get(name, "").strip()
        return lookup.rows.get(cells.get(lookup.column, "").strip(), {}).get(field_name, "")

    def ignored(self, cells: Mapping[str, str]) -> bool:
        return any(
            all(condition.holds(self.value(cells, condition.column)) for condition in alternative)
            for alternative in self.mapping.ignore
        )

    def with_seconds(self, cells: Mapping[str, str]) -> dict[str, str]:
        """``cells`` and the cells ``seconds_from_milliseconds`` derives (empty when the source is no number)."""
        derived = dict(cells)
        for name, source in self.mapping.seconds_from_milliseconds.items():
            try:
                milliseconds = Decimal(cells.get(source, "").strip())
            except InvalidOperation:
                derived[name] = ""
                continue
            derived[name] = str(milliseconds / 1000) if milliseconds.is_finite() else ""
        return derived

    def map(self, cells: Mapping[str, str]) -> RecordMapping:
        cells = self.with_seconds(cells)
        if self.ignored(cells):
            return RecordMapping(skipped=True)
        mapped = self._rows.map(cells)
        if mapped.skipped:
            return RecordMapping(skipped=True)
        if mapped.problems:  # the replay language's words for the gateway's: its skip_when is our ignore
            problem = "; ".join(mapped.problems).replace("skip_when does not match", "no ignore item matches")
            return RecordMapping(problem=problem)
        return RecordMapping(events=tuple(event.event for event in mapped.events))
