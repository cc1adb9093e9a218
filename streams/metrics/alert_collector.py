"""Alerting on /metrics: the status of every (rule, scope) this worker evaluates, and delivery counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.delivery import DeliveryReport
from alerts.model import Status
from alerts.rules import AlertRule
from schemas.scopes import Scope

ALERT_LABELS = ("rule", "severity", "kpi", "window", "scope", "team", "rep", "channel", "campaign", "state")
STATUSES: tuple[Status, ...] = get_args(Status)
OUTCOMES = ("sent", "retried", "failed", "expired")
TimerTask = Literal["evaluate", "deliver"]
TIMER_TASKS: tuple[TimerTask, ...] = get_args(TimerTask)


@dataclass
class AlertMetrics:
    """What /metrics shows of alerting: the current status of each evaluated (rule, scope), delivery counts."""

    statuses: dict[str, tuple[AlertRule, Scope, Status]] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    evaluations_skipped: int = 0
    timer_errors: dict[TimerTask, int] = field(default_factory=dict)  # rounds that raised (logged), by timer

    def count(self, report: DeliveryReport) -> None:
        for outcome in OUTCOMES:
            self.deliveries[outcome] = self.deliveries.get(outcome, 0) + getattr(report, outcome)
        self.pending = report.pending


class AlertCollector(Collector):
    def __init__(self, metrics: Callable[[], AlertMetrics]) -> None:
        self._metrics = metrics

    @staticmethod
    def families() -> tuple[Metric, ...]:
        """The (empty) metric families this collector fills on every scrape."""
        return (
            GaugeMetricFamily(
                "kpimon_alert_state",
                "1 for the current status of each rule and scope this worker evaluates, 0 for the others.",
                labels=ALERT_LABELS,
            ),
            CounterMetricFamily(
                "kpimon_alert_notifications",
                "Delivery attempts by this worker: sent (2xx), retried (429, 5xx, errors), failed (given up on a 4xx), "
                "expired (given up: still failing KPIMON_ALERT_MAX_AGE_SECONDS after it was queued).",
                labels=("outcome",),
            ),
            GaugeMetricFamily("kpimon_alert_outbox_pending", "Notifications waiting in the outbox (all workers)."),
            CounterMetricFamily(
                "kpimon_alert_evaluations_skipped",
                "Evaluations held back because some partition's sums were missing or stale (a worker recovering).",
            ),
            CounterMetricFamily(
                "kpimon_alert_timer_errors",
                "Rounds of the alert timers that failed with an unexpected error (logged; the timer goes on).",
                labels=("task",),
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self.families()

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics()
        state, notifications, pending, skipped, errors = self.families()
        assert isinstance(state, GaugeMetricFamily) and isinstance(notifications, CounterMetricFamily)
        for rule, scope, status in metrics.statuses.values():
            labels = [rule.id, rule.severity, rule.kpi, rule.window, scope.kind, scope.team, scope.rep]
            labels += [scope.channel, scope.campaign]
            for candidate in STATUSES:
                state.add_metric([*labels, candidate], 1 if candidate == status else 0)
        for outcome in OUTCOMES:
            notifications.add_metric([outcome], metrics.deliveries.get(outcome, 0))
        assert isinstance(pending, GaugeMetricFamily) and isinstance(skipped, CounterMetricFamily)
        pending.add_metric([], metrics.pending)
        skipped.add_metric([], metrics.evaluations_skipped)
        assert isinstance(errors, CounterMetricFamily)
        for task in TIMER_TASKS:
            errors.add_metric([task], metrics.timer_errors.get(task, 0))
        yield from (state, notifications, pending, skipped, errors)
