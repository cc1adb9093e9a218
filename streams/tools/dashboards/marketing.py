"""The marketing dashboard (``kpimon-marketing``): activity, spend and its return (CPL, CAC,
ROMI, attributed revenue), email and web engagement, per channel and campaign."""

from __future__ import annotations

from typing import Any

from schemas.catalog import Catalog
from streams.tools.dashboards._sdk import Builder, models
from streams.tools.dashboards.kpi_panels import KpiPanels
from streams.tools.dashboards.layout import dashboard_link, lay_out, to_dict, windowed_dashboard
from streams.tools.dashboards.panels import CURRENCY
from streams.tools.dashboards.queries import Selector
from streams.tools.dashboards.variables import label_variable, series_of

SPEND_AND_RETURN = ("marketing_spend", "cost_per_lead", "cost_per_mql", "customer_acquisition_cost", "romi")
ENGAGEMENT = ("email_open_rate", "email_click_through_rate", "web_sessions", "web_bounce_rate")
SPEND_BY_SOURCE = (
    "marketing_spend",
    "leads",
    "cost_per_lead",
    "cost_per_mql",
    "attributed_revenue_first",
    "attributed_revenue_last",
    "attributed_revenue_linear",
    "romi",
)
WEB_BY_CHANNEL = (
    "web_sessions",
    "web_pageviews",
    "pages_per_session",
    "average_session_duration",
    "web_bounce_rate",
    "web_bot_sessions",
)
EMAIL_BY_CAMPAIGN = (
    "email_campaign_sends",
    "email_deliveries",
    "email_open_rate",
    "email_click_through_rate",
    "email_click_to_open_rate",
    "email_bounce_rate",
    "email_unsubscribe_rate",
    "email_conversion_rate",
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

    def by_source(title: str, selector: Selector) -> Any:
        """Spend, leads, their costs and the revenue attributed by each model, per channel or campaign."""
        label = selector.scope
        kpi_ids = [k for k in SPEND_BY_SOURCE if label in panels.kpi(k).scopes]
        keys = ((label, label.capitalize()),)
        return panels.breakdown_table(title, kpi_ids, selector, keys, sort=panels.kpi("romi").name)

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
                "Spend and return · $window",
                5,
                [
                    (width, panels.kpi_stat(k, overall, f"{panels.kpi(k).name} · $window"))
                    for width, k in zip((5, 5, 5, 5, 4), SPEND_AND_RETURN, strict=True)
                ],
            ),
            (
                "Email and web · $window",
                5,
                [(6, panels.kpi_stat(k, overall, f"{panels.kpi(k).name} · $window")) for k in ENGAGEMENT],
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
            ("Spend and return by channel", 9, [(24, by_source("Spend and return by channel · $window", channel))]),
            (
                "",
                9,
                [
                    (
                        24,
                        panels.breakdown_table(
                            "Web traffic by channel · $window",
                            [k for k in WEB_BY_CHANNEL if "channel" in panels.kpi(k).scopes],
                            channel,
                            (("channel", "Channel"),),
                            sort=panels.kpi("web_sessions").name,
                        ),
                    )
                ],
            ),
            (
                "Email and spend by campaign",
                9,
                [
                    (
                        24,
                        panels.breakdown_table(
                            "Email campaigns · $window",
                            EMAIL_BY_CAMPAIGN,
                            campaign,
                            (("campaign", "Campaign"),),
                            sort=panels.kpi("email_campaign_sends").name,
                        ),
                    )
                ],
            ),
            ("", 9, [(24, by_source("Spend and return by campaign · $window", campaign))]),
        ],
    )
    return to_dict(dashboard)
