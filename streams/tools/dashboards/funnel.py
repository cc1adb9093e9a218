"""The funnel (``kpimon-funnel``): stage volumes, conversion ratios, sales cycle, average deal
size, revenue and velocity for a chosen window; the config's goals with their attainment and
period-end projections, and the open pipeline per CRM stage weighted by its win rate; by team,
channel and rep."""

from __future__ import annotations

from typing import Any

from schemas.catalog import Catalog
from streams.tools.dashboards._sdk import bargauge, builders, common, models
from streams.tools.dashboards.goals import goals_table, stages_table
from streams.tools.dashboards.kpi_panels import KpiPanels
from streams.tools.dashboards.layout import dashboard_link, lay_out, to_dict, windowed_dashboard
from streams.tools.dashboards.panels import CURRENCY, DATASOURCE, describe, panel_target, reduce_last, ref_letter
from streams.tools.dashboards.queries import Selector
from streams.tools.dashboards.variables import label_variable, series_of

FUNNEL_STAGES = ("leads", "mqls", "sqls", "opportunities_created", "deals_won", "deals_lost")
CONVERSIONS = ("lead_to_mql", "mql_to_sql", "lead_to_opportunity", "opportunity_to_customer", "win_rate")
DEAL_ECONOMICS = ("revenue", "average_deal_size", "sales_cycle", "pipeline_velocity")
FUNNEL_COLUMNS = (*FUNNEL_STAGES, "lead_to_opportunity", "win_rate", "revenue", "average_deal_size", "sales_cycle")


def funnel(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = KpiPanels(catalog, currency)
    dashboard = windowed_dashboard(
        "funnel",
        "kpimon · Funnel",
        "Lead -> MQL -> SQL -> opportunity -> won/lost: volumes, conversion, cycle and deal size per window.",
        "30s",
        [panels.kpi(kpi_id) for kpi_id in (*FUNNEL_STAGES, *CONVERSIONS, *DEAL_ECONOMICS)],
    )
    dashboard.with_variable(label_variable("team", "Team", series_of(panels, FUNNEL_STAGES, "team")))
    dashboard.with_variable(label_variable("rep", "Rep", f'{panels.kpi("leads").metric}{{scope="rep", team=~"$team"}}'))
    dashboard.with_variable(label_variable("channel", "Channel", series_of(panels, FUNNEL_STAGES, "channel")))
    overall = Selector("$window", "all")
    stage_queries = [panels.query(kpi_id, overall) for kpi_id in FUNNEL_STAGES]
    stages = (
        bargauge.Panel()
        .title("Stage volumes · $window")
        .description(describe("Each stage counted in the window (a period view, not a cohort).", stage_queries[0].note))
        .datasource(DATASOURCE)
        .unit(panels.unit(FUNNEL_STAGES[0]))
        .min(0)
        .color_scheme(builders.FieldColor().mode(models.FieldColorModeId.FIXED).fixed_color("blue"))
        .reduce_options(reduce_last())
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .orientation(common.VizOrientation.HORIZONTAL)
        .name_placement(common.BarGaugeNamePlacement.LEFT)
        .links([dashboard_link("Marketing: where the leads come from", "marketing", "team", "channel")])
    )
    for index, (kpi_id, query) in enumerate(zip(FUNNEL_STAGES, stage_queries, strict=True)):
        stages = stages.with_target(panel_target(query.expr, ref_letter(index), panels.kpi(kpi_id).name, instant=True))
    team = Selector("$window", "team", (("team", "$team"),))
    channel = Selector("$window", "channel", (("channel", "$channel"),))
    rep = Selector("$window", "rep", (("team", "$team"), ("rep", "$rep")))
    lay_out(
        dashboard,
        [
            (
                "Overall · $window",
                8,
                [
                    (10, stages),
                    (
                        14,
                        panels.multi_stat(
                            "Conversion · $window",
                            CONVERSIONS,
                            overall,
                            "Period ratios: each stage over the one before it, in the same window.",
                        ),
                    ),
                ],
            ),
            (
                "",
                5,
                [
                    (6, panels.kpi_stat("revenue", overall, "Revenue · $window")),
                    (6, panels.kpi_stat("average_deal_size", overall, "Average deal size · $window")),
                    (6, panels.kpi_stat("sales_cycle", overall, "Sales cycle (mean) · $window")),
                    (6, panels.kpi_stat("pipeline_velocity", overall, "Pipeline velocity · $window, per day")),
                ],
            ),
            (
                "Goals and forecast",
                8,
                [(24, goals_table((("team", "$team"), ("rep", "$rep"), ("channel", "$channel"))))],
            ),
            ("", 7, [(24, stages_table(panels.unit("revenue")))]),
            (
                "By team",
                8,
                [(24, panels.breakdown_table("Funnel by team · $window", FUNNEL_COLUMNS, team, (("team", "Team"),)))],
            ),
            (
                "By channel",
                8,
                [
                    (
                        24,
                        panels.breakdown_table(
                            "Funnel by channel · $window", FUNNEL_COLUMNS, channel, (("channel", "Channel"),)
                        ),
                    )
                ],
            ),
            (
                "By rep",
                10,
                [
                    (
                        24,
                        panels.breakdown_table(
                            "Funnel by rep · $window",
                            FUNNEL_COLUMNS,
                            rep,
                            (("rep", "Rep"), ("team", "Team")),
                            sort=panels.kpi("revenue").name,
                        ),
                    )
                ],
            ),
            (
                "Over time",
                8,
                [
                    (
                        12,
                        panels.trend(
                            "Stage volumes over time · $window",
                            FUNNEL_STAGES,
                            overall,
                            "Each point is the window's value at that time.",
                        ),
                    ),
                    (
                        12,
                        panels.trend(
                            "Conversion over time · $window",
                            CONVERSIONS,
                            overall,
                            "Each point is the window's value at that time.",
                        ),
                    ),
                ],
            ),
        ],
    )
    return to_dict(dashboard)
