"""Alerts inside a worker: shared sums, rule evaluation, digests and delivery, on timers.

Every ``alert_interval_seconds`` a worker publishes the sums of the partitions it
owns (``SharedSums``) and evaluates the rules and digests it owns: a rule
belongs to the worker that owns source partition ``crc32(rule id) % partitions``,
so each rule is evaluated by one worker, and moves with its partition. States
live in Redis with a compare-and-set, notifications go through the Redis outbox
with ids that make a re-decided event a no-op, and each status change is
produced to the alerts topic. Redis being down pauses alerts, never the KPIs.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace

import aiohttp
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from alerts.delivery import Deliverer
from alerts.digests import BehindGoal, DueDigest, digest_period, digest_window, due_digest, reps_behind, skip_reason
from alerts.engine import Decision, decide, state_key
from alerts.model import Notification
from alerts.outbox import RedisOutbox
from alerts.rate_gate import RedisRateGate
from alerts.routes import SlackRoute
from alerts.rules import AlertRule, Digest, RulesFile
from alerts.slack import DigestRow, digest_message
from alerts.store import RedisAlertStore, states_by_key
from alerts.webhook import due_now, notifications_for
from schemas.catalog import Catalog
from schemas.config import KpimonConfig
from schemas.goals import Goal, goal_in_force, goals_of_period
from schemas.scopes import Scope, ScopeSelector
from streams.core.folding import BucketGroup
from streams.metrics.alert_collector import AlertMetrics, TimerTask
from streams.readout.alert_inputs import Need, Sums, observe, scopes_in, sums_key, value_in
from streams.readout.links import grafana_link
from streams.worker.alert_sums import SharedSums, groups_by_partition
from streams.worker.settings import Settings

log = logging.getLogger(__name__)
STALE_AFTER_INTERVALS = 3  # a partition's sums older than this many intervals hold evaluation back


def owner_partition(name: str, partitions: int) -> int:
    """The source partition whose owner evaluates the rule or digest ``name``."""
    return zlib.crc32(name.encode()) % partitions


def digest_key(digest: Digest) -> str:
    return f"digest/{digest.team}/{digest.cadence}"


def rep_goal_selector(digest: Digest) -> ScopeSelector:
    """The reps of a digest's team: who may be behind a goal."""
    return ScopeSelector(kind="rep", team=digest.team)


def needs_of(rules: RulesFile, catalog: Catalog, config: KpimonConfig) -> list[Need]:
    """The sums the rules and digests read: each rule's window (and baseline), each digest's last two periods.

    A digest also reads its team's reps in the period summarised, for the KPIs of the reps' goals of that period.
    """
    needs = []
    for rule in rules.rules:
        counters = catalog.kpi(rule.kpi).formula.names
        needs.append(Need(rule.scope.matches, rule.window, "now", counters))
        drop = rule.condition.drop
        if drop is not None:
            needs.append(Need(rule.scope.matches, rule.window, drop.baseline, counters))
    for digest in rules.digests:
        counters = frozenset().union(*(catalog.kpi(kpi).formula.names for kpi in digest.kpis))
        team = ScopeSelector(kind="team", team=digest.team)
        every = counters | frozenset(catalog.counters)  # in the period summarised: had the team any data? (skip_reason)
        needs.append(Need(team.matches, digest_window(digest), "previous_period", every))
        needs.append(Need(team.matches, digest_window(digest), "period_before", counters))
        reps = rep_goal_selector(digest)
        rep_kpis = {goal.kpi for goal in config.goals if goal.scope == "rep" and goal.period == digest_period(digest)}
        if rep_kpis:
            rep_counters = frozenset().union(*(catalog.kpi(kpi).formula.names for kpi in rep_kpis))
            needs.append(Need(reps.matches, digest_window(digest), "previous_period", rep_counters))
    return needs


class AlertService:
    def __init__(
        self,
        settings: Settings,
        config: KpimonConfig,
        catalog: Catalog,
        rules: RulesFile,
        redis: Redis,
        *,
        buckets: Callable[[], Iterable[tuple[str, BucketGroup]]],
        owned: Callable[[], set[int]],
        ready: Callable[[], bool],
        audit: Callable[[str, bytes], Awaitable[None]],
        clock: Callable[[], float],
        env: Mapping[str, str],
    ) -> None:
        namespace = settings.app_id
        self._settings = settings
        self._config = config
        self._catalog = catalog
        self._rules = rules
        self._buckets = buckets
        self._owned = owned
        self._ready = ready
        self._audit = audit
        self._clock = clock
        self.sums = SharedSums(redis, namespace, settings.partitions, needs_of(rules, catalog, config), config)
        self.store = RedisAlertStore(redis, namespace)
        self.outbox = RedisOutbox(redis, namespace)
        self.deliverer = Deliverer(
            self.outbox,
            rules.routes,
            env,
            clock,
            aiohttp.ClientSession,
            RedisRateGate(redis, namespace),
            max_age_seconds=settings.alert_max_age_seconds,
        )
        self.metrics = AlertMetrics()
        self._redis_down = False
        self._missing: list[int] = []
        self._skipped: dict[str, str] = {}  # digest key -> the id of the last period skipped for lack of data

    async def evaluate(self) -> None:
        """One evaluation round: publish this worker's sums, then evaluate the rules and digests it owns."""
        if not self._ready():
            return
        await self._guarded("evaluate", self._evaluate())

    async def deliver(self) -> None:
        """Send what the outbox has due."""
        await self._guarded("deliver", self._deliver())

    async def _guarded(self, task: TimerTask, work: Awaitable[None]) -> None:
        """Run one round of a timer; no error ends the timer (Redis away pauses alerts, anything else is counted)."""
        try:
            await work
        except (RedisError, OSError) as exc:
            if not self._redis_down:
                log.warning("alerts paused: Redis is unreachable (%s); KPIs keep flowing, alerts resume with it", exc)
            self._redis_down = True
            return
        except Exception:
            self.metrics.timer_errors[task] = self.metrics.timer_errors.get(task, 0) + 1
            log.exception("alert %s round failed; the next round runs as planned", task)
            return
        if self._redis_down:
            log.warning("alerts resumed: Redis is reachable again")
        self._redis_down = False

    async def _deliver(self) -> None:
        self.metrics.count(await self.deliverer.deliver_due())

    async def _evaluate(self) -> None:
        now = self._clock()
        owned = self._owned()
        await self.sums.publish(owned, groups_by_partition(self._buckets()), now)
        partitions = self._settings.partitions
        rules = [rule for rule in self._rules.rules if owner_partition(rule.id, partitions) in owned]
        digests = [d for d in self._rules.digests if owner_partition(digest_key(d), partitions) in owned]
        if not rules and not digests:
            self.metrics.statuses = {}
            return
        sums, missing = await self.sums.whole(now, STALE_AFTER_INTERVALS * self._settings.alert_interval_seconds)
        if missing != self._missing:  # say it when it changes, not every round
            log.info("alert evaluation %s", f"waits for the sums of partitions {missing}" if missing else "resumes")
            self._missing = missing
        if sums is None:
            self.metrics.evaluations_skipped += 1
            return
        decisions = await self._decide(rules, sums, now)
        await self._apply(decisions, now)
        self.metrics.statuses = {d.key: (d.rule, d.scope, d.step.state.status) for d, _ in decisions}
        for digest in digests:
            due = due_digest(digest, now, self._config.timezone_of(digest.team))
            if due is None:
                continue
            period = sums.get(sums_key(Scope(team=digest.team), digest_window(digest), "previous_period"), {})
            skipped = skip_reason(due, period)
            if skipped is None:
                await self.outbox.enqueue(self._digest_notifications(due, sums, now))
            elif self._skipped.get(digest_key(digest)) != due.id:  # said once per period, not every round
                log.info("digest %s", skipped)
                self._skipped[digest_key(digest)] = due.id

    async def _decide(self, rules: list[AlertRule], sums: Sums, now: float) -> list[tuple[Decision, int]]:
        candidates = scopes_in(sums) | set(self._config.scopes())
        targets = [
            (rule, scope)
            for rule in rules
            for scope in sorted(candidates, key=lambda scope: scope.key)
            if rule.scope.matches(scope)
        ]
        keys = [state_key(rule.id, scope) for rule, scope in targets]
        before = states_by_key(await self.store.load(keys), keys)
        decisions = []
        for (rule, scope), key in zip(targets, keys, strict=True):
            kpi = self._catalog.kpi(rule.kpi)
            observation = observe(kpi, sums, scope, rule.window)
            drop = rule.condition.drop
            if drop is not None:
                observation = replace(observation, baseline=value_in(kpi, sums, scope, rule.window, drop.baseline))
            state, version = before[key]
            tz = rule.zone_for(scope, self._config)
            pace = rule.condition.pace
            if pace is not None:
                observation = replace(observation, goal=goal_in_force(self._config.goals, pace.goal, scope, now, tz))
            decisions.append((decide(rule, kpi, scope, observation, state, now, tz), version))
        return decisions

    async def _apply(self, decisions: list[tuple[Decision, int]], now: float) -> None:
        """Queue each event's messages, then store the new state; announce status changes on the alerts topic.

        Queued first: a crash before the state is stored decides the same event again,
        whose notifications carry the same ids and are not queued twice.
        """
        for decision, version in decisions:
            if decision.step.state == decision.before:
                continue
            if decision.event is not None:
                kpi = self._catalog.kpi(decision.rule.kpi)
                link = grafana_link(self._rules.grafana_url, kpi, decision.scope, decision.rule.window)
                await self.outbox.enqueue(notifications_for(decision.event, self._rules.routes, now, link))
            if not await self.store.save(decision.key, decision.step.state, version):
                log.info("alert %s was decided by another worker first", decision.key)
                continue
            if decision.step.transition is not None:
                await self._audit(decision.key, orjson.dumps(decision.audit_record()))

    def _digest_notifications(self, due: DueDigest, sums: Sums, now: float) -> list[Notification]:
        digest = due.digest
        team = Scope(team=digest.team)
        window = digest_window(digest)
        goals = {
            goal.kpi: goal for goal in goals_of_period(self._config.goals, team, digest_period(digest), due.first_day)
        }
        rows = []
        for kpi_id in digest.kpis:
            kpi = self._catalog.kpi(kpi_id)
            goal = goals.get(kpi_id)
            rows.append(
                DigestRow(
                    kpi_name=kpi.name,
                    unit=kpi.unit,
                    value=value_in(kpi, sums, team, window, "previous_period"),
                    previous=value_in(kpi, sums, team, window, "period_before"),
                    goal=goal.target if goal else None,
                    good=kpi.good,
                )
            )
        route = self._rules.routes[digest.route]
        message = digest_message(due.title, rows, self._reps_behind(due, sums))
        body = message if isinstance(route, SlackRoute) else {"digest": due.id, **message}
        return [due_now(due.id, digest.route, route, orjson.dumps(body), now)]

    def _reps_behind(self, due: DueDigest, sums: Sums) -> list[BehindGoal]:
        """The team's reps short of their goals of the period summarised (the config's reps and any with data)."""
        digest = due.digest
        window, period = digest_window(digest), digest_period(digest)
        selector = rep_goal_selector(digest)
        candidates = scopes_in(sums) | set(self._config.scopes())
        reps = sorted((scope for scope in candidates if selector.matches(scope)), key=lambda scope: scope.key)
        values: dict[Goal, list[tuple[Scope, float | None]]] = {}
        for rep in reps:
            for goal in goals_of_period(self._config.goals, rep, period, due.first_day):
                value = value_in(self._catalog.kpi(goal.kpi), sums, rep, window, "previous_period")
                values.setdefault(goal, []).append((rep, value))
        return [row for goal, found in values.items() for row in reps_behind(goal, self._catalog.kpi(goal.kpi), found)]

    async def close(self) -> None:
        await self.deliverer.close()
