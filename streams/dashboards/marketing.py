"""The marketing dashboard (``kpimon-marketing``): the marketing activity the worker exports
today, the funnel per campaign, and a text panel naming the panels that come with the marketing KPIs.

Only metrics a worker exports are queried (``docs/metrics.md``): no panel refers to the marketing
KPIs of a later issue (cost per lead, CAC, ROMI, open rate, CTR, web sessions).
"""

from __future__ import annotations

from typing import Any

from schemas.catalog import Catalog
from streams.dashboards._sdk import Builder, TextMode, models, text
from streams.dashboards.kpi_panels import KpiPanels
from streams.dashboards.layout import dashboard_link, lay_out, to_dict, windowed_dashboard
from streams.dashboards.panels import CURRENCY
from streams.dashboards.queries import Selector
from streams.dashboards.variables import label_variable, series_of

COMING_WITH_MARKETING_KPIS = (
    "Cost per lead (CPL)",
    "Customer acquisition cost (CAC)",
    "Return on marketing investment (ROMI)",
    "Email open rate",
    "Click-through rate (CTR)",
    "Web sessions",
)
MARKETING_ACTIVITY = ("content_published", "social_posts", "campaigns_launched", "email_campaign_sends")
MARKETING_LEADS = ("leads", "mqls", "lead_to_mql")
CAMPAIGN_FUNNEL = ("leads", "mqls", "opportunities_created", "deals_won", "revenue")


def marketing(catalog: Catalog, currency: str = CURRENCY) -> dict[str, Any]:
    panels = KpiPanels(catalog, currency)
    everything = (*MARKETING_ACTIVITY, *MARKETING_LEADS[:2])
    dashboard = windowed_dashboard(
        "marketing",
        "kpimon · Marketing",
        "Marketing activity and the leads it brings, per channel, campaign and team.",
        "1m",
        [panels.kpi(kpi_id) for kpi_id in (*MARKETING_ACTIVITY, *MARKETING_LEADS)],
    )
    dashboard.with_variable(label_variable("team", "Team", series_of(panels, everything, "team")))
    dashboard.with_variable(label_variable("channel", "Channel", series_of(panels, everything, "channel")))
    dashboard.with_variable(label_variable("campaign", "Campaign", series_of(panels, CAMPAIGN_FUNNEL, "campaign")))
    overall = Selector("$window", "all")
    channel = Selector("$window", "channel", (("channel", "$channel"),))
    team = Selector("$window", "team", (("team", "$team"),))
    campaign = Selector("$window", "campaign", (("campaign", "$campaign"),))
    by_channel = [kpi_id for kpi_id in MARKETING_ACTIVITY if "channel" in panels.kpi(kpi_id).scopes]
    coming = "\n".join(f"- {name}" for name in COMING_WITH_MARKETING_KPIS)
    note = (
        text.Panel()
        .title("Coming with the marketing KPIs")
        .mode(TextMode.MARKDOWN)
        .content(
            "The worker does not export these yet. Their panels come here with the marketing KPIs, once they are "
            "in the catalog and `kpimon dashboards` has regenerated this dashboard:\n\n"
            f"{coming}\n\n"
            "Until then this dashboard shows only what `/metrics` serves today (see docs/metrics.md)."
        )
    )
    to_funnel: list[Builder[models.DashboardLink]] = [dashboard_link("Funnel", "funnel", "team", "channel")]
    lay_out(
        dashboard,
        [
            (
                "Overall · $window",
                6,
                [
                    (
                        12,
                        panels.multi_stat(
                            "Marketing activity · $window",
                            MARKETING_ACTIVITY,
                            overall,
                            "Content pieces, social posts and campaigns, and the recipients of email campaigns.",
                        ),
                    ),
                    (
                        6,
                        panels.multi_stat(
                            "Leads · $window", MARKETING_LEADS[:2], overall, "Leads created and leads that became MQLs."
                        ),
                    ),
                    (6, panels.kpi_stat("lead_to_mql", overall, "Lead → MQL · $window", links=to_funnel)),
                ],
            ),
            (
                "By channel",
                9,
                [
                    (8, panels.comparison(kpi_id, channel, f"{panels.kpi(kpi_id).name} by channel", "{{channel}}"))
                    for kpi_id in by_channel
                ],
            ),
            (
                "",
                9,
                [
                    (
                        12,
                        panels.breakdown_table(
                            "Leads and MQLs by channel · $window",
                            MARKETING_LEADS,
                            channel,
                            (("channel", "Channel"),),
                            sort=panels.kpi("leads").name,
                        ).links(to_funnel),
                    ),
                    (
                        12,
                        panels.breakdown_table(
                            "Marketing activity by team · $window", MARKETING_ACTIVITY, team, (("team", "Team"),)
                        ),
                    ),
                ],
            ),
            (
                "By campaign",
                9,
                [
                    (
                        24,
                        panels.breakdown_table(
                            "Funnel by campaign · $window",
                            CAMPAIGN_FUNNEL,
                            campaign,
                            (("campaign", "Campaign"),),
                            sort=panels.kpi("revenue").name,
                        ),
                    ),
                ],
            ),
            ("Marketing KPIs", 6, [(24, note)]),
        ],
    )
    return to_dict(dashboard)
