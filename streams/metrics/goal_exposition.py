"""The goal families of /metrics: ``kpimon_goal`` and ``kpimon_goal_expected``, as Prometheus text.

Both are functions of the config and the clock (``streams.readout.goal_values``), the same on
every worker: aggregate them with ``max`` across workers, never ``sum``. The attainment needs a
scope's whole value, which no single worker has when several share the partitions, so it is not
served here: Prometheus records ``kpimon_goal_attainment_ratio`` from the summed KPI and the goal
(deploy/prometheus/generate_rules.py). ``render(now)`` rebuilds the text in steps of a few hundred
scopes, so the caller can yield to the event loop between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from schemas.config import KpimonConfig
from schemas.scopes import Scope
from streams.metrics.exposition import family_header, label_text, sample_lines
from streams.metrics.kpi_families import KPI_LABELS
from streams.readout.goal_values import goal_values

GOAL_LABELS = (*KPI_LABELS, "kpi", "goal", "period")
SAME_ON_EVERY_WORKER = "The same on every worker: aggregate with max across workers, never sum."
GOAL_FAMILIES = (
    (
        "kpimon_goal",
        "Target of the goal in force for the scope in the current period (the config's goals; `window` is the "
        f"period's to-date window, `kpi` the KPI whose value in it counts). {SAME_ON_EVERY_WORKER}",
    ),
    (
        "kpimon_goal_expected",
        "Value expected by now on the pace to the goal: the target times the share of the period's counted time "
        f"(working hours, business days) gone by, in the scope's time zone. {SAME_ON_EVERY_WORKER}",
    ),
)


class GoalExposition:
    """Text of the goal families for the config's goals over the config's scopes and those with state."""

    def __init__(self, config: KpimonConfig, scopes: Callable[[], Iterable[Scope]]) -> None:
        self._config = config
        self._scopes = scopes
        self._headers = [family_header(name, help_text) for name, help_text in GOAL_FAMILIES]
        self._blocks: list[bytes] = [b"", b""]

    def render(self, now: float) -> Iterator[None]:
        """Rebuild both families for ``now``; a step per few hundred scopes."""
        if not self._config.goals:
            return
        targets: list[tuple[str, float]] = []
        expected: list[tuple[str, float]] = []
        for value in goal_values(self._config, self._scopes(), now):
            if value is None:
                yield
                continue
            goal = value.goal
            labels = label_text(GOAL_LABELS, (goal.window, *value.scope.labels, goal.kpi, goal.name, goal.period))
            targets.append((labels, goal.target))
            expected.append((labels, value.expected))
        target_name, expected_name = (name for name, _ in GOAL_FAMILIES)
        self._blocks = [
            self._headers[0] + sample_lines(target_name, targets),
            self._headers[1] + sample_lines(expected_name, expected),
        ]

    def parts(self) -> list[bytes]:
        return list(self._blocks)
