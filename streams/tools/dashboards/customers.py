"""The customers dashboard (``kpimon-customers``): active customers, MRR and its movements, ARR, retention and
churn, revenue retention, unit economics (ARPA, gross margin, CLV, LTV:CAC, CAC payback) and survey scores
(NPS, CSAT, CES), overall and per team and channel."""

from __future__ import annotations

from typing import Any

from schemas.catalog import Catalog
from streams.tools.dashboards.kpi_panels import KpiPanels
from streams.tools.dashboards.layout import dashboard_link, lay_out, to_dict, windowed_dashboard
from streams.tools.dashboards.panels import CURRENCY
from streams.tools.dashboards.queries import Selector
from streams.tools.dashboards.variables import label_variable, series_of

CUSTOMER_COUNTS = ("customers_new", "customers_reactivated", "customers_churned")
MRR_MOVEMENTS = ("mrr_new", "mrr_reactivated", "mrr_expansion", "mrr_contraction", "mrr_churned", "mrr_net_change")
RETENTION = ("customer_retention_rate", "logo_churn_rate", "gross_revenue_retention", "net_revenue_retention")
UNIT_ECONOMICS = ("gross_margin", "customer_lifetime_value", "ltv_to_cac", "cac_payback")
UNIT_ECONOMICS_WINDOW = "30d"  # CLV and LTV:CAC take the churn rate of the last 30 days (a monthly rate)
SURVEYS = ("nps", "csat", "ces")
SURVEY_ANSWERS = ("nps_responses", "csat_responses", "ces_responses")
BY_SCOPE = (
    "customers",
    "mrr",
    "customers_new",
    "customers_churned",
    "customer_retention_rate",
    "net_revenue_retention",
)
SURVEYS_BY_SCOPE = ("nps", "nps_responses", "csat", "csat_responses", "ces", "ces_responses")


def customers(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = KpiPanels(catalog, currency)
    windowed = ("customers", "mrr", *CUSTOMER_COUNTS, *MRR_MOVEMENTS, *RETENTION, *SURVEYS)
    dashboard = windowed_dashboard(
        "customers",
        "kpimon · Customers",
        "Customers, MRR and its movements, retention, unit economics and survey scores, per team and channel.",
        "1m",
        [panels.kpi(kpi_id) for kpi_id in windowed],
    )
    dashboard.with_variable(label_variable("team", "Team", series_of(panels, ("customers",), "team")))
    dashboard.with_variable(label_variable("channel", "Channel", series_of(panels, ("customers",), "channel")))
    overall = Selector("$window", "all")
    last_30_days = Selector(UNIT_ECONOMICS_WINDOW, "all")
    team = Selector("$window", "team", (("team", "$team"),))
    channel = Selector("$window", "channel", (("channel", "$channel"),))
    to_marketing = [dashboard_link("Marketing: what acquiring them costs", "marketing", "team", "channel")]

    def stat(kpi_id: str, selector: Selector = overall, when: str = "$window") -> Any:
        return panels.kpi_stat(kpi_id, selector, f"{panels.kpi(kpi_id).name} · {when}")

    def table(title: str, kpi_ids: tuple[str, ...], selector: Selector) -> Any:
        label = selector.scope
        return panels.breakdown_table(
            title, kpi_ids, selector, ((label, label.capitalize()),), sort=panels.kpi(kpi_ids[0]).name
        )

    lay_out(
        dashboard,
        [
            (
                "Customers and MRR",
                6,
                [
                    (5, stat("customers", when="now")),
                    (5, stat("mrr", when="now")),
                    (5, stat("arr", when="now")),
                    (4, stat("arpa", when="now")),
                    (5, panels.multi_stat("Customers won and lost · $window", CUSTOMER_COUNTS, overall,
                                          "New, reactivated and churned customers in the window.")),
                ],
            ),
            (
                "MRR movements",
                7,
                [
                    (16, panels.multi_stat("MRR movements · $window", MRR_MOVEMENTS, overall,
                                           "The MRR movements of the window; they add up to its net change, MRR now "
                                           "less MRR at the window's start.")),
                    (8, stat("mrr_at_start")),
                ],
            ),
            ("Retention and churn · $window", 5, [(6, stat(kpi_id)) for kpi_id in RETENTION]),
            (
                "Unit economics · last 30 days",
                5,
                [(6, stat(kpi_id, last_30_days, "30d").links(to_marketing)) for kpi_id in UNIT_ECONOMICS],
            ),
            (
                "Surveys · $window",
                5,
                [
                    *((5, stat(kpi_id)) for kpi_id in SURVEYS),
                    (9, panels.multi_stat("Survey answers · $window", SURVEY_ANSWERS, overall,
                                          "Answers counted in the window: the sample size of each score.")),
                ],
            ),
            ("By team", 9, [(24, table("Customers by team · $window", BY_SCOPE, team))]),
            ("", 9, [(24, table("Customers by channel · $window", BY_SCOPE, channel))]),
            ("Surveys by team and channel", 9, [
                (12, table("Surveys by team · $window", SURVEYS_BY_SCOPE, team)),
                (12, table("Surveys by channel · $window", SURVEYS_BY_SCOPE, channel)),
            ]),
        ],
    )  # fmt: skip
    return to_dict(dashboard)
