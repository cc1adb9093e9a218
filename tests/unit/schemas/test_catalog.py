"""schemas.catalog: the built-in KPI catalog, its naming rules and user extensions."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.catalog import WINDOW_NAMES, Catalog, CatalogExtension, CounterSpec, KpiSpec, load_catalog
from schemas.formula import Formula
from schemas.scopes import SCOPE_KINDS
from schemas.yaml_source import ConfigFileError, load_yaml_model

FUNNEL_SCOPES = ("all", "team", "rep", "channel", "campaign")
WEB_SCOPES = ("all", "channel", "campaign")  # web traffic and spend: no team, no rep
EMAIL_SCOPES = ("all", "campaign")  # email engagement: per campaign
ATTRIBUTION_SCOPES = ("all", "channel", "campaign")  # attributed revenue and ROMI: per touch's channel and campaign
DELIVERIES = "(email_campaign_sends - email_bounces)"
CUSTOMERS_AT_START = "(stock_customers - customers_new - customers_reactivated + customers_churned)"
MRR_AT_START_OPEN = (
    "(stock_mrr_cents - mrr_new_cents - mrr_reactivated_cents - mrr_expansion_cents + mrr_contraction_cents"
    " + mrr_churned_cents"
)
MRR_AT_START = MRR_AT_START_OPEN + ")"
RETAINED = "(stock_customers - retention_activations + retention_churns)"
GROSS_PROFIT = (
    "(stock_costed_mrr_cents - stock_cost_cents + (stock_mrr_cents - stock_costed_mrr_cents) * configured_gross_margin)"
)
LOST = "(customers_churned - customers_new - customers_reactivated + retention_activations - retention_churns)"
CAC = "(marketing_spend + sales_spend) / deals_won"
BUILTIN_KPIS = {
    # id: (metric, formula, unit, scopes)
    "calls": ("kpimon_calls", "calls", "count", ("all", "team", "rep")),
    "call_connect_rate": ("kpimon_call_connect_ratio", "calls_connected / calls", "ratio", ("all", "team", "rep")),
    "call_duration": ("kpimon_call_duration_seconds", "call_duration_seconds", "seconds", ("all", "team", "rep")),
    "emails_sent": ("kpimon_emails_sent", "emails_sent", "count", ("all", "team", "rep")),
    "email_replies": ("kpimon_email_replies", "email_replies", "count", ("all", "team", "rep")),
    "email_response_rate": (
        "kpimon_email_response_ratio",
        "email_replies / emails_sent",
        "ratio",
        ("all", "team", "rep"),
    ),
    "meetings_booked": ("kpimon_meetings_booked", "meetings_booked", "count", ("all", "team", "rep")),
    "meetings_held": ("kpimon_meetings_held", "meetings_held", "count", ("all", "team", "rep")),
    "demos_completed": ("kpimon_demos_completed", "demos_completed", "count", ("all", "team", "rep")),
    "content_published": ("kpimon_content_published", "content_published", "count", ("all", "team", "channel")),
    "social_posts": ("kpimon_social_posts", "social_posts", "count", ("all", "team", "channel")),
    "campaigns_launched": (
        "kpimon_campaigns_launched",
        "campaigns_launched",
        "count",
        ("all", "team", "channel", "campaign"),
    ),
    "email_campaign_sends": (
        "kpimon_email_campaign_sends",
        "email_campaign_sends",
        "count",
        ("all", "team", "campaign"),
    ),
    "leads": ("kpimon_leads", "leads", "count", FUNNEL_SCOPES),
    "mqls": ("kpimon_mqls", "mqls", "count", FUNNEL_SCOPES),
    "sqls": ("kpimon_sqls", "sqls", "count", FUNNEL_SCOPES),
    "opportunities_created": ("kpimon_opportunities_created", "opportunities_created", "count", FUNNEL_SCOPES),
    "deals_won": ("kpimon_deals_won", "deals_won", "count", FUNNEL_SCOPES),
    "deals_lost": ("kpimon_deals_lost", "deals_lost", "count", FUNNEL_SCOPES),
    "lead_to_mql": ("kpimon_lead_to_mql_ratio", "mqls / leads", "ratio", FUNNEL_SCOPES),
    "mql_to_sql": ("kpimon_mql_to_sql_ratio", "sqls / mqls", "ratio", FUNNEL_SCOPES),
    "lead_to_opportunity": (
        "kpimon_lead_to_opportunity_ratio",
        "opportunities_created / leads",
        "ratio",
        FUNNEL_SCOPES,
    ),
    "lead_cohort_to_opportunity": (
        "kpimon_lead_cohort_to_opportunity_ratio",
        "cohort_opportunities / leads",
        "ratio",
        FUNNEL_SCOPES,
    ),
    "lead_cohort_to_customer": (
        "kpimon_lead_cohort_to_customer_ratio",
        "cohort_customers / leads",
        "ratio",
        FUNNEL_SCOPES,
    ),
    "opportunity_to_customer": (
        "kpimon_opportunity_to_customer_ratio",
        "deals_won / opportunities_created",
        "ratio",
        FUNNEL_SCOPES,
    ),
    "win_rate": ("kpimon_win_rate_ratio", "deals_won / (deals_won + deals_lost)", "ratio", FUNNEL_SCOPES),
    "revenue": ("kpimon_revenue", "revenue", "currency", FUNNEL_SCOPES),
    "average_deal_size": ("kpimon_average_deal_size", "revenue / deals_won", "currency", FUNNEL_SCOPES),
    "sales_cycle": ("kpimon_sales_cycle_seconds", "cycle_seconds / deals_won_timed", "seconds", FUNNEL_SCOPES),
    "deals_won_timed": ("kpimon_deals_won_timed", "deals_won_timed", "count", FUNNEL_SCOPES),
    "sales_cycle_total": ("kpimon_sales_cycle_total_seconds", "cycle_seconds", "seconds", FUNNEL_SCOPES),
    "pipeline_velocity": (
        "kpimon_pipeline_velocity_per_day",
        "opportunities_created * (revenue / deals_won) * (deals_won / (deals_won + deals_lost)) "
        "/ (cycle_seconds / deals_won_timed / 86400)",
        "currency_per_day",
        FUNNEL_SCOPES,
    ),
    # web traffic and spend
    "marketing_spend": ("kpimon_marketing_spend", "marketing_spend", "currency", WEB_SCOPES),
    "sales_spend": ("kpimon_sales_spend", "sales_spend", "currency", WEB_SCOPES),
    "cost_per_lead": ("kpimon_cost_per_lead", "marketing_spend / leads", "currency", WEB_SCOPES),
    "cost_per_mql": ("kpimon_cost_per_mql", "marketing_spend / mqls", "currency", WEB_SCOPES),
    "customer_acquisition_cost": (
        "kpimon_customer_acquisition_cost",
        "(marketing_spend + sales_spend) / deals_won",
        "currency",
        WEB_SCOPES,
    ),
    "web_sessions": ("kpimon_web_sessions", "web_sessions", "count", WEB_SCOPES),
    "web_pageviews": ("kpimon_web_pageviews", "web_pageviews", "count", WEB_SCOPES),
    "pages_per_session": ("kpimon_web_pages_per_session", "web_pageviews / web_sessions", "count", WEB_SCOPES),
    "average_session_duration": (
        "kpimon_web_session_duration_seconds",
        "web_session_seconds / web_sessions",
        "seconds",
        WEB_SCOPES,
    ),
    "web_session_duration_total": (
        "kpimon_web_session_duration_total_seconds",
        "web_session_seconds",
        "seconds",
        WEB_SCOPES,
    ),
    "web_bounce_rate": ("kpimon_web_bounce_ratio", "web_bounced_sessions / web_sessions", "ratio", WEB_SCOPES),
    "web_bounced_sessions": ("kpimon_web_bounced_sessions", "web_bounced_sessions", "count", WEB_SCOPES),
    "web_bot_sessions": ("kpimon_web_bot_sessions", "web_bot_sessions", "count", WEB_SCOPES),
    # email and attribution
    "email_unique_opens": ("kpimon_email_unique_opens", "email_unique_opens", "count", EMAIL_SCOPES),
    "email_unique_clicks": ("kpimon_email_unique_clicks", "email_unique_clicks", "count", EMAIL_SCOPES),
    "email_bounces": ("kpimon_email_bounces", "email_bounces", "count", EMAIL_SCOPES),
    "email_unsubscribes": ("kpimon_email_unsubscribes", "email_unsubscribes", "count", EMAIL_SCOPES),
    "email_deliveries": ("kpimon_email_deliveries", "email_campaign_sends - email_bounces", "count", EMAIL_SCOPES),
    "email_delivery_rate": (
        "kpimon_email_delivery_ratio",
        f"{DELIVERIES} / email_campaign_sends",
        "ratio",
        EMAIL_SCOPES,
    ),
    "email_open_rate": ("kpimon_email_open_ratio", f"email_unique_opens / {DELIVERIES}", "ratio", EMAIL_SCOPES),
    "email_click_through_rate": (
        "kpimon_email_click_through_ratio",
        f"email_unique_clicks / {DELIVERIES}",
        "ratio",
        EMAIL_SCOPES,
    ),
    "email_click_to_open_rate": (
        "kpimon_email_click_to_open_ratio",
        "email_unique_clicks / email_unique_opens",
        "ratio",
        EMAIL_SCOPES,
    ),
    "email_bounce_rate": ("kpimon_email_bounce_ratio", "email_bounces / email_campaign_sends", "ratio", EMAIL_SCOPES),
    "email_unsubscribe_rate": (
        "kpimon_email_unsubscribe_ratio",
        f"email_unsubscribes / {DELIVERIES}",
        "ratio",
        EMAIL_SCOPES,
    ),
    "email_leads": ("kpimon_email_leads", "email_leads", "count", EMAIL_SCOPES),
    "email_conversion_rate": (
        "kpimon_email_conversion_ratio",
        "email_leads / email_unique_clicks",
        "ratio",
        EMAIL_SCOPES,
    ),
    "attributed_revenue_first": (
        "kpimon_attributed_revenue_first",
        "attributed_revenue_first",
        "currency",
        ATTRIBUTION_SCOPES,
    ),
    "attributed_revenue_last": (
        "kpimon_attributed_revenue_last",
        "attributed_revenue_last",
        "currency",
        ATTRIBUTION_SCOPES,
    ),
    "attributed_revenue_linear": (
        "kpimon_attributed_revenue_linear",
        "attributed_revenue_linear",
        "currency",
        ATTRIBUTION_SCOPES,
    ),
    "romi": (
        "kpimon_romi_ratio",
        "(attributed_revenue_linear - marketing_spend) / marketing_spend",
        "ratio",
        ATTRIBUTION_SCOPES,
    ),
    # customers, subscriptions and surveys
    "customers": ("kpimon_customers", "stock_customers", "count", ("all", "team", "rep", "channel")),
    "customers_at_start": (
        "kpimon_customers_at_start",
        "(stock_customers - customers_new - customers_reactivated + customers_churned)",
        "count",
        ("all", "team", "rep", "channel"),
    ),
    "customers_new": ("kpimon_customers_new", "customers_new", "count", ("all", "team", "rep", "channel")),
    "customers_reactivated": (
        "kpimon_customers_reactivated",
        "customers_reactivated",
        "count",
        ("all", "team", "rep", "channel"),
    ),
    "customers_churned": ("kpimon_customers_churned", "customers_churned", "count", ("all", "team", "rep", "channel")),
    "mrr": ("kpimon_mrr", "stock_mrr_cents / 100", "currency", ("all", "team", "rep", "channel")),
    "arr": ("kpimon_arr", "12 * stock_mrr_cents / 100", "currency", ("all", "team", "rep", "channel")),
    "mrr_at_start": (
        "kpimon_mrr_at_start",
        f"{MRR_AT_START} / 100",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "mrr_new": ("kpimon_mrr_new", "mrr_new_cents / 100", "currency", ("all", "team", "rep", "channel")),
    "mrr_expansion": (
        "kpimon_mrr_expansion",
        "mrr_expansion_cents / 100",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "mrr_contraction": (
        "kpimon_mrr_contraction",
        "mrr_contraction_cents / 100",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "mrr_churned": ("kpimon_mrr_churned", "mrr_churned_cents / 100", "currency", ("all", "team", "rep", "channel")),
    "mrr_reactivated": (
        "kpimon_mrr_reactivated",
        "mrr_reactivated_cents / 100",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "mrr_net_change": (
        "kpimon_mrr_net_change",
        "(mrr_new_cents + mrr_reactivated_cents + mrr_expansion_cents - mrr_contraction_cents - mrr_churned_cents)"
        " / 100",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "customer_retention_rate": (
        "kpimon_customer_retention_ratio",
        f"{RETAINED} / {CUSTOMERS_AT_START}",
        "ratio",
        ("all", "team", "rep", "channel"),
    ),
    "logo_churn_rate": (
        "kpimon_logo_churn_ratio",
        "(customers_churned - customers_new - customers_reactivated + retention_activations - retention_churns)"
        f" / {CUSTOMERS_AT_START}",
        "ratio",
        ("all", "team", "rep", "channel"),
    ),
    "gross_revenue_retention": (
        "kpimon_gross_revenue_retention_ratio",
        f"{MRR_AT_START_OPEN} - mrr_contraction_cents - mrr_churned_cents) / {MRR_AT_START}",
        "ratio",
        ("all", "team", "rep", "channel"),
    ),
    "net_revenue_retention": (
        "kpimon_net_revenue_retention_ratio",
        f"(stock_mrr_cents - retention_activations_mrr_cents + retention_churns_mrr_cents) / {MRR_AT_START}",
        "ratio",
        ("all", "team", "rep", "channel"),
    ),
    "retained_customer_activations": (
        "kpimon_retained_customer_activations",
        "retention_activations",
        "count",
        ("all", "team", "rep", "channel"),
    ),
    "retained_customer_churns": (
        "kpimon_retained_customer_churns",
        "retention_churns",
        "count",
        ("all", "team", "rep", "channel"),
    ),
    "retained_customer_activations_mrr": (
        "kpimon_retained_customer_activations_mrr",
        "retention_activations_mrr_cents / 100",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "retained_customer_churns_mrr": (
        "kpimon_retained_customer_churns_mrr",
        "retention_churns_mrr_cents / 100",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "nps": (
        "kpimon_nps",
        "100 * (nps_promoters - nps_detractors) / nps_responses",
        "score",
        ("all", "team", "rep", "channel"),
    ),
    "nps_responses": ("kpimon_nps_responses", "nps_responses", "count", ("all", "team", "rep", "channel")),
    "csat": ("kpimon_csat_ratio", "csat_satisfied / csat_responses", "ratio", ("all", "team", "rep", "channel")),
    "csat_responses": ("kpimon_csat_responses", "csat_responses", "count", ("all", "team", "rep", "channel")),
    "ces": ("kpimon_ces", "ces_score_total / ces_responses", "score", ("all", "team", "rep", "channel")),
    "ces_responses": ("kpimon_ces_responses", "ces_responses", "count", ("all", "team", "rep", "channel")),
    "nps_promoters": ("kpimon_nps_promoters", "nps_promoters", "count", ("all", "team", "rep", "channel")),
    "nps_detractors": ("kpimon_nps_detractors", "nps_detractors", "count", ("all", "team", "rep", "channel")),
    "csat_satisfied": ("kpimon_csat_satisfied", "csat_satisfied", "count", ("all", "team", "rep", "channel")),
    "ces_points": ("kpimon_ces_points", "ces_score_total", "count", ("all", "team", "rep", "channel")),
    # unit economics
    "arpa": (
        "kpimon_average_revenue_per_account",
        "stock_mrr_cents / 100 / stock_customers",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "gross_margin": (
        "kpimon_gross_margin_ratio",
        f"{GROSS_PROFIT} / stock_mrr_cents",
        "ratio",
        ("all", "team", "rep", "channel"),
    ),
    "customer_lifetime_value": (
        "kpimon_customer_lifetime_value",
        f"{GROSS_PROFIT} / 100 / stock_customers / ({LOST} / at_least({CUSTOMERS_AT_START}, 20))",
        "currency",
        ("all", "team", "rep", "channel"),
    ),
    "ltv_to_cac": (
        "kpimon_ltv_to_cac_ratio",
        f"{GROSS_PROFIT} / 100 / stock_customers / ({LOST} / at_least({CUSTOMERS_AT_START}, 20)) / ({CAC})",
        "ratio",
        ("all", "channel"),
    ),
    "cac_payback": (
        "kpimon_cac_payback_months",
        f"({CAC}) / ({GROSS_PROFIT} / 100 / stock_customers)",
        "count",
        ("all", "channel"),
    ),
    "deal_profit_margin": (
        "kpimon_deal_profit_margin_ratio",
        "(revenue_costed - won_deal_costs) / revenue_costed",
        "ratio",
        ("all", "team", "rep", "channel", "campaign"),
    ),
}
BUILTIN_COUNTERS = {
    "calls": "call.logged",
    "calls_connected": "call.logged",
    "call_duration_seconds": "call.logged",
    "emails_sent": "email.sent",
    "email_replies": "email.replied",
    "meetings_booked": "meeting.booked",
    "meetings_held": "meeting.held",
    "demos_completed": "demo.completed",
    "content_published": "content.published",
    "social_posts": "social.posted",
    "campaigns_launched": "campaign.launched",
    "email_campaign_sends": "email_campaign.sent",
    "leads": "lead.created",
    "mqls": "lead.qualified",
    "sqls": "lead.qualified",
    "opportunities_created": "opportunity.created",
    "deals_won": "deal.won",
    "deals_lost": "deal.lost",
    "revenue": "deal.won",
    "deals_won_timed": "deal.won",
    "cycle_seconds": "deal.won",
    "cohort_opportunities": "lead.converted",
    "cohort_customers": "lead.converted",
    "revenue_costed": "deal.won",
    "won_deal_costs": "deal.won",
    # web traffic and spend
    "marketing_spend": "spend.recorded",
    "sales_spend": "spend.recorded",
    "web_sessions": "web.session",
    "web_pageviews": "web.session",
    "web_session_seconds": "web.session",
    "web_bounced_sessions": "web.session",
    "web_bot_sessions": "web.session",
    # email and attribution
    "email_unique_opens": "email.opened",
    "email_unique_clicks": "email.clicked",
    "email_bounces": "email.bounced",
    "email_unsubscribes": "email.unsubscribed",
    "email_leads": "lead.created",
    "attributed_revenue_first": "deal.won",
    "attributed_revenue_last": "deal.won",
    "attributed_revenue_linear": "deal.won",
    # customers and surveys
    "customers_new": "subscription.started",
    "customers_reactivated": "subscription.started",
    "customers_churned": "subscription.churned",
    "mrr_new_cents": "subscription.started",
    "mrr_reactivated_cents": "subscription.started",
    "mrr_expansion_cents": "subscription.changed",
    "mrr_contraction_cents": "subscription.changed",
    "mrr_churned_cents": "subscription.churned",
    "retention_activations": "subscription.started",
    "retention_churns": "subscription.churned",
    "retention_activations_mrr_cents": "subscription.started",
    "retention_churns_mrr_cents": "subscription.churned",
    "stock_customers": "subscription.started",
    "stock_mrr_cents": "subscription.started",
    "stock_costed_mrr_cents": "subscription.started",
    "stock_cost_cents": "subscription.started",
    "nps_responses": "survey.responded",
    "nps_promoters": "survey.responded",
    "nps_detractors": "survey.responded",
    "csat_responses": "survey.responded",
    "csat_satisfied": "survey.responded",
    "ces_responses": "survey.responded",
    "ces_score_total": "survey.responded",
    "configured_gross_margin": "config",
}

BUILTIN = load_catalog()
LEADS_COUNTER = "counters:\n  signups: {unit: signups, source: web.session, help: Signups created.}\n"


def kpi_yaml(kpi_id: str, metric: str, formula: str, unit: str = "count", extra: str = "") -> str:
    """One KPI list item, 9 lines (10 with `extra`): id on the item's first line, formula on its 6th."""
    return (
        f"  - id: {kpi_id}\n"
        f"    metric: {metric}\n"
        f"    name: {kpi_id.title()}\n"
        f"    kind: activity\n"
        f"    indicator: leading\n"
        f"    formula: {formula}\n"
        f"    unit: {unit}\n"
        f"    good: up\n"
        f"    description: Test KPI.\n"
        f"{extra}"
    )


def write(tmp_path: Path, text: str, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_catalog_loads() -> None:
    catalog = load_catalog()
    assert {counter: spec.source for counter, spec in catalog.counters.items()} == BUILTIN_COUNTERS
    assert {kpi.id: (kpi.metric, kpi.formula.source, kpi.unit, kpi.scopes) for kpi in catalog.kpis} == BUILTIN_KPIS
    assert [kpi.id for kpi in catalog.kpis] == list(BUILTIN_KPIS)  # file order is kept
    assert WINDOW_NAMES == ("1h", "24h", "7d", "30d", "today", "week", "month", "quarter")
    customer_counters = {name for name, spec in catalog.counters.items() if spec.source.startswith("subscription.")}
    customer_kpis = [kpi for kpi in catalog.kpis if kpi.formula.names & customer_counters]  # windows of a period
    assert all(kpi.windows == WINDOW_NAMES for kpi in catalog.kpis if kpi not in customer_kpis)
    assert all(set(kpi.windows) <= {"week", "30d", "month", "quarter"} for kpi in customer_kpis)


@pytest.mark.parametrize("kpi", BUILTIN.kpis, ids=lambda kpi: kpi.id)
def test_builtin_kpi_formula_references_known_counters(kpi: KpiSpec) -> None:
    assert kpi.formula.names
    assert kpi.formula.names <= BUILTIN.counters.keys()


@pytest.mark.parametrize("kpi", BUILTIN.kpis, ids=lambda kpi: kpi.id)
def test_builtin_kpi_metric_names(kpi: KpiSpec) -> None:
    assert kpi.metric.startswith("kpimon_")
    assert not kpi.metric.endswith("_total")
    suffixes = {"count": "", "seconds": "_seconds", "ratio": "_ratio", "currency": "", "currency_per_day": "_per_day"}
    suffixes["score"] = ""
    assert kpi.metric.endswith(suffixes[kpi.unit])


def test_builtin_ids_and_metrics_are_unique() -> None:
    catalog = BUILTIN
    assert len({kpi.id for kpi in catalog.kpis}) == len(catalog.kpis) == len(BUILTIN_KPIS)
    assert len({kpi.metric for kpi in catalog.kpis}) == len(BUILTIN_KPIS)
    assert catalog.cross_reference_problems() == []


@pytest.mark.parametrize(
    ("kpis", "problems"),
    [
        (
            kpi_yaml("signups_rate", "kpimon_signups_rate", "signups", unit="ratio"),
            ["4:5: kpis.0: metric 'kpimon_signups_rate' of a ratio KPI must end with '_ratio'"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups", "signups")
            + kpi_yaml("lead_time", "kpimon_lead_time", "signups", "seconds"),
            ["13:5: kpis.1: metric 'kpimon_lead_time' of a seconds KPI must end with '_seconds'"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups_total", "signups"),
            ["4:5: kpis.0: metric 'kpimon_signups_total': windowed values are gauges, drop '_total'"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups_seconds_total", "signups", "seconds"),
            ["4:5: kpis.0: metric 'kpimon_signups_seconds_total' of a seconds KPI must end with '_seconds'"],
        ),
        (
            kpi_yaml("signups", "signups", "signups"),
            ["5:13: kpis.0.metric: String should match pattern '^kpimon_[a-z0-9_]+$'"],
        ),
        (
            kpi_yaml("Signups", "kpimon_signups", "signups"),
            ["4:9: kpis.0.id: String should match pattern '^[a-z][a-z0-9_]*$'"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups", "signups / nothing"),
            ["9:14: kpis.0.formula: unknown counter 'nothing' in formula"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups", "max(signups)"),
            ["9:14: kpis.0.formula: unsupported syntax in formula 'max(signups)': 'max(signups)'"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups", "5"),
            ["9:14: kpis.0.formula: formula must be a string such as 'email_replies / emails_sent'"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups", "signups", extra="    windows: [1h, 2h]\n"),
            [
                "13:19: kpis.0.windows.1: Input should be "
                "'1h', '24h', '7d', '30d', 'today', 'week', 'month' or 'quarter'"
            ],
        ),
        (
            kpi_yaml("signups", "kpimon_signups", "signups", extra="    colour: red\n"),
            ["13:13: kpis.0.colour: Extra inputs are not permitted"],
        ),
        (
            kpi_yaml("signups", "kpimon_signups", "signups") + kpi_yaml("signups", "kpimon_signups_again", "signups"),
            ["13:9: kpis.1.id: duplicate KPI id 'signups'"],
        ),
    ],
)
def test_invalid_catalog_rejected_with_line(tmp_path: Path, kpis: str, problems: list[str]) -> None:
    path = write(tmp_path, LEADS_COUNTER + "kpis:\n" + kpis)
    for load in (
        lambda: load_yaml_model(path, Catalog, cross_check=Catalog.cross_reference_problems),
        lambda: load_catalog(path),
    ):
        with pytest.raises(ConfigFileError) as info:
            load()
        assert info.value.problems == [f"{path}:{problem}" for problem in problems]


def test_duplicate_metric_points_at_the_metric_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        LEADS_COUNTER
        + "kpis:\n"
        + kpi_yaml("signups", "kpimon_signups", "signups")
        + kpi_yaml("more", "kpimon_signups", "signups"),
    )
    with pytest.raises(ConfigFileError) as info:
        load_yaml_model(path, Catalog, cross_check=Catalog.cross_reference_problems)
    assert info.value.problems == [f"{path}:14:13: kpis.1.metric: metric 'kpimon_signups' is already defined"]


def test_extra_catalog_is_merged(tmp_path: Path) -> None:
    path = write(tmp_path, LEADS_COUNTER + "kpis:\n" + kpi_yaml("signups", "kpimon_signups", "signups"))
    catalog = load_catalog(path)
    assert list(catalog.counters) == [*BUILTIN_COUNTERS, "signups"]
    assert [kpi.id for kpi in catalog.kpis] == [*BUILTIN_KPIS, "signups"]
    assert catalog.kpis[-1].formula.names == frozenset({"signups"})
    assert catalog.kpis[-1].windows == WINDOW_NAMES
    assert catalog.kpis[-1].scopes == SCOPE_KINDS


def test_extra_catalog_clashing_with_a_builtin_id_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, LEADS_COUNTER + "kpis:\n" + kpi_yaml("calls", "kpimon_signups", "signups"))
    with pytest.raises(ConfigFileError, match="duplicate KPI id 'calls'"):
        load_catalog(path)


def test_extra_catalog_clash_points_at_the_extension_line(tmp_path: Path) -> None:
    path = write(tmp_path, LEADS_COUNTER + "kpis:\n" + kpi_yaml("calls", "kpimon_signups", "signups"))
    with pytest.raises(ConfigFileError) as info:
        load_catalog(path)
    assert info.value.problems == [f"{path}:4:9: kpis.0.id: duplicate KPI id 'calls'"]


def test_extra_catalog_may_use_builtin_counters(tmp_path: Path) -> None:
    text = "counters: {}\nkpis:\n" + kpi_yaml(
        "meeting_show_rate", "kpimon_meeting_show_ratio", "meetings_held / meetings_booked", "ratio"
    )
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.kpis[-1].id == "meeting_show_rate"


def test_extra_catalog_sections_are_optional(tmp_path: Path) -> None:
    assert load_catalog(write(tmp_path, "kpis: []\n")) == load_catalog()


def test_extra_catalog_cannot_redefine_a_builtin_counter(tmp_path: Path) -> None:
    path = write(tmp_path, "counters:\n  calls: {unit: calls, source: call.logged, help: again}\n")
    with pytest.raises(ConfigFileError) as info:
        load_catalog(path)
    assert info.value.problems == [
        f"{path}:2:10: counters.calls: counter 'calls' is already defined by the built-in catalog"
    ]


def test_catalog_extended() -> None:
    counter = CounterSpec(unit="x", source="web.session", help="h")
    kpi = KpiSpec(
        id="signups",
        name="Signups",
        kind="result",
        indicator="lagging",
        metric="kpimon_signups",
        formula="signups",  # type: ignore[arg-type]
        unit="count",
        good="up",
        description="d",
    )
    first = Catalog(counters={"calls": counter}, kpis=())
    second = CatalogExtension(counters={"signups": counter}, kpis=(kpi,))
    merged = second.merged_into(first)
    assert list(merged.counters) == ["calls", "signups"]
    assert merged.kpis == (kpi,)
    assert merged.kpis[0].formula.source == "signups"


def test_equal_formulas_compare_equal() -> None:
    assert Formula.parse("a / b") == Formula.parse("a / b")
    assert load_catalog() == load_catalog()


@pytest.mark.parametrize(
    ("unit", "metric", "ok"),
    [
        ("count", "kpimon_signups", True),
        ("count", "kpimon_signups_total", False),
        ("seconds", "kpimon_lead_time_seconds", True),
        ("seconds", "kpimon_lead_time", False),
        ("ratio", "kpimon_lead_ratio", True),
        ("ratio", "kpimon_lead_rate", False),
        ("ratio", "kpimon_lead_ratio_total", False),
    ],
)
def test_kpi_spec_metric_naming(unit: str, metric: str, ok: bool) -> None:
    fields = {
        "id": "signups",
        "name": "Signups",
        "kind": "result",
        "indicator": "lagging",
        "metric": metric,
        "formula": "signups",
        "unit": unit,
        "good": "up",
        "description": "d",
    }
    if ok:
        assert KpiSpec.model_validate(fields).metric == metric
    else:
        with pytest.raises(ValidationError):
            KpiSpec.model_validate(fields)


def test_extra_kpi_may_choose_calendar_windows(tmp_path: Path) -> None:
    counter = "counters:\n  site_visits: {unit: visits, source: site.visited, help: Visits.}\n"
    extra = "    windows: [30d, week, month, quarter]\n"
    kpi = kpi_yaml("site_visits", "kpimon_site_visits", "site_visits", extra=extra)
    assert load_catalog(write(tmp_path, counter + "kpis:\n" + kpi)).kpis[-1].windows == (
        "30d",
        "week",
        "month",
        "quarter",
    )


def test_a_stock_has_no_goal() -> None:
    """Active customers and MRR are levels, the same in every window: no target adds up over a period."""
    assert not BUILTIN.kpi("customers").adds_up_over_time()
    assert not BUILTIN.kpi("mrr").adds_up_over_time()
    assert BUILTIN.kpi("customers_new").adds_up_over_time()
    assert BUILTIN.kpi("calls").adds_up_over_time()


@pytest.mark.parametrize(
    ("formula", "exported"),
    [
        ("revenue", ("revenue", 1.0)),
        ("stock_mrr_cents / 100", ("stock_mrr_cents", 100.0)),
        ("12 * stock_mrr_cents / 100", None),
        ("deals_won / deals_lost", None),
        ("revenue / 0", None),
    ],
)
def test_the_counter_a_kpi_series_gives_and_its_factor(formula: str, exported: tuple[str, float] | None) -> None:
    kpi = KpiSpec(id="k", name="K", kind="result", indicator="lagging", metric="kpimon_k", formula=formula,
                  unit="count", good="up", description="d")  # fmt: skip
    assert kpi.exported_counter() == exported


@pytest.mark.parametrize(
    ("formula", "numerator_of"),
    [
        # the gross profit: the gross margin's numerator, over the MRR stock that kpimon_mrr exports
        (
            "stock_costed_mrr_cents - stock_cost_cents + (stock_mrr_cents - stock_costed_mrr_cents) "
            "* configured_gross_margin",
            ("gross_margin", "stock_mrr_cents"),
        ),
        ("revenue_costed - won_deal_costs", None),  # the deal profit margin's, over a counter no KPI exports
        ("calls + 1", None),  # no KPI's numerator
    ],
)
def test_the_numerator_of_a_kpi_over_an_exported_counter(formula: str, numerator_of: tuple[str, str] | None) -> None:
    found = load_catalog().numerator_of(Formula.parse(formula).tree.body)
    assert (None if found is None else (found[0].id, found[1])) == numerator_of
