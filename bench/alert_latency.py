#!/usr/bin/env python3
"""Alert latency: from an injected conversion drop to the webhook request, against the time it is visible.

One real ``kpimon worker`` runs on fresh topics with one alert rule (a team's lead ->
opportunity conversion over 1h below 2%, at least 20 leads, 95% confidence) whose
Slack route points at a recording webhook sink in this process. Each trial:

1. produce N junk ``lead.created`` events (nobody converts them) for a fresh team
   ``bench-tNN``, and flush the producer: the clock starts when the flush returns;
2. concurrently, measure
   - visible: until /metrics shows ``kpimon_leads{scope="team",team="bench-tNN",window="1h"} >= N``
     (polled every 20 ms, or less often when scrapes would take more than a quarter of the
     worker's time: a scrape blocks its event loop), the baseline: what ingest alone takes;
   - alert: until the sink received the firing request for that team (by its Idempotency-Key);
3. wait a random pause, so that the next trial starts at a random point of the worker's timers.

The alert follows the next evaluation (every ``--interval`` s) once enough leads are
counted to fire the rule (189 of them: "fireable"), then the next delivery round (every
``--delivery-interval`` s), so the alert should come about interval/2 + delivery interval/2
after that on average. Prints a table of p50/p90/max and the ratio alert/visible,
and writes every figure to bench/results/alert-latency-<UTC timestamp>.json.

Run from the repository root: ``python bench/alert_latency.py`` (or ``make bench-alerts``).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/alert_latency.py` puts only bench/ on the path

from alerts.testing import RecordedRequest, WebhookSink  # noqa: E402
from alerts.wilson import wilson_interval  # noqa: E402
from bench.throughput import (  # noqa: E402
    cpu_seconds,
    delete_topics,
    machine,
    start_worker,
    stop_worker,
    worker_env,
)
from schemas.scopes import Scope  # noqa: E402
from streams.worker.topics import ensure_topics  # noqa: E402
from tests.integration.redis_namespace import REDIS_URL  # noqa: E402
from tests.integration.support import BOOTSTRAP, Message, event_message, free_port  # noqa: E402

RULE_ID = "bench-conversion-low"
ROUTE = "bench-slack"
URL_ENV = "KPIMON_SLACK_BENCH"
WINDOW = "1h"
THRESHOLD = 0.02
MIN_SAMPLE = 20
CONFIDENCE = 0.95
RULES = f"""
routes:
  {ROUTE}: {{type: slack, webhook_url_env: {URL_ENV}}}
rules:
  - id: {RULE_ID}
    name: Lead conversion collapsed (benchmark)
    kpi: lead_to_opportunity
    window: {WINDOW}
    scope: {{kind: team}}
    condition: {{below: {THRESHOLD}}}
    min_sample: {MIN_SAMPLE}
    confidence: {CONFIDENCE}
    routes: [{ROUTE}]
"""
LEADS_METRIC = "kpimon_leads"
EVENT_SPREAD_SECONDS = 300  # the junk leads' event times: the last five minutes
READY_TIMEOUT_SECONDS = 120.0
MIN_PAUSE_SECONDS = 1.5  # after a trial; above the Slack route's 1 message/s, so no send waits for the rate gate
WORKER_LOGLEVEL = "info"  # as `kpimon worker` (see "log level warning" in docs/benchmarks.md)


# -- one trial ---------------------------------------------------------------------------------------------------------


@dataclass
class Trial:
    """Seconds from the producer's flush to each observation, and what it took to see them."""

    team: str
    leads: int
    produce_seconds: float  # first send to the flush returning
    visible_seconds: float  # the end of the first scrape that showed all the leads
    visible_not_before_seconds: float  # the previous scrape was sent: the count became visible between the two
    fireable_seconds: float  # the end of the first scrape that showed enough leads to fire the rule
    alert_seconds: float  # the sink received the firing request
    scrapes: int
    scrape_seconds: float  # all the scrapes until visible: the worker renders /metrics instead of ingesting
    scrape_seconds_max: float
    warmup: bool = False

    @property
    def alert_minus_visible(self) -> float:
        return self.alert_seconds - self.visible_seconds

    @property
    def alert_minus_fireable(self) -> float:
        return self.alert_seconds - self.fireable_seconds

    @property
    def scrape_share(self) -> float:
        """The share of the time until visible that the worker spent answering this harness's scrapes."""
        return self.scrape_seconds / self.visible_seconds if self.visible_seconds > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.alert_seconds / self.visible_seconds if self.visible_seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        derived = {
            "alert_minus_visible_seconds": self.alert_minus_visible,
            "alert_minus_fireable_seconds": self.alert_minus_fireable,
            "scrape_share": self.scrape_share,
        }
        return {**asdict(self), **derived, "ratio": self.ratio}


def junk_leads(topic: str, team: str, count: int, run_id: str) -> list[Message]:
    """``count`` new leads of ``team`` that nobody converts, keyed ``lead:<lead_id>``, in the last few minutes."""
    now = datetime.now(UTC)
    messages = []
    for index in range(count):
        lead_id = f"{run_id}-{team}-{index}"
        event = {
            "event_id": f"lead-created-{lead_id}",
            "type": "lead.created",
            "occurred_at": (now - timedelta(seconds=index % EVENT_SPREAD_SECONDS)).isoformat(),
            "source": "bench",
            "team": team,
            "lead_id": lead_id,
        }
        messages.append(event_message(topic, event, key=f"lead:{lead_id}"))
    return messages


def leads_counted(text: str, team: str) -> float:
    """``kpimon_leads`` of ``team``'s team scope over the rule's window, from /metrics text (0 before it exists)."""
    wanted = ('scope="team"', f'team="{team}"', f'window="{WINDOW}"')
    for line in text.splitlines():
        if line.startswith(f"{LEADS_METRIC}{{") and all(label in line for label in wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def fires_for(request: RecordedRequest, team: str) -> bool:
    """Whether ``request`` is the firing message of ``team``: Idempotency-Key ``rule/scope/episode/kind/seq/route``."""
    parts = (request.header("Idempotency-Key") or "").split("/")
    return len(parts) > 3 and parts[1] == Scope(team=team).id and parts[3] == "firing"


@dataclass
class Visible:
    """When /metrics first showed the leads (seconds from t0, between ``not_before`` and ``seen``), and each scrape;
    ``fireable``: when it first showed enough of them to fire the rule."""

    seen: float
    not_before: float
    fireable: float
    scrapes: list[float]


def poll_pause(poll: float, scrape: float, max_share: float) -> float:
    """The wait before the next scrape: ``poll`` from the start of the last, but long enough that scrapes take at
    most ``max_share`` of the worker's time (a scrape blocks its event loop, ingest included)."""
    return max(poll - scrape, scrape * (1 / max_share - 1))


async def wait_visible(
    session: aiohttp.ClientSession, url: str, team: str, t0: float, args: argparse.Namespace
) -> Visible:
    """Poll /metrics until ``team`` shows ``args.leads`` leads."""
    scrapes: list[float] = []
    previous = 0.0  # when the last scrape that did not show them yet was sent (t0 for the first)
    fireable, enough = None, fires_from()
    while time.monotonic() < t0 + args.timeout:
        sent = time.monotonic()
        async with session.get(url) as response:
            text = await response.text()
        seen = time.monotonic()
        scrapes.append(seen - sent)
        counted = leads_counted(text, team)
        if fireable is None and counted >= enough:
            fireable = seen - t0
        if counted >= args.leads:
            return Visible(seen - t0, previous, fireable if fireable is not None else seen - t0, scrapes)
        previous = sent - t0
        await asyncio.sleep(poll_pause(args.poll_ms / 1000, seen - sent, args.max_scrape_share))
    raise TimeoutError(f"/metrics did not show {args.leads} leads of team {team} in time")


async def wait_alert(sink: WebhookSink, team: str, t0: float, deadline: float) -> float:
    """Wait for the sink's firing request for ``team``; its arrival (by the sink's monotonic clock) from t0."""
    checked = 0
    while True:
        requests = sink.requests
        for request in requests[checked:]:
            if fires_for(request, team):
                return request.at - t0
        checked = len(requests)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no firing request for team {team} in time; {checked} requests so far")
        await sink.wait_for(checked + 1, remaining, accepted_only=False)


@dataclass
class Harness:
    """What every trial uses: the producer, the /metrics client, the sink, and where to send and look."""

    producer: AIOKafkaProducer
    session: aiohttp.ClientSession
    sink: WebhookSink
    topic: str  # the worker's CRM topic
    metrics_url: str
    run_id: str  # part of every lead id, so no two runs share an event id


async def run_trial(harness: Harness, team: str, args: argparse.Namespace) -> Trial:
    """Inject ``args.leads`` junk leads for ``team``, then wait for them on /metrics and for the alert, concurrently."""
    messages = junk_leads(harness.topic, team, args.leads, harness.run_id)
    started = time.monotonic()
    for message in messages:
        await harness.producer.send(message.topic, message.value, key=message.key)
    await harness.producer.flush()
    t0 = time.monotonic()
    visible, alert = await asyncio.gather(
        wait_visible(harness.session, harness.metrics_url, team, t0, args),
        wait_alert(harness.sink, team, t0, t0 + args.timeout),
    )
    scrapes = visible.scrapes
    return Trial(
        team=team,
        leads=args.leads,
        produce_seconds=t0 - started,
        visible_seconds=visible.seen,
        visible_not_before_seconds=visible.not_before,
        fireable_seconds=visible.fireable,
        alert_seconds=alert,
        scrapes=len(scrapes),
        scrape_seconds=sum(scrapes),
        scrape_seconds_max=max(scrapes),
    )


# -- the worker --------------------------------------------------------------------------------------------------------


def alert_env(app_id: str, partitions: int, scratch: Path, args: argparse.Namespace, sink_url: str) -> dict[str, str]:
    """The benchmark's worker: throughput.py's settings on fresh topics, plus the rule and its webhook."""
    rules = scratch / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    topics = {"crm": f"{app_id}.crm", "marketing": f"{app_id}.marketing"}
    return {
        **worker_env(app_id, topics, partitions, scratch / "data"),
        "KPIMON_RULES_FILE": str(rules),
        "KPIMON_ALERTS_TOPIC": f"{app_id}.alerts",
        "KPIMON_ALERT_INTERVAL_SECONDS": str(args.interval),
        "KPIMON_DELIVERY_INTERVAL_SECONDS": str(args.delivery_interval),
        URL_ENV: sink_url,
    }


async def wait_ready(session: aiohttp.ClientSession, url: str) -> float:
    """Wait until the worker has evaluated the rule once (``kpimon_alert_state`` on /metrics); seconds waited."""
    started = time.monotonic()
    while time.monotonic() < started + READY_TIMEOUT_SECONDS:
        async with session.get(url) as response:
            if "\nkpimon_alert_state{" in await response.text():
                return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the worker did not evaluate the alert rule within {READY_TIMEOUT_SECONDS} s")


async def delete_redis_keys(app_id: str) -> int:
    """Delete the worker's alert keys in Redis (``<app_id>:*``); how many there were."""
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{app_id}:*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    return len(keys)


def fires_from() -> int:
    """The fewest unconverted leads that fire the rule: the Wilson upper bound of 0/n below the threshold."""
    return next(leads for leads in itertools.count(MIN_SAMPLE) if wilson_interval(0, leads, CONFIDENCE)[1] < THRESHOLD)


# -- the run -----------------------------------------------------------------------------------------------------------


async def run_trials(args: argparse.Namespace, app_id: str, scratch: Path, result: dict[str, Any]) -> list[Trial]:
    """Sink, topics, worker, warm-up and trials; the worker is stopped, its topics and Redis keys deleted."""
    sink = await WebhookSink(clock=time.monotonic).start()
    env = alert_env(app_id, args.partitions, scratch, args, sink.url("/slack"))
    port, process, trials = free_port(), None, []
    env["KPIMON_WEB_PORT"] = str(port)
    metrics_url, pace = f"http://127.0.0.1:{port}/metrics", random.Random(args.seed)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    teams = [(f"bench-w{n:02d}", True) for n in range(1, args.warmup + 1)]
    teams += [(f"bench-t{n:02d}", False) for n in range(1, args.trials + 1)]
    try:
        await ensure_topics(BOOTSTRAP, [env["KPIMON_CRM_TOPIC"], env["KPIMON_MARKETING_TOPIC"]], args.partitions)
        launched = time.monotonic()
        process = await asyncio.to_thread(start_worker, env, port, WORKER_LOGLEVEL, scratch / "worker.log")
        serving = time.monotonic() - launched
        ready = await wait_ready(session, metrics_url)
        cpu_at_start = cpu_seconds(process.pid)
        result["worker"] = {"pid": process.pid, "startup_seconds": serving, "first_evaluation_seconds": ready}
        print(f"1. worker pid {process.pid}: /metrics after {serving:.1f} s, rule evaluated {ready:.1f} s later")
        await producer.start()
        harness = Harness(producer, session, sink, env["KPIMON_CRM_TOPIC"], metrics_url, app_id)
        print(f"2. {args.warmup} warm-up and {args.trials} measured trials of {args.leads:,} junk leads", flush=True)
        for number, (team, warmup) in enumerate(teams, start=1 - args.warmup):
            trial = await run_trial(harness, team, args)
            trial.warmup = warmup
            trials.append(trial)
            print(progress_line(trial, "warm-up" if warmup else f"trial {number:>2}/{args.trials}"), flush=True)
            await asyncio.sleep(pace.uniform(MIN_PAUSE_SECONDS, MIN_PAUSE_SECONDS + args.interval))
        result["worker"]["cpu_seconds_during_trials"] = cpu_seconds(process.pid) - cpu_at_start
        async with session.get(metrics_url) as response:
            result["worker"]["series_at_end"] = sum(
                1 for line in (await response.text()).splitlines() if line[:1] != "#"
            )
        result["sink_requests"] = len(sink.requests)
    except BaseException:
        log = (scratch / "worker.log").read_text(errors="replace") if (scratch / "worker.log").exists() else ""
        print("--- worker log (last lines) ---\n" + "\n".join(log.splitlines()[-40:]), file=sys.stderr)
        raise
    finally:
        await session.close()
        await producer.stop()
        if process is not None:
            stopping = time.monotonic()
            exit_code = await asyncio.to_thread(stop_worker, process)
            result.setdefault("worker", {}).update(stop_seconds=time.monotonic() - stopping, exit_code=exit_code)
        await sink.stop()
        result["cleanup"] = {"topics": await delete_topics([app_id]), "redis_keys": await delete_redis_keys(app_id)}
        print(f"deleted {len(result['cleanup']['topics'])} topics and {result['cleanup']['redis_keys']} Redis keys")
    return trials


# -- report ------------------------------------------------------------------------------------------------------------


def progress_line(trial: Trial, label: str) -> str:
    return (
        f"  {label} {trial.team}: visible {trial.visible_seconds:.2f} s, alert {trial.alert_seconds:.2f} s, "
        f"alert - visible {trial.alert_minus_visible:+.2f} s, alert/visible {trial.ratio:.2f}, "
        f"{trial.scrapes} scrapes ({trial.scrape_share:.0%} of the time until visible, "
        f"slowest {1000 * trial.scrape_seconds_max:.0f} ms)" + (" (not counted)" if trial.warmup else "")
    )


def spread(values: list[float]) -> dict[str, float]:
    """p50 and p90 (linear between ranks, as statistics.quantiles 'inclusive'), max, min and mean."""
    cuts = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 else [values[0]] * 9
    return {"p50": cuts[4], "p90": cuts[8], "max": max(values), "min": min(values), "mean": statistics.fmean(values)}


ROWS: dict[str, tuple[str, Callable[[Trial], float]]] = {
    "visible": ("visible: kpimon_leads of the team >= N", lambda t: t.visible_seconds),
    "fireable": ("fireable: enough leads to fire counted", lambda t: t.fireable_seconds),
    "alert": ("alert: firing request at the webhook", lambda t: t.alert_seconds),
    "alert_minus_visible": ("alert - visible", lambda t: t.alert_minus_visible),
    "alert_minus_fireable": ("alert - fireable", lambda t: t.alert_minus_fireable),
    "ratio": ("alert / visible (ratio, not seconds)", lambda t: t.ratio),
}


def summary(trials: list[Trial]) -> dict[str, dict[str, float]]:
    measured = [trial for trial in trials if not trial.warmup]
    return {key: spread([value(trial) for trial in measured]) for key, (_, value) in ROWS.items()}


def table(stats: dict[str, dict[str, float]]) -> list[str]:
    columns = ("p50", "p90", "max", "min", "mean")
    lines = [
        f"| {'seconds after the flush':<38} | " + " | ".join(f"{c:>5}" for c in columns) + " |",
        f"|{'-' * 40}|" + "|".join("-" * 6 + ":" for _ in columns) + "|",
    ]
    for key, (name, _) in ROWS.items():
        lines.append(f"| {name:<38} | " + " | ".join(f"{stats[key][c]:>5.2f}" for c in columns) + " |")
    return lines


def report(result: dict[str, Any], trials: list[Trial]) -> str:
    m, s, stats, worker = result["machine"], result["settings"], result["summary"], result["worker"]
    load = {when: " ".join(f"{v:.2f}" for v in result[f"load_average_{when}"]) for when in ("start", "end")}
    measured = [trial for trial in trials if not trial.warmup]
    scrapes, slowest = sum(t.scrapes for t in measured), max(t.scrape_seconds_max for t in measured)
    until_visible = sum(t.visible_seconds for t in measured)
    share = sum(t.scrape_seconds for t in measured) / until_visible
    uncertainty = statistics.fmean(t.visible_seconds - t.visible_not_before_seconds for t in measured)
    overhead = stats["alert_minus_fireable"]
    lines = [
        f"kpimon alert latency: {s['trials']} trials of {s['leads']:,} junk leads, "
        f"evaluation every {s['interval']:g} s, delivery every {s['delivery_interval']:g} s, "
        f"{s['partitions']} partitions, run {result['run_id']}",
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, Kafka {m['kafka']}, "
        f"load average {load['start']} at start, {load['end']} at end",
        "",
        *table(stats),
        "",
        f"alert / visible: p50 {stats['ratio']['p50']:.2f}, p90 {stats['ratio']['p90']:.2f} (per trial); "
        f"ratio of the p50s {stats['alert']['p50'] / stats['visible']['p50']:.2f}",
        f"the rule fires from {result['fires_from_leads']} unconverted leads on (Wilson upper bound of 0/n at "
        f"{CONFIDENCE:.0%} below {THRESHOLD}): an evaluation can fire before all {s['leads']:,} are counted",
        f"expected alert - fireable: interval/2 + delivery interval/2 = {result['expected_overhead_seconds']:.2f} s "
        f"on average; measured mean {overhead['mean']:.2f} s, p50 {overhead['p50']:.2f} s",
        f"/metrics polled every {s['poll_ms']:g} ms at most, scrapes at most {s['max_scrape_share']:.0%} of the "
        f"time: one every {1000 * until_visible / scrapes:.0f} ms on average; slowest {1000 * slowest:.0f} ms; "
        f"scrapes took {share:.0%} of the time until visible",
        f"visible is the end of the first scrape showing all the leads; they appeared on average "
        f"{uncertainty:.2f} s or less before; {worker['series_at_end']:,} series on /metrics at the end",
        f"worker: /metrics after {worker['startup_seconds']:.1f} s, {worker['cpu_seconds_during_trials']:.1f} CPU s "
        f"during the trials, stopped in {worker['stop_seconds']:.1f} s, exit code {worker['exit_code']}",
    ]
    return "\n".join(lines)


def write_results(directory: Path, stamp: str, result: dict[str, Any]) -> Path:
    """The JSON file, written whole or not at all."""
    path = directory / f"alert-latency-{stamp}.json"
    directory.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    return path.with_suffix(".tmp").replace(path)


# -- main --------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs the local Kafka broker and Redis (deploy/local/kpimon-local up). Details: docs/benchmarks.md.",
    )
    parser.add_argument("--trials", type=int, default=10, help="measured trials, one fresh team each (default 10)")
    parser.add_argument("--leads", type=int, default=500, help="junk leads injected per trial (default 500)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="KPIMON_ALERT_INTERVAL_SECONDS: rule evaluation (default 1)"
    )
    parser.add_argument(
        "--delivery-interval",
        type=float,
        default=0.5,
        help="KPIMON_DELIVERY_INTERVAL_SECONDS: outbox delivery rounds (default 0.5, the worker's default)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="trials run first and not counted (default 1)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the bench topics (default 6)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="how often /metrics is polled (default 20 ms)")
    parser.add_argument(
        "--max-scrape-share",
        type=float,
        default=0.25,
        help="poll /metrics less often than --poll-ms when its scrapes would take more than this share of the "
        "worker's time (default 0.25; 1 polls every --poll-ms whatever a scrape costs)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one trial may take (default 120)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pauses between trials (default 1)")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("bench/results"),
        help="directory of the JSON result (default bench/results)",
    )
    args = parser.parse_args(argv)
    if min(args.trials, args.partitions) < 1 or args.warmup < 0:
        parser.error("--trials and --partitions must be at least 1, --warmup at least 0")
    if args.leads < fires_from():
        parser.error(f"--leads must be at least {fires_from()}: fewer unconverted leads never fire the rule")
    if min(args.interval, args.delivery_interval, args.poll_ms, args.timeout) <= 0:
        parser.error("--interval, --delivery-interval, --poll-ms and --timeout must be above 0")
    if not 0 < args.max_scrape_share <= 1:
        parser.error("--max-scrape-share must be above 0 and at most 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id, started = uuid.uuid4().hex[:8], datetime.now(UTC)
    app_id = f"bench-alerts-{run_id}"
    result: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "app_id": app_id,
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "rule": RULES.strip(),
        "fires_from_leads": fires_from(),
        "expected_overhead_seconds": args.interval / 2 + args.delivery_interval / 2,
        "machine": machine(),
        "load_average_start": list(os.getloadavg()),
    }
    print(
        f"kpimon alert latency, run {run_id}: evaluation every {args.interval:g} s, delivery every "
        f"{args.delivery_interval:g} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="kpimon-bench-alerts-") as scratch:
        trials = asyncio.run(run_trials(args, app_id, Path(scratch), result))
    result["load_average_end"] = list(os.getloadavg())
    result["summary"] = summary(trials)
    result["trials"] = [trial.to_json() for trial in trials]
    print("\n" + report(result, trials) + "\n", flush=True)
    path = write_results(args.output, started.strftime("%Y%m%dT%H%M%SZ"), result)
    print(f"results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
