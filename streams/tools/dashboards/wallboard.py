"""The sales wallboard (``kpimon-wallboard``), for a TV in kiosk mode (``?kiosk``), 5 s refresh.

Today's activity per rep as % of pace to the rep's daily goal, a leaderboard, the teams' revenue
month to date against the pace to their monthly goals, win rate and lead -> opportunity for the
week, pipeline velocity over 30 days, and whether the numbers are live.

**Goals come from the config** (``goals:`` in kpimon.yaml), through the workers' ``kpimon_goal_expected``:
the value expected by now on the pace to each goal, in the scope's time zone, counting its working
hours and business days. No dashboard variable holds a goal. Bars are coloured by *pace*: the value
as a share of the expected one, under 80 % red, under 100 % amber, else green. A KPI with no daily
goal in the config shows no bars.
"""

from __future__ import annotations

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
from streams.tools.dashboards.queries import Selector, goal_expected_query
from streams.tools.dashboards.variables import label_variable

# The activity KPIs shown per rep against their daily goals (the config's goals on them, if any).
ACTIVITY_KPIS = ("calls", "emails_sent", "meetings_booked", "meetings_held", "demos_completed")


def wallboard(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = KpiPanels(catalog, currency)
    month, week, last_30d = Selector("month", "all"), Selector("week", "all"), Selector("30d", "all")
    reps = Selector("today", "rep", (("team", "$team"), ("rep", "$rep")))
    calls = panels.kpi("calls").metric
    dashboard = dashboard_shell(
        "wallboard",
        "kpimon · Sales wallboard",
        "For a TV: open with ?kiosk. Today's activity per rep against the config's daily goals, revenue against "
        "the teams' monthly goals, win rate, velocity.",
        "5s",
        "now-24h",
    )
    dashboard.with_variable(label_variable("team", "Team", f'{calls}{{scope="team"}}'))
    dashboard.with_variable(label_variable("rep", "Rep", f'{calls}{{scope="rep", team=~"$team"}}'))
    teams_month = Selector("month", "team", (("team", "$team"),))
    team_revenue = panels.query("revenue", teams_month)
    expected = goal_expected_query("revenue", "month", teams_month)
    revenue_pace = (
        stat.Panel()
        .title("Revenue vs goal · % of pace")
        .description(
            describe(
                "Revenue month to date of the teams shown that have a monthly revenue goal in the config, as a "
                "share of the revenue expected by now on the pace to those goals (kpimon_goal_expected: each goal "
                "times the share of the month gone in its team's time zone). Goals are the same on every worker "
                f"(max, exact). Under {PACE_AMBER:.0%} red, under {PACE_GREEN:.0%} amber; empty: no team goal.",
                team_revenue.note,
            )
        )
        .datasource(DATASOURCE)
        .with_target(panel_target(f"sum ({team_revenue.expr} and {expected}) / (sum ({expected}) > 0)", "A", "pace"))
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
        for width, kpi_id in zip((5, 5, 5, 5, 4), ACTIVITY_KPIS, strict=True)
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
                            list(ACTIVITY_KPIS),
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
