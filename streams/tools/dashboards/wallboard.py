"""The sales wallboard (``kpimon-wallboard``), for a TV in kiosk mode (``?kiosk``), 5 s refresh.

Today's activity per rep as % of pace to a daily goal, a leaderboard, revenue month to date
against a target, win rate and lead -> opportunity for the week, pipeline velocity over 30 days,
and whether the numbers are live.

**Goals and targets are not metrics yet.** Daily goals per rep (``daily_goal_<kpi id>``) and the
monthly revenue target (``revenue_target_month``) are text-box variables with defaults, to be fed
by targets later; they can be set per TV in the URL (``&var-daily_goal_calls=50``). Bars are
coloured by *pace*: the share of the goal expected by now, given the office's working hours
(``workday_start_hour``, ``workday_end_hour``, ``utc_offset_hours``), under 80 % red, under
100 % amber, else green.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.catalog import Catalog
from streams.tools.dashboards._sdk import Builder, common, models, stat
from streams.tools.dashboards.kpi_panels import KpiPanels
from streams.tools.dashboards.layout import dashboard_link, dashboard_shell, lay_out, to_dict
from streams.tools.dashboards.panels import (
    CURRENCY,
    DATASOURCE,
    PACE_AMBER,
    PACE_GREEN,
    PanelBuilder,
    describe,
    neutral_thresholds,
    pace_thresholds,
    panel_target,
    reduce_last,
)
from streams.tools.dashboards.queries import Selector
from streams.tools.dashboards.variables import label_variable, textbox

# Defaults of the goal variables, until targets feed them.
DAILY_GOALS: Mapping[str, int] = {
    "calls": 40,
    "emails_sent": 30,
    "meetings_booked": 4,
    "meetings_held": 3,
    "demos_completed": 2,
}
MONTHLY_REVENUE_TARGET = 100_000
WORKDAY = {"workday_start_hour": "9", "workday_end_hour": "17", "utc_offset_hours": "0"}
# Share of the calendar month gone (UTC), 1 % at least.
MONTH_PACE = "clamp((day_of_month() - 1 + hour() / 24) / days_in_month(), 0.01, 1)"


def wallboard(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = KpiPanels(catalog, currency)
    month, week, last_30d = Selector("month", "all"), Selector("week", "all"), Selector("30d", "all")
    reps = Selector("today", "rep", (("team", "$team"), ("rep", "$rep")))
    calls = panels.kpi("calls").metric
    dashboard = dashboard_shell(
        "wallboard",
        "kpimon · Sales wallboard",
        "For a TV: open with ?kiosk. Today's activity per rep against daily goals, revenue, win rate, velocity.",
        "5s",
        "now-24h",
    )
    dashboard.with_variable(label_variable("team", "Team", f'{calls}{{scope="team"}}'))
    dashboard.with_variable(label_variable("rep", "Rep", f'{calls}{{scope="rep", team=~"$team"}}'))
    for kpi_id, goal in DAILY_GOALS.items():
        dashboard.with_variable(
            textbox(
                f"daily_goal_{kpi_id}",
                f"Daily goal: {panels.kpi(kpi_id).name.lower()}",
                str(goal),
                "Per rep and day. A dashboard setting until targets feed it (set per TV with &var-NAME=VALUE).",
            )
        )
    dashboard.with_variable(
        textbox(
            "revenue_target_month",
            "Revenue target (month)",
            str(MONTHLY_REVENUE_TARGET),
            "The month's revenue target, in the reporting currency. A dashboard setting until targets feed it.",
        )
    )
    for name, default in WORKDAY.items():
        dashboard.with_variable(
            textbox(name, name.replace("_", " ").capitalize(), default, "The office's working day, for the pace.")
        )

    revenue = panels.query("revenue", month)
    revenue_pace = (
        stat.Panel()
        .title("Revenue vs target · % of pace")
        .description(
            describe(
                "Revenue month to date as a share of the target expected by now: $revenue_target_month times the "
                f"share of the calendar month gone (UTC). Under {PACE_AMBER:.0%} red, under {PACE_GREEN:.0%} amber.",
                revenue.note,
            )
        )
        .datasource(DATASOURCE)
        .with_target(panel_target(f"{revenue.expr} / ($revenue_target_month * scalar({MONTH_PACE}))", "A", "pace"))
        .unit("percentunit")
        .decimals(0)
        .thresholds(pace_thresholds(panels.kpi("revenue")))
        .reduce_options(reduce_last())
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE)
    )
    to_funnel: list[Builder[models.DashboardLink]] = [dashboard_link("Funnel", "funnel", "team", "rep")]
    pace_bars = [
        (width, panels.pace_bars(kpi_id, reps, f"{panels.kpi(kpi_id).name} today · % of pace"))
        for width, kpi_id in zip((5, 5, 5, 5, 4), DAILY_GOALS, strict=True)
    ]
    health_panels: list[PanelBuilder] = [
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(panel_target(expr, "A", title))
        .unit("short")
        .decimals(decimals)
        .thresholds(neutral_thresholds())
        .reduce_options(reduce_last())
        .graph_mode(common.BigValueGraphMode.AREA)
        for title, expr, decimals, description in (
            (
                "Events / s",
                "sum without (instance, pod, job, type) (rate(kpimon_events_total[5m]))",
                1,
                "Valid events counted per second, all types: 0 means no new data reaches the wallboard. "
                "Summed over workers: exact.",
            ),
            (
                "Consumer lag",
                "sum without (instance, pod, job, topic, partition) (kpimon_faust_consumer_lag_messages)",
                0,
                "Messages not yet processed, over every source partition: the numbers lag behind by that much. "
                "Summed over workers and partitions: exact.",
            ),
        )
    ]
    lay_out(
        dashboard,
        [
            (
                "",
                6,
                [
                    (5, panels.kpi_stat("revenue", month, "Revenue · month to date")),
                    (5, revenue_pace),
                    (5, panels.kpi_stat("win_rate", week, "Win rate · this week", links=to_funnel)),
                    (
                        5,
                        panels.kpi_stat("lead_to_opportunity", week, "Lead → opportunity · this week", links=to_funnel),
                    ),
                    (
                        4,
                        panels.kpi_stat(
                            "pipeline_velocity", last_30d, "Pipeline velocity · 30 d, per day", links=to_funnel
                        ),
                    ),
                ],
            ),
            ("", 12, pace_bars),
            (
                "",
                10,
                [
                    (
                        18,
                        panels.breakdown_table(
                            "Leaderboard · today",
                            list(DAILY_GOALS),
                            reps,
                            (("rep", "Rep"), ("team", "Team")),
                            sort=panels.kpi("calls").name,
                        ),
                    ),
                    (3, health_panels[0]),
                    (3, health_panels[1]),
                ],
            ),
        ],
    )
    return to_dict(dashboard)
