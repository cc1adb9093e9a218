"""Customers, MRR and survey scores read straight from a subscription export and a survey export (the columns of
deploy/mappings/samples/), by a route independent of kpimon and of its mappings: no events, only the rows.

Like ``offline_funnel``, this module imports nothing from ``schemas``, ``streams`` or ``alerts``.

The rules, as a reader of the export would apply them
=====================================================
- A subscription pays from ``start_date`` until ``ended_at`` (no end: still paying) if its status is active,
  past_due, unpaid or canceled; trialing, incomplete, incomplete_expired and paused ones never paid. Its monthly
  price is ``amount`` (per ``interval``: month, or year / 12), converted at ``rates`` and rounded to the cent.
- An account is a customer while at least one of its subscriptions pays. Its first start is new, a start after a
  time with none paying is a reactivation, an end leaving none paying is a churn.
- MRR now: the monthly prices of the subscriptions paying now.
- Survey answers of ``[start, now]``: an account's answer is left out when the same account answered the same
  survey type again at most 30 days later; answers without an account always count. NPS = 100 x (answers of
  9-10 - answers of 0-6) / answers; CSAT = share of 4-5; CES = mean.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

__all__ = ["ExportFigures", "export_figures", "read_time"]

PAYING = {"active", "past_due", "unpaid", "canceled"}
MONTHS = {"month": 1, "year": 12}
REPLACE_SECONDS = 30 * 86_400


def read_time(text: str) -> float:
    """A cell like ``2026-01-10 09:00`` (UTC) as epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


@dataclass
class ExportFigures:
    customers: int = 0
    mrr_cents: int = 0
    new: int = 0
    reactivated: int = 0
    churned: int = 0
    scores: dict[str, list[int]] = field(default_factory=lambda: {"nps": [], "csat": [], "ces": []})

    def nps(self) -> float:
        answers = self.scores["nps"]
        return 100 * (sum(s >= 9 for s in answers) - sum(s <= 6 for s in answers)) / len(answers)

    def csat(self) -> float:
        return sum(s >= 4 for s in self.scores["csat"]) / len(self.scores["csat"])

    def ces(self) -> float:
        return sum(self.scores["ces"]) / len(self.scores["ces"])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _subscription_figures(path: Path, start: float, rates: dict[str, Decimal], figures: ExportFigures) -> None:
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in _rows(path):
        if row["status"] not in PAYING:
            continue
        begins = read_time(row["start_date"])
        ends = read_time(row["ended_at"]) if row["ended_at"] else float("inf")
        spans[row["customer"]].append((begins, ends))
        if ends == float("inf"):
            price = Decimal(row["amount"]) * rates[row["currency"]] * 100 / MONTHS[row["interval"]]
            figures.mrr_cents += round(price)
    for customer_spans in spans.values():
        # walk the starts and ends in time; count the changes between paying and not paying
        starts: list[tuple[float, int]] = [(at, +1) for at, _ in customer_spans]
        changes = sorted(starts + [(at, -1) for _, at in customer_spans if at != float("inf")])
        paying, ever = 0, False
        for at, step in changes:
            before, paying = paying, paying + step
            if before == 0 and paying > 0:
                if at >= start:
                    figures.reactivated += ever
                    figures.new += not ever
                ever = True
            elif before > 0 and paying == 0 and at >= start:
                figures.churned += 1
        figures.customers += paying > 0


def _survey_figures(path: Path, start: float, figures: ExportFigures) -> None:
    rows = sorted(_rows(path), key=lambda row: (read_time(row["submitted_at"]), row["response_id"]))
    for index, row in enumerate(rows):
        at = read_time(row["submitted_at"])
        if at < start:
            continue
        answered_again = any(
            later["account_id"] == row["account_id"]
            and later["survey_type"] == row["survey_type"]
            and read_time(later["submitted_at"]) - at <= REPLACE_SECONDS
            for later in rows[index + 1 :]
        )
        if row["account_id"] and answered_again:
            continue
        figures.scores[row["survey_type"]].append(int(row["score"]))


def export_figures(subscriptions: Path, surveys: Path, start: float, rates: dict[str, Decimal]) -> ExportFigures:
    """The figures of a window from ``start`` (epoch seconds) to now; every row is in the past."""
    figures = ExportFigures()
    _subscription_figures(subscriptions, start, rates, figures)
    _survey_figures(surveys, start, figures)
    return figures
