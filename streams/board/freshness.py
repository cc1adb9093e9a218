"""How fresh a board is: from the last successful scrape of every worker Prometheus scrapes. Pure.

Every KPI series of a worker is scraped with its target's ``up``, so the board's sums are as fresh
as the oldest last successful scrape among the job's targets. While a target is down its share is
missing from every sum: the board keeps the last complete values, marks them incomplete and lets
their age grow (the page turns tiles stale), rather than show a partial sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TargetState:
    url: str
    healthy: bool
    last_scrape: float


@dataclass(frozen=True)
class Freshness:
    complete: bool  # every target answered its last scrape
    newest_scrape: float  # the newest scrape of any target: a change means new data to read
    problem: str | None  # what the page says while incomplete (no addresses: the wall shows it)
    down: tuple[str, ...] = ()  # the scrape URLs of the targets down, for the log


@dataclass
class SourceTracker:
    """Remembers when each target last answered, across refreshes."""

    last_healthy: dict[str, float] = field(default_factory=dict)

    def observe(self, targets: Sequence[TargetState]) -> Freshness:
        for target in targets:
            if target.healthy:
                self.last_healthy[target.url] = target.last_scrape
        if not targets:
            return Freshness(False, 0.0, "Prometheus scrapes no kpimon worker (check its scrape config)")
        down = [target.url for target in targets if not target.healthy]
        newest = max(target.last_scrape for target in targets)
        if not down:
            return Freshness(True, newest, None)
        workers = "worker" if len(targets) == 1 else "workers"
        return Freshness(False, newest, f"{len(down)} of {len(targets)} {workers} not answering", tuple(down))

    def as_of(self, targets: Sequence[TargetState]) -> float | None:
        """The time of the oldest of the targets' last successful scrapes (None: one never answered)."""
        times: Mapping[str, float] = self.last_healthy
        if not targets or any(target.url not in times for target in targets):
            return None
        return min(times[target.url] for target in targets)
