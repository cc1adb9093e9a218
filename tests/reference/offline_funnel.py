"""Funnel KPIs per month computed offline from the two public data sets, by a route independent of kpimon.

This module deliberately imports nothing from ``schemas``, ``streams`` or ``alerts``: it reads the CSV files
with the standard library only, so that an integration test can replay the same rows through the real stream
processor and compare its per-month results with the figures returned here.

The data sets live in ``<repository root>/../shared/datasets`` (see :func:`datasets_dir`), read-only. Every
function takes that folder (the one holding ``crm-sales-opportunities/`` and ``olist-marketing-funnel/``).

Result shape
============
Both functions return a plain ``dict`` keyed by ``(kind, key, month)``:

- ``kind``: the group kind, a ``str``;
- ``key``: a ``tuple[str, ...]`` identifying the group within its kind (``()`` for ``"overall"``);
- ``month``: ``"YYYY-MM"``, the calendar month the events fall in (UTC for the CRM data set, local
  America/Sao_Paulo time for Olist).

A key is present only for a group and month with at least one counted event (a non-zero counter); any counter
of a present key that had no event that month is ``0``. Counts are ``int``, money is ``Decimal``, ratios and
durations are ``float`` (``None`` when undefined, see below).

:func:`sales_opportunities_by_month` (``crm-sales-opportunities``), kinds and keys:

- ``("overall", ())``, ``("team", (regional_office,))``, ``("rep", (regional_office, sales_agent))``.

and values (a :class:`SalesMonth`, a plain dict at run time)::

    {
        "opportunities_created": int,       # Engaging/Won/Lost rows, month of engage_date
        "deals_won": int,                   # Won rows, month of close_date
        "deals_lost": int,                  # Lost rows, month of close_date
        "revenue": Decimal,                 # sum of close_value of Won rows, month of close_date (exact)
        "cycle_samples": int,               # number of Won rows with a cycle sample (== deals_won)
        "win_rate": float | None,           # won / (won + lost)
        "opportunity_to_customer": float | None,  # won / opportunities_created (same month)
        "average_deal_size": Decimal | None,      # revenue / won, 28 significant digits, half-even
        "cycle_mean_seconds": float | None,       # mean of (close_date - engage_date) in seconds
        "cycle_p50_seconds": float | None,        # numpy-style 'linear' percentile, see percentile_linear
        "cycle_p90_seconds": float | None,
        "pipeline_velocity_per_day": float | None,
        # opportunities_created * average_deal_size * win_rate / (cycle_mean_seconds / 86400)
    }

:func:`olist_funnel_by_month` (``olist-marketing-funnel``), kinds and keys:

- ``("overall", ())``, ``("channel", (origin or "unknown",))``, ``("rep", (sr_id,))``.

and values (an :class:`OlistMonth`)::

    {
        "leads": int | None,                # MQL rows, local month of first_contact_date
        "mqls": int | None,                 # same rows (every MQL row is one lead and one MQL)
        "deals_won": int,                   # closed-deal rows, local month of won_date
        "lead_to_customer": float | None,   # deals_won / leads (same month)
    }

For ``"rep"`` groups only ``deals_won`` is defined (a lead has no rep): ``leads``, ``mqls`` and
``lead_to_customer`` are ``None`` there.

None rules
==========
A ratio is ``None`` when its denominator is 0: ``win_rate`` when won + lost == 0, ``opportunity_to_customer``
when opportunities_created == 0, ``average_deal_size`` and the cycle figures when deals_won == 0 (no samples),
``lead_to_customer`` when leads == 0. ``pipeline_velocity_per_day`` is ``None`` when any of its parts is ``None``
or the mean cycle is 0; it is ``0.0`` (not ``None``) when a month has wins but no opportunity created.

Exactness
=========
Money is summed as ``Decimal``. Every float is computed exactly with ``Fraction`` (or int / int true division,
which is correctly rounded) and rounded once, so it is the float nearest to the exact value; a route that
computes in floats step by step (e.g. numpy) can differ in the last few ulps, so compare with a relative
tolerance (1e-9 is plenty). The velocity uses the exact revenue / won, not the rounded ``average_deal_size``.

Input rules (anything else fails loudly with :class:`DatasetFormatError`, naming file and line)
==========================================================================================
CRM: ``deal_stage`` is one of Prospecting, Engaging, Won, Lost. Prospecting rows must have no dates (they are
ignored). Engaging rows need an engage_date and no close_date / close_value. Won and Lost rows need both dates;
Won rows a close_value (a non-negative decimal number). Dates are ``M/D/YYYY`` taken as UTC midnight. The agent
of every used row must be in sales_teams.csv.

Olist: ``first_contact_date`` is ``M/D/YYYY`` (local midnight); ``won_date`` is ``DD-MM-YYYY HH:MM`` (local
wall-clock time), both in America/Sao_Paulo; this copy holds no other format (the original Kaggle files used
ISO dates; those are rejected, not guessed). ``mql_id`` is unique in the MQL file, every closed deal joins an
MQL, and ``sr_id`` is not empty. Local times are converted to an instant with ``zoneinfo`` (``fold=0``) and
back; the local calendar date must survive the round trip. The midnight that does not exist at the start of
Brazilian summer time (2017-10-15 00:00 local) becomes 01:00 local the same day: same month either way.
Note that a local month differs from the UTC month for late evenings on a month's last day (e.g. a deal won
``28-02-2018 22:17`` local is 2018-03-01 01:17 UTC): those rows count in the local month.

Run ``python -m tests.reference.offline_funnel`` from the repository root to print row counts and a few
overall months.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Final, TypedDict
from zoneinfo import ZoneInfo

__all__ = [
    "CRM_DIR",
    "OLIST_DIR",
    "SAO_PAULO",
    "DatasetFormatError",
    "GroupKey",
    "OlistMonth",
    "SalesMonth",
    "datasets_dir",
    "olist_funnel_by_month",
    "percentile_linear",
    "sales_opportunities_by_month",
]

CRM_DIR: Final = "crm-sales-opportunities"
OLIST_DIR: Final = "olist-marketing-funnel"
SAO_PAULO: Final = ZoneInfo("America/Sao_Paulo")
SECONDS_PER_DAY: Final = 86400
MONEY_CONTEXT: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
P50: Final = Fraction(1, 2)
P90: Final = Fraction(9, 10)

GroupKey = tuple[str, tuple[str, ...], str]
"""``(kind, key, "YYYY-MM")``."""


class SalesMonth(TypedDict):
    """Counters and KPIs of one CRM group in one month (see the module docstring)."""

    opportunities_created: int
    deals_won: int
    deals_lost: int
    revenue: Decimal
    cycle_samples: int
    win_rate: float | None
    opportunity_to_customer: float | None
    average_deal_size: Decimal | None
    cycle_mean_seconds: float | None
    cycle_p50_seconds: float | None
    cycle_p90_seconds: float | None
    pipeline_velocity_per_day: float | None


class OlistMonth(TypedDict):
    """Counters and KPIs of one Olist group in one month (see the module docstring)."""

    leads: int | None
    mqls: int | None
    deals_won: int
    lead_to_customer: float | None


class DatasetFormatError(ValueError):
    """A data set row that does not match the formats this module knows."""


def datasets_dir(repo_root: Path | None = None) -> Path:
    """The public data sets folder, ``<repository root>/../shared/datasets``; raises if it is absent.

    ``repo_root`` defaults to the repository holding this file (``tests/reference/`` -> two levels up).
    """
    root = Path(__file__).resolve().parents[2] if repo_root is None else repo_root.resolve()
    path = root.parent / "shared" / "datasets"
    if not path.is_dir():
        raise FileNotFoundError(
            f"public data sets not found: {path} (expected <repository root>/../shared/datasets, "
            f"holding {CRM_DIR}/ and {OLIST_DIR}/)"
        )
    return path


# -- reading -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    where: str  # "file.csv:line" for error messages
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values[column]

    def fail(self, message: str) -> DatasetFormatError:
        return DatasetFormatError(f"{self.where}: {message}")


def _read_csv(path: Path, required: Sequence[str]) -> Iterator[_Row]:
    if not path.is_file():
        raise FileNotFoundError(f"data set file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DatasetFormatError(f"{path.name}: empty file, expected a header row")
        missing = [column for column in required if column not in header]
        if missing or len(set(header)) != len(header):
            raise DatasetFormatError(f"{path.name}:1: header {header} lacks {missing} or repeats a column")
        for cells in reader:
            where = f"{path.name}:{reader.line_num}"
            if len(cells) != len(header):
                raise DatasetFormatError(f"{where}: {len(cells)} fields, the header has {len(header)}")
            yield _Row(where, dict(zip(header, cells, strict=True)))


_US_DATE: Final = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_OLIST_WON: Final = re.compile(r"(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2})")
_AMOUNT: Final = re.compile(r"\d+(\.\d+)?")


def _us_date(row: _Row, column: str) -> date:
    text = row[column]
    match = _US_DATE.fullmatch(text)
    if match is None:
        raise row.fail(f"{column}={text!r} is not M/D/YYYY")
    month, day, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError as error:
        raise row.fail(f"{column}={text!r}: {error}") from None


def _olist_won(row: _Row, column: str) -> datetime:
    text = row[column]
    match = _OLIST_WON.fullmatch(text)
    if match is None:
        raise row.fail(f"{column}={text!r} is not DD-MM-YYYY HH:MM")
    day, month, year, hour, minute = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute)
    except ValueError as error:
        raise row.fail(f"{column}={text!r}: {error}") from None


def _month_at(row: _Row, wall_clock: datetime, zone: tzinfo) -> str:
    """The month of a wall-clock time in ``zone``, via the instant it denotes (fold=0) and back."""
    instant = wall_clock.replace(tzinfo=zone, fold=0).astimezone(UTC)
    local = instant.astimezone(zone)
    if local.date() != wall_clock.date():
        raise row.fail(f"{wall_clock} in {zone} maps to {local}, another calendar day")
    return f"{local.year:04d}-{local.month:02d}"


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- numbers -----------------------------------------------------------------------------------------------------


def percentile_linear(samples: Iterable[int | float | Fraction], p: Fraction) -> float:
    """numpy's default ('linear') percentile, computed exactly and rounded once.

    Sort x; h = (n - 1) * p; v = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]); for n == 1 (or
    h == n - 1) the value x[floor(h)] itself. ``p`` is a fraction in [0, 1] (e.g. ``Fraction(9, 10)``).
    """
    xs = sorted(Fraction(sample) for sample in samples)
    if not xs:
        raise ValueError("percentile of no samples")
    if not 0 <= p <= 1:
        raise ValueError(f"percentile fraction {p} outside [0, 1]")
    h = (len(xs) - 1) * p
    low = floor(h)
    if low + 1 >= len(xs):
        return float(xs[low])
    return float(xs[low] + (h - low) * (xs[low + 1] - xs[low]))


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


# -- A. crm-sales-opportunities ----------------------------------------------------------------------------------


_STAGES: Final = frozenset({"Prospecting", "Engaging", "Won", "Lost"})


@dataclass
class _SalesCounts:
    created: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = Decimal(0)
    cycles: list[int] = field(default_factory=list)


def _teams(crm: Path) -> dict[str, str]:
    teams: dict[str, str] = {}
    for row in _read_csv(crm / "sales_teams.csv", ("sales_agent", "regional_office")):
        agent, office = row["sales_agent"], row["regional_office"]
        if not agent or not office:
            raise row.fail("empty sales_agent or regional_office")
        if agent in teams:
            raise row.fail(f"agent {agent!r} listed twice")
        teams[agent] = office
    return teams


def _sales_groups(team: str, rep: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("overall", ()), ("team", (team,)), ("rep", (team, rep)))


def _sales_month(counts: _SalesCounts) -> SalesMonth:
    won, lost, created, cycles = counts.won, counts.lost, counts.created, counts.cycles
    if len(cycles) != won:
        raise AssertionError(f"{len(cycles)} cycle samples for {won} won deals")
    win_rate = _ratio(won, won + lost)
    average = None if won == 0 else MONEY_CONTEXT.divide(counts.revenue, Decimal(won))
    cycle_mean = _ratio(sum(cycles), len(cycles))
    velocity: float | None = None
    if won > 0 and win_rate is not None and sum(cycles) != 0:
        exact_average = Fraction(counts.revenue) / won
        exact_cycle_days = Fraction(sum(cycles), len(cycles)) / SECONDS_PER_DAY
        velocity = float(created * exact_average * Fraction(won, won + lost) / exact_cycle_days)
    return SalesMonth(
        opportunities_created=created,
        deals_won=won,
        deals_lost=lost,
        revenue=counts.revenue,
        cycle_samples=len(cycles),
        win_rate=win_rate,
        opportunity_to_customer=_ratio(won, created),
        average_deal_size=average,
        cycle_mean_seconds=cycle_mean,
        cycle_p50_seconds=percentile_linear(cycles, P50) if cycles else None,
        cycle_p90_seconds=percentile_linear(cycles, P90) if cycles else None,
        pipeline_velocity_per_day=velocity,
    )


def sales_opportunities_by_month(datasets_dir: Path) -> dict[GroupKey, SalesMonth]:
    """Per (kind, key, UTC month) counters and KPIs of ``crm-sales-opportunities`` (see the module docstring)."""
    crm = datasets_dir / CRM_DIR
    teams = _teams(crm)
    counts: defaultdict[GroupKey, _SalesCounts] = defaultdict(_SalesCounts)
    seen_ids: set[str] = set()
    columns = ("opportunity_id", "sales_agent", "deal_stage", "engage_date", "close_date", "close_value")
    for row in _read_csv(crm / "sales_pipeline.csv", columns):
        stage = row["deal_stage"]
        if stage not in _STAGES:
            raise row.fail(f"unknown deal_stage {stage!r}")
        if row["opportunity_id"] in seen_ids:
            raise row.fail(f"opportunity_id {row['opportunity_id']!r} repeated")
        seen_ids.add(row["opportunity_id"])
        if stage == "Prospecting":
            if row["engage_date"] or row["close_date"]:
                raise row.fail("a Prospecting row with dates: this module assumes they have none")
            continue
        rep = row["sales_agent"]
        team = teams.get(rep)
        if team is None:
            raise row.fail(f"sales_agent {rep!r} is not in sales_teams.csv")
        groups = _sales_groups(team, rep)
        engaged = _utc_midnight(_us_date(row, "engage_date"))
        created_month = f"{engaged.year:04d}-{engaged.month:02d}"
        for kind, key in groups:
            counts[kind, key, created_month].created += 1
        if stage == "Engaging":
            if row["close_date"] or row["close_value"]:
                raise row.fail("an Engaging row with a close_date or close_value")
            continue
        closed = _utc_midnight(_us_date(row, "close_date"))
        closed_month = f"{closed.year:04d}-{closed.month:02d}"
        if stage == "Lost":
            for kind, key in groups:
                counts[kind, key, closed_month].lost += 1
            continue
        amount_text = row["close_value"]
        if _AMOUNT.fullmatch(amount_text) is None:
            raise row.fail(f"close_value={amount_text!r} is not a non-negative decimal number")
        try:
            amount = Decimal(amount_text)
        except InvalidOperation:  # pragma: no cover - the pattern already rules it out
            raise row.fail(f"close_value={amount_text!r} is not a decimal number") from None
        cycle = closed - engaged
        if cycle < timedelta(0):
            raise row.fail("close_date before engage_date")
        cycle_seconds = int(cycle.total_seconds())
        for kind, key in groups:
            group = counts[kind, key, closed_month]
            group.won += 1
            group.revenue += amount
            group.cycles.append(cycle_seconds)
    return {group_key: _sales_month(group) for group_key, group in sorted(counts.items())}


# -- B. olist-marketing-funnel -----------------------------------------------------------------------------------


@dataclass
class _OlistCounts:
    leads: int = 0
    won: int = 0


def olist_funnel_by_month(datasets_dir: Path) -> dict[GroupKey, OlistMonth]:
    """Per (kind, key, local month) counters and KPIs of ``olist-marketing-funnel`` (see the module docstring)."""
    olist = datasets_dir / OLIST_DIR
    channels: dict[str, str] = {}
    counts: defaultdict[GroupKey, _OlistCounts] = defaultdict(_OlistCounts)
    mql_columns = ("mql_id", "first_contact_date", "origin")
    for row in _read_csv(olist / "olist_marketing_qualified_leads_dataset.csv", mql_columns):
        mql_id = row["mql_id"]
        if not mql_id or mql_id in channels:
            raise row.fail(f"mql_id {mql_id!r} empty or repeated")
        channel = row["origin"] or "unknown"
        channels[mql_id] = channel
        contacted = _us_date(row, "first_contact_date")
        month = _month_at(row, datetime(contacted.year, contacted.month, contacted.day), SAO_PAULO)
        for kind, key in (("overall", ()), ("channel", (channel,))):
            counts[kind, key, month].leads += 1
    deal_columns = ("mql_id", "sr_id", "won_date")
    seen_deals: set[str] = set()
    for row in _read_csv(olist / "olist_closed_deals_dataset.csv", deal_columns):
        mql_id, rep = row["mql_id"], row["sr_id"]
        channel_of_deal = channels.get(mql_id)
        if channel_of_deal is None:
            raise row.fail(f"closed deal of mql_id {mql_id!r}, which is not in the MQL file")
        if mql_id in seen_deals:
            raise row.fail(f"a second closed deal for mql_id {mql_id!r}")
        seen_deals.add(mql_id)
        if not rep:
            raise row.fail("empty sr_id")
        month = _month_at(row, _olist_won(row, "won_date"), SAO_PAULO)
        for kind, key in (("overall", ()), ("channel", (channel_of_deal,)), ("rep", (rep,))):
            counts[kind, key, month].won += 1
    result: dict[GroupKey, OlistMonth] = {}
    for group_key, group in sorted(counts.items()):
        if group_key[0] == "rep":
            result[group_key] = OlistMonth(leads=None, mqls=None, deals_won=group.won, lead_to_customer=None)
        else:
            result[group_key] = OlistMonth(
                leads=group.leads,
                mqls=group.leads,
                deals_won=group.won,
                lead_to_customer=_ratio(group.won, group.leads),
            )
    return result


# -- a summary for cross-checking by hand ------------------------------------------------------------------------


def _summary(folder: Path) -> str:
    lines: list[str] = []
    stages: defaultdict[str, int] = defaultdict(int)
    with (folder / CRM_DIR / "sales_pipeline.csv").open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            stages[record["deal_stage"]] += 1
    lines.append(f"{CRM_DIR}: rows by stage {dict(sorted(stages.items()))} (Prospecting ignored)")
    sales = sales_opportunities_by_month(folder)
    lines.append("month    created won lost revenue  win_rate otc    avg_deal  cycle_mean_d p50_d  p90_d  velocity/d")
    for (kind, _, month), s in sales.items():
        if kind != "overall":
            continue
        lines.append(
            f"{month}  {s['opportunities_created']:7d} {s['deals_won']:3d} {s['deals_lost']:4d} {s['revenue']!s:8} "
            f"{_fmt(s['win_rate'])} {_fmt(s['opportunity_to_customer'])} {_fmt(s['average_deal_size'], 2)} "
            f"{_fmt(_days(s['cycle_mean_seconds']))} {_fmt(_days(s['cycle_p50_seconds']))} "
            f"{_fmt(_days(s['cycle_p90_seconds']))} {_fmt(s['pipeline_velocity_per_day'], 2)}"
        )
    olist = olist_funnel_by_month(folder)
    lines.append(f"{OLIST_DIR}:")
    lines.append("month    leads won lead_to_customer")
    for (kind, _, month), o in olist.items():
        if kind == "overall":
            lines.append(f"{month}  {o['leads']!s:5} {o['deals_won']:3d} {_fmt(o['lead_to_customer'])}")
    return "\n".join(lines)


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_DAY


def _fmt(value: float | Decimal | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    print(_summary(datasets_dir()))
