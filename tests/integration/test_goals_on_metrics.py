"""Goals of the config on a real worker's /metrics, exactly: kpimon_goal and kpimon_goal_expected, beside the KPI.

The worker runs on the wall clock, so the goals are chosen for paces that do not move while the test runs.
Team emea's zone is picked so that it is about noon there now (an ``Etc/GMT`` zone), then:
- rep-daily-calls (20 a day, working hours 00:00-00:01): the minute is over, 20 expected;
- team-weekly-calls (100 a week, 00:00-00:01 on today's weekday only): the week's only counted minute is
  over, 100 expected;
- overall-daily-leads (30 a day on a weekday that is neither today nor a day next to it): 0 expected;
- web-weekly-leads (10 a week, pinned to channel web): served before any web lead, its target exactly.
Calls sent through Kafka show up next to the goals; the attainment is Prometheus' business
(deploy/prometheus/tests/goals.test.yml, tests/integration/test_prometheus_scrape.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.hours import WEEKDAYS
from tests.integration.support import WorkerProcess, event_message, produce, run, scrape, wait_until


def noon_zone(now: datetime) -> tuple[str, datetime]:
    """An ``Etc/GMT`` zone where it is between 11:30 and 12:30 now, and the local time there."""
    hours = 12 - now.hour if now.minute < 30 else 11 - now.hour
    name = "Etc/GMT" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"  # Etc/GMT-2 is UTC+2
    return name, now + timedelta(hours=hours)


def config_text(zone: str, local: datetime) -> str:
    today = WEEKDAYS[local.weekday()]
    far = WEEKDAYS[(local.weekday() + 3) % 7]  # neither yesterday, today nor tomorrow
    return f"""\
timezone: {zone}
teams:
  emea: {{timezone: {zone}}}
reps:
  anna: {{team: emea}}
  jan: {{team: emea}}
goals:
  - {{name: rep-daily-calls, kpi: calls, scope: rep, period: day, target: 20, hours: "00:00-00:01"}}
  - name: team-weekly-calls
    kpi: calls
    scope: team
    period: week
    target: 100
    hours: "00:00-00:01"
    business_days: [{today}]
  - {{name: overall-daily-leads, kpi: leads, scope: all, period: day, target: 30, business_days: [{far}]}}
  - {{name: web-weekly-leads, kpi: leads, scope: channel, channel: web, period: week, target: 10}}
"""


def kpi_labels(window: str, scope: str, **names: str) -> tuple[tuple[str, str], ...]:
    values = {"window": window, "scope": scope} | {n: names.get(n, "") for n in ("team", "rep", "channel", "campaign")}
    return tuple(sorted(values.items()))


def goal_labels(window: str, scope: str, kpi: str, goal: str, period: str, **names: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*kpi_labels(window, scope, **names), ("kpi", kpi), ("goal", goal), ("period", period))))


def test_goals_and_their_pace_on_metrics(
    tmp_path: Path, make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str]
) -> None:
    zone, local = noon_zone(datetime.now(UTC))
    config = tmp_path / "kpimon.yaml"
    config.write_text(config_text(zone, local), encoding="utf-8")
    worker = make_worker(KPIMON_CONFIG_FILE=str(config))
    worker.start()
    now = time.time()
    calls = [("anna", 5), ("anna", 7), ("jan", 9)]  # minutes ago: anna 2 calls, jan 1
    crm = worker_env["KPIMON_CRM_TOPIC"]
    events = [
        {
            "event_id": f"goal-call-{index}",
            "type": "call.logged",
            "occurred_at": datetime.fromtimestamp(now - minutes * 60, UTC).isoformat(),
            "source": "test",
            "rep_id": rep,
            "duration_seconds": 60,
            "outcome": "connected",
        }
        for index, (rep, minutes) in enumerate(calls)
    ]
    run(produce(event_message(crm, event) for event in events))

    def calls_counted() -> bool:
        return scrape(worker.port).get("kpimon_calls", {}).get(kpi_labels("today", "team", team="emea")) == 3

    wait_until(calls_counted, timeout=60, message="the three calls counted")
    samples = scrape(worker.port)
    rep_goal = {
        rep: goal_labels("today", "rep", "calls", "rep-daily-calls", "day", team="emea", rep=rep)
        for rep in ("anna", "jan")
    }
    team_goal = goal_labels("week", "team", "calls", "team-weekly-calls", "week", team="emea")
    leads_goal = goal_labels("today", "all", "leads", "overall-daily-leads", "day")
    web_goal = goal_labels("week", "channel", "leads", "web-weekly-leads", "week", channel="web")
    assert samples["kpimon_goal"] == {
        rep_goal["anna"]: 20.0,
        rep_goal["jan"]: 20.0,
        team_goal: 100.0,
        leads_goal: 30.0,
        web_goal: 10.0,
    }
    expected = samples["kpimon_goal_expected"]
    assert {labels: expected[labels] for labels in (*rep_goal.values(), team_goal, leads_goal)} == {
        rep_goal["anna"]: 20.0,
        rep_goal["jan"]: 20.0,
        team_goal: 100.0,
        leads_goal: 0.0,
    }
    assert 0 < expected[web_goal] < 10  # the week's share gone (moves with the clock)
    # the KPI beside its goal: the same labels but the goal's own
    assert samples["kpimon_calls"][kpi_labels("today", "rep", team="emea", rep="anna")] == 2
    assert samples["kpimon_calls"][kpi_labels("today", "rep", team="emea", rep="jan")] == 1
