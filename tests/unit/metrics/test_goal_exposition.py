"""streams.metrics.goal_exposition: kpimon_goal and kpimon_goal_expected lines, exactly, and on the worker's page."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from schemas.catalog import load_catalog
from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.metrics.goal_exposition import GoalExposition
from streams.metrics.loop_lag import LoopLagProbe
from streams.worker.metrics_page import MetricsPage

# Tuesday December 8, 2026, 14:00 in Berlin (13:00 UTC)
NOW = datetime(2026, 12, 8, 13, tzinfo=UTC).timestamp()
CONFIG = KpimonConfig.model_validate(
    {
        "teams": {"emea": {"timezone": "Europe/Berlin"}},
        "reps": {"anna": {"team": "emea"}},
        "goals": [
            {
                "name": "weekly-calls",
                "kpi": "calls",
                "scope": "rep",
                "period": "week",
                "target": 50,
                "hours": "09:00-17:00",
                "business_days": ["mon", "tue", "wed", "thu", "fri"],
            },
            {"name": "web-leads", "kpi": "leads", "scope": "channel", "period": "day", "target": 8},
        ],
    }
)
ANNA = 'campaign="",channel="",goal="weekly-calls",kpi="calls",period="week",rep="anna",scope="rep",team="emea"'
WEB = 'campaign="",channel="web",goal="web-leads",kpi="leads",period="day",rep="",scope="channel",team=""'


def test_exact_lines() -> None:
    exposition = GoalExposition(CONFIG, lambda: [Scope(channel="web")])
    for _ in exposition.render(NOW):
        pass
    goal, expected = (part.decode() for part in exposition.parts())
    # Mon-Fri 09:00-17:00 in Berlin: 13 of the 40 working hours gone by Tuesday 14:00, 13/40 x 50 = 16.25;
    # the web channel's day in UTC (the config's zone): 13 of 24 hours, 13/24 x 8 = 4.333...
    assert goal.splitlines() == [
        "# HELP kpimon_goal " + goal.splitlines()[0].removeprefix("# HELP kpimon_goal "),
        "# TYPE kpimon_goal gauge",
        f'kpimon_goal{{{ANNA},window="week"}} 50.0',
        f'kpimon_goal{{{WEB},window="today"}} 8.0',
    ]
    assert expected.splitlines()[2:] == [
        f'kpimon_goal_expected{{{ANNA},window="week"}} 16.25',
        f'kpimon_goal_expected{{{WEB},window="today"}} {13 / 24 * 8!r}',
    ]
    assert "max across workers, never sum" in goal


def test_without_goals_the_page_has_no_goal_families() -> None:
    page = MetricsPage(load_catalog(), KpimonConfig(), CollectorRegistry(), LoopLagProbe(), clock=lambda: NOW)
    assert page.goals.parts() == [b"", b""]


async def test_the_worker_page_serves_the_goals() -> None:
    page = MetricsPage(load_catalog(), CONFIG, CollectorRegistry(), LoopLagProbe(), clock=lambda: NOW)
    await page.reconcile_groups(lambda: [])
    body = (await page.body()).decode()
    assert f'kpimon_goal_expected{{{ANNA},window="week"}} 16.25\n' in body
    assert "kpimon_goal_attainment_ratio" not in body  # recorded by Prometheus from the summed KPI
