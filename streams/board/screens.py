"""The board's screens as plain data, from Prometheus' summed results: what the page draws. Pure.

``board_screens`` turns the results of ``streams.board.queries.board_queries`` into the screens
the page renders: every tile carries its window, its numbers (``value``, for tests and bars)
and their text as shown (``text``). The page adds nothing but layout and the age of the data.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.calendar import period_elapsed
from schemas.config import KpimonConfig
from schemas.forecast import (
    WIN_RATE_WINDOW,
    goal_run_rate,
    run_rate_projection,
    weighted_pipeline_projection,
    win_rate,
)
from schemas.scopes import Scope
from streams.board import formatting
from streams.board.essentials import EssentialKpi, essentials_tile
from streams.board.goal_progress import Progress, goal_for, pace_word, progress_of
from streams.board.queries import ACTIVITY_KPIS, EMAIL_COUNTERS, FUNNEL_COUNTERS, MARKETING_COUNTERS, STAGE_OUTCOMES
from streams.board.ticker import RepKey, Win
from streams.board.views import BoardView, team_names

Sample = tuple[Mapping[str, str], float]
Results = Mapping[str, Sequence[Sample]]
Tile = dict[str, Any]
Screen = dict[str, Any]

ACTIVITY_LABELS = {"calls": "Calls", "emails_sent": "Emails", "meetings_booked": "Meetings", "demos_completed": "Demos"}
FUNNEL_LABELS = {"leads": "Leads", "mqls": "MQLs", "opportunities_created": "Opportunities", "deals_won": "Won"}
SCREEN_IDS = ("activity", "funnel", "revenue", "ticker", "marketing", "essentials")


@dataclass(frozen=True)
class BoardData:
    """What one refresh read (the query results, the ticker's wins so far), the config and the time of the read."""

    results: Results
    wins: Sequence[Win]
    config: KpimonConfig
    now: float
    essentials: Sequence[EssentialKpi] = ()  # the KPIs of the Essentials screen (``essential_kpis``)

    @property
    def currency(self) -> str:
        return self.config.reporting_currency

    @property
    def team_names(self) -> Mapping[str, str]:
        return team_names(self.config)


def total(results: Results, key: str) -> float | None:
    """The value of a ``sum(...)`` query: None when Prometheus has no series for it."""
    samples = results.get(key) or ()
    return samples[0][1] if samples else None


def per_rep(results: Results, key: str) -> dict[RepKey, float]:
    """The values of a ``sum by (team, rep)`` query."""
    return {(labels.get("team", ""), labels.get("rep", "")): value for labels, value in results.get(key) or ()}


def per_stage(results: Results, key: str) -> dict[str, float]:
    """The values of a ``sum by (stage)`` query."""
    return {labels.get("stage", ""): value for labels, value in results.get(key) or ()}


def _number(value: float | None, text: str) -> dict[str, Any]:
    return {"value": value, "text": text}


def _rep_progress(data: BoardData, team: str, rep: str, kpi: str, value: float | None) -> Progress | None:
    tz = data.config.timezone_of(team)
    goal = goal_for(data.config.goals, Scope(team=team, rep=rep), kpi, "day", data.now, tz)
    return progress_of(goal, value, data.now, tz)


def activity_screen(view: BoardView, data: BoardData) -> Screen:
    """The leaderboard: each rep's activity today; with daily goals, "value/target" and a bar for the first goal."""
    columns = [{"key": kpi, "label": ACTIVITY_LABELS[kpi]} for kpi in ACTIVITY_KPIS]
    values = {kpi: per_rep(data.results, f"activity:{kpi}") for kpi in ACTIVITY_KPIS}
    rows: list[dict[str, Any]] = []
    goal_label = None
    for rep, name, team in view.reps:
        cells, bar = [], None
        for kpi in ACTIVITY_KPIS:
            value = values[kpi].get((team, rep))
            progress = _rep_progress(data, team, rep, kpi, value)
            text = formatting.count(value if value is not None or progress is None else 0.0)
            if progress is not None:
                text = f"{text}/{formatting.count(progress.goal.target)}"
                if bar is None:
                    bar = progress
                    goal_label = goal_label or f"Goal: {ACTIVITY_LABELS[kpi].lower()} today"
            cells.append({**_number(value, text), "target": progress.goal.target if progress else None})
        rows.append(
            {
                "rep": rep,
                "name": name,
                "team": data.team_names.get(team, team),
                "cells": cells,
                "progress": None if bar is None else bar.as_json(f"{formatting.percent(bar.ratio)} {pace_word(bar)}"),
                "order": (-(bar.ratio if bar else -1.0), -sum(cell["value"] or 0.0 for cell in cells), name),
            }
        )
    rows.sort(key=lambda row: row.pop("order"))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    tile = {
        "id": "leaderboard",
        "kind": "leaderboard",
        "title": "Activity per rep",
        "window": f"today ({view.timezone})",
        "columns": columns,
        "rows": rows,
        "progress_label": goal_label,
    }
    return {"id": "activity", "title": "Activity today", "tiles": [tile]}


def funnel_screen(view: BoardView, data: BoardData) -> Screen:
    now = {counter: total(data.results, f"funnel:{counter}") for counter in FUNNEL_COUNTERS}
    before = {counter: total(data.results, f"funnel_last_week:{counter}") for counter in FUNNEL_COUNTERS}
    stages = [
        {"key": counter, "label": FUNNEL_LABELS[counter], **_number(now[counter], formatting.count(now[counter]))}
        for counter in FUNNEL_COUNTERS
    ]
    steps = []
    for upper, lower in itertools.pairwise(FUNNEL_COUNTERS):
        ratio = formatting.ratio_of(now[lower], now[upper])
        ratio_before = formatting.ratio_of(before[lower], before[upper])
        steps.append(
            {
                "key": f"{upper}_to_{lower}",
                "label": f"{FUNNEL_LABELS[upper]} → {FUNNEL_LABELS[lower]}",
                **_number(ratio, formatting.percent(ratio)),
                "change": formatting.change_points(ratio, ratio_before),
            }
        )
    tile = {
        "id": "funnel",
        "kind": "funnel",
        "title": f"Funnel, {view.title}",
        "window": "last 7 days (7d), change against the 7 days before",
        "stages": stages,
        "steps": steps,
    }
    return {"id": "funnel", "title": "Funnel", "tiles": [tile]}


def revenue_screen(view: BoardView, data: BoardData) -> Screen:
    revenue = total(data.results, "revenue:revenue")
    deals = total(data.results, "revenue:deals_won")
    pipeline = total(data.results, "revenue:open_pipeline_value")
    average = formatting.ratio_of(revenue, deals)
    tz = data.config.timezone_of(view.team or "")
    scope = Scope(team=view.team or "")
    progress = progress_of(goal_for(data.config.goals, scope, "revenue", "month", data.now, tz), revenue, data.now, tz)
    goal_tile = {
        "id": "revenue",
        "kind": "goal",
        "title": f"Revenue, {view.title}",
        "window": f"this month ({view.timezone})",
        **_number(revenue, formatting.money(revenue, data.currency)),
        "goal": None if progress is None else _revenue_goal(progress, data.currency),
    }
    goal = None if progress is None else progress.goal
    won = revenue or 0.0
    if goal is not None:  # the goal's working hours and business days
        run_rate = goal_run_rate(goal, won, data.now, tz)
    else:
        run_rate = run_rate_projection(won, period_elapsed("month", data.now, tz))
    won_30d, lost_30d = (
        total(data.results, f"win_history:{counter}") or 0.0 for counter in ("deals_won", "deals_lost")
    )
    rate = win_rate(won_30d, lost_30d)
    weighted = weighted_pipeline_projection(
        won,
        per_stage(data.results, "pipeline_stages:open_pipeline_value_by_stage"),
        *(per_stage(data.results, f"win_history_stages:{counter}") for counter in STAGE_OUTCOMES),
    )
    working_time = " (working time)" if goal is not None and (goal.hours or goal.business_days) else ""
    forecast_tile = {
        "id": "forecast",
        "kind": "stats",
        "title": "Projected by month end",
        "window": f"pace of this month so far{working_time}; open deals at their stage's {WIN_RATE_WINDOW} win rate",
        "items": [
            {"key": "run_rate", "label": "At this pace", **_projection(run_rate, "too early", data.currency)},
            {
                "key": "weighted_pipeline",
                "label": "Won + weighted pipeline",
                **_projection(weighted, "no deal closed", data.currency),
            },
            {"key": "win_rate", "label": f"Win rate, {WIN_RATE_WINDOW}", **_number(rate, formatting.percent(rate))},
        ],
    }
    stats_tile = {
        "id": "deals",
        "kind": "stats",
        "title": "Deals",
        "window": "this month; open pipeline now",
        "items": [
            {"key": "deals_won", "label": "Deals won", **_number(deals, formatting.count(deals))},
            {
                "key": "average_deal_size",
                "label": "Average deal",
                **_number(average, formatting.money(average, data.currency)),
            },
            {
                "key": "open_pipeline_value",
                "label": "Open pipeline",
                **_number(pipeline, formatting.money(pipeline, data.currency)),
            },
        ],
    }
    return {"id": "revenue", "title": "Revenue this month", "tiles": [goal_tile, stats_tile, forecast_tile]}


def _projection(value: float | None, missing: str, currency: str) -> dict[str, Any]:
    return _number(value, missing if value is None else formatting.money(value, currency))


def _revenue_goal(progress: Progress, currency: str) -> dict[str, Any]:
    target = formatting.money(progress.goal.target, currency)
    expected = formatting.money(progress.expected, currency)
    gap = formatting.money(abs(progress.value - progress.expected), currency)
    return progress.as_json(
        f"{formatting.percent(progress.ratio)} of {target}",
        f"Pace: {expected} by now; {pace_word(progress)} by {gap}",
    )


def win_text(win: Win, view: BoardView, data: BoardData, currency: str) -> str:
    name = view.rep_name(win.rep)
    team = data.team_names.get(win.team, win.team)
    deals = "a deal" if win.deals == 1 else f"{win.deals} deals"
    return f"{name} ({team}) won {deals}{' today' if win.earlier else ''}: {formatting.money(win.amount, currency)}"


def ticker_screen(view: BoardView, data: BoardData) -> Screen:
    deals = total(data.results, "wins_today_total:deals_won")
    revenue = total(data.results, "wins_today_total:revenue")
    tile = {
        "id": "ticker",
        "kind": "ticker",
        "title": "Deals won, new customers",
        "window": f"today ({view.timezone})",
        "items": [
            {"key": "deals_won", "label": "New customers today", **_number(deals, formatting.count(deals))},
            {"key": "revenue", "label": "Won today", **_number(revenue, formatting.money(revenue, data.currency))},
        ],
        "entries": [
            {"at": None if win.earlier else win.at, "text": win_text(win, view, data, data.currency)}
            for win in data.wins
        ],
    }
    return {"id": "ticker", "title": "Deals won", "tiles": [tile]}


def marketing_screen(data: BoardData) -> Screen:
    def value(key: str) -> float | None:
        return total(data.results, key)

    spend, leads, attributed = (value(f"marketing:{key}") for key in MARKETING_COUNTERS)
    cost_per_lead = formatting.ratio_of(spend, leads)
    romi = formatting.ratio_of(None if attributed is None or spend is None else attributed - spend, spend)
    money_tile = {
        "id": "spend",
        "kind": "stats",
        "title": "Marketing, all teams",
        "window": f"this month ({data.config.timezone})",
        "items": [
            {"key": "marketing_spend", "label": "Spend", **_number(spend, formatting.money(spend, data.currency))},
            {
                "key": "cost_per_lead",
                "label": "Cost per lead",
                **_number(cost_per_lead, formatting.money(cost_per_lead, data.currency)),
            },
            {"key": "romi", "label": "ROMI", **_number(romi, formatting.percent(romi))},
        ],
    }
    sends, deliveries, opens, clicks, bounces, unsubscribes = (value(f"email:{key}") for key in EMAIL_COUNTERS)
    rates = (
        ("email_open", "Open rate", formatting.ratio_of(opens, deliveries)),
        ("email_click_through", "Click-through", formatting.ratio_of(clicks, deliveries)),
        ("email_bounce", "Bounce rate", formatting.ratio_of(bounces, sends)),
        ("email_unsubscribe", "Unsubscribes", formatting.ratio_of(unsubscribes, deliveries)),
    )
    email_tile = {
        "id": "email",
        "kind": "stats",
        "title": "Email campaigns, all teams",
        "window": "last 30 days (30d)",
        "items": [
            {"key": key, "label": label, **_number(rate, formatting.percent(rate))} for key, label, rate in rates
        ],
    }
    return {"id": "marketing", "title": "Marketing", "tiles": [money_tile, email_tile]}


def board_screens(view: BoardView, data: BoardData) -> list[Screen]:
    """Every screen of ``view``, in the order the page rotates through them (``SCREEN_IDS``)."""
    return [
        activity_screen(view, data),
        funnel_screen(view, data),
        revenue_screen(view, data),
        ticker_screen(view, data),
        marketing_screen(data),
        essentials_screen(view, data),
    ]


def essentials_screen(view: BoardView, data: BoardData) -> Screen:
    """The ``essentials`` KPI set: company-wide, and per team (the board's team, or every team)."""
    teams = [(team, name) for team, name in data.team_names.items() if view.team in (None, team)]
    tile = essentials_tile(data.essentials, data.results, teams, data.currency, view.title)
    return {"id": "essentials", "title": "Essentials", "tiles": [tile]}
