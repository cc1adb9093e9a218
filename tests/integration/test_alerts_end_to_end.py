"""Alerts end to end: a real worker, Kafka, Redis and the simulator; a local HTTP server plays Slack.

The rule watches every team's lead -> opportunity conversion over the last hour,
below 2% with at least 20 leads and 95% confidence (the Wilson bound), so the
simulator's young, steady funnel never pages. A conversion drop is injected for
one team (1000 leads nobody converts); converting 300 of them recovers it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.support import (
    REPO,
    WorkerProcess,
    consume_all,
    event_message,
    free_port,
    produce,
    run,
    scrape,
    total,
    wait_until,
)

RULES = """
grafana_url: http://grafana.example:3000
routes:
  sales-slack: {type: slack, webhook_url_env: SLACK_SALES_WEBHOOK_URL}
rules:
  - id: team-conversion-low
    name: Lead conversion collapsed
    kpi: lead_to_opportunity
    window: 1h
    scope: {kind: team}
    condition: {below: 0.02}
    min_sample: 20
    confidence: 0.95
    recovery_margin: 0.01
    severity: critical
    routes: [sales-slack]
"""
DROPPED_TEAM = "emea"
JUNK_LEADS = 1000
CONVERTED = 300
SIMULATOR_RATE = "20"


class Sink:
    """``python -m alerts.testing`` in its own process (it outlives worker kills), read over HTTP."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "alerts.testing", "--port", str(self.port), "--log", str(log_path)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._serving, timeout=20, message="the webhook sink serves")

    def _serving(self) -> bool:
        try:
            self.requests()
        except OSError:
            return False
        return True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _post(self, path: str, body: Mapping[str, object]) -> None:
        request = urllib.request.Request(self.url(path), data=orjson.dumps(body), method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url("/requests"), timeout=5) as response:
            return list(orjson.loads(response.read()))

    def accepted(self) -> list[dict[str, Any]]:
        return [request for request in self.requests() if 200 <= request["status"] < 300]

    def fail(self, **options: object) -> None:
        self._post("/fail", options)

    def recover(self) -> None:
        self._post("/recover", {})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    server = Sink(tmp_path / "sink.jsonl")
    yield server
    server.stop()


@pytest.fixture
def alert_env(tmp_path: Path, worker_env: dict[str, str], sink: Sink) -> dict[str, str]:
    """The worker's settings with alerts on."""
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    return {
        **worker_env,
        "KPIMON_CONFIG_FILE": str(REPO / "deploy/examples/kpimon.yaml"),
        "KPIMON_RULES_FILE": str(rules),
        "KPIMON_ALERTS_TOPIC": f"{worker_env['KPIMON_APP_ID']}.alerts",
        "KPIMON_ALERT_INTERVAL_SECONDS": "1",
        "SLACK_SALES_WEBHOOK_URL": sink.url("/slack"),
    }


@pytest.fixture
def worker(make_worker: Any, alert_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """A worker with alerts on; once it stopped, its Redis keys (states, outbox, sums) are deleted."""
    process: WorkerProcess = make_worker(**alert_env)
    yield process
    process.stop()
    scan = ["redis-cli", "-p", "6379", "--scan", "--pattern", f"{alert_env['KPIMON_APP_ID']}:*"]
    keys = subprocess.run(scan, check=False, capture_output=True, text=True).stdout.split()
    if keys:
        redis_cli("del", *keys)


@pytest.fixture
def simulator(alert_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The demo simulator, producing steadily for the whole test."""
    with (tmp_path / "simulator.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.tools.cli", "simulate", "--rate", SIMULATOR_RATE],
            env={**os.environ, **alert_env},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield process
    process.terminate()
    process.wait(timeout=30)


def inject(env: Mapping[str, str], kind: str, count: int) -> None:
    """``count`` leads of the dropped team that nobody converts, or opportunities converting the first of them."""
    now = datetime.now(UTC)
    messages = []
    for index in range(count):
        occurred = (now - timedelta(seconds=index % 600)).isoformat()
        base = {"occurred_at": occurred, "source": "test", "team": DROPPED_TEAM}
        if kind == "leads":
            event = {**base, "event_id": f"junk-{index}", "type": "lead.created", "lead_id": f"junk-{index}"}
            key = f"lead:junk-{index}"
        else:
            deal = {"deal_id": f"rescue-{index}", "lead_id": f"junk-{index}", "amount": 1000, "currency": "EUR"}
            event = {**base, "event_id": f"rescue-{index}", "type": "opportunity.created", **deal}
            key = f"deal:rescue-{index}"
        messages.append(event_message(env["KPIMON_CRM_TOPIC"], event, key=key))
    run(produce(messages))


def kinds(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(event kind, team) of each Slack message, from its Idempotency-Key and text."""
    result = []
    for request in requests:
        key = request["headers"]["Idempotency-Key"]  # rule/kind:team:rep:channel:campaign/episode/kind/seq/route
        scope = key.split("/")[1].split(":")
        result.append((key.split("/")[3], scope[1]))
    return result


def firing_teams(port: int) -> set[str]:
    samples = scrape(port).get("kpimon_alert_state", {})
    return {dict(labels)["team"] for labels, value in samples.items() if dict(labels)["state"] == "firing" and value}


def wait_for_messages(sink: Sink, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    wait_until(lambda: len(sink.accepted()) >= count, timeout, lambda: f"{count} messages; got {sink.requests()}")
    return sink.accepted()


def steady(worker: WorkerProcess, seconds: float) -> None:
    """Let the simulator run: the worker counts events and evaluates the rule on every team."""
    wait_until(lambda: total(scrape(worker.port), "kpimon_events_total") > 0, 60, "the simulator's events counted")
    wait_until(lambda: len(scrape(worker.port).get("kpimon_alert_state", {})) >= 12, 60, "every team evaluated")
    time.sleep(seconds)


def test_a_conversion_drop_fires_once_for_its_team_and_resolves_once(
    worker: WorkerProcess, alert_env: dict[str, str], sink: Sink, simulator: object
) -> None:
    worker.start()
    steady(worker, 5)
    assert sink.requests() == []

    inject(alert_env, "leads", JUNK_LEADS)
    firing = wait_for_messages(sink, 1)
    assert kinds(firing) == [("firing", DROPPED_TEAM)]
    body = firing[0]["body"]
    assert "Lead conversion collapsed" in body["text"] and "team emea" in body["text"]
    assert firing_teams(worker.port) == {DROPPED_TEAM}

    time.sleep(5)  # still firing: no second message
    assert len(sink.requests()) == 1

    inject(alert_env, "opportunities", CONVERTED)
    messages = wait_for_messages(sink, 2)
    assert kinds(messages) == [("firing", DROPPED_TEAM), ("resolved", DROPPED_TEAM)]
    time.sleep(5)
    assert len(sink.requests()) == 2
    assert firing_teams(worker.port) == set()

    audit = run(consume_all(alert_env["KPIMON_ALERTS_TOPIC"], expected=2, timeout=30))
    transitions = [orjson.loads(record.value) for record in audit]  # type: ignore[attr-defined]
    assert [(t["scope"]["team"], t["from"], t["to"]) for t in transitions] == [
        (DROPPED_TEAM, "ok", "firing"),
        (DROPPED_TEAM, "firing", "resolved"),
    ]


def test_a_worker_killed_while_a_message_is_pending_delivers_it_once_after_restart(
    worker: WorkerProcess, alert_env: dict[str, str], sink: Sink, simulator: object
) -> None:
    worker.start()
    steady(worker, 2)
    sink.fail(status=500)  # Slack is down
    inject(alert_env, "leads", JUNK_LEADS)
    wait_until(lambda: len(sink.requests()) >= 2, 60, "the firing message tried (and refused) twice")
    worker.kill()

    sink.recover()
    worker.start()
    messages = wait_for_messages(sink, 1, timeout=90)
    time.sleep(8)  # the restarted worker re-evaluates: the state in Redis says firing, nothing new to tell
    assert kinds(sink.accepted()) == [("firing", DROPPED_TEAM)]
    assert messages[0]["headers"]["Idempotency-Key"] == sink.requests()[0]["headers"]["Idempotency-Key"]


def redis_cli(*args: str) -> None:
    subprocess.run(["redis-cli", "-p", "6379", *args], check=False, capture_output=True, timeout=30)


def test_redis_down_and_back_keeps_kpis_flowing_and_alerts_without_duplicates(
    worker: WorkerProcess, alert_env: dict[str, str], sink: Sink, simulator: object
) -> None:
    worker.start()
    steady(worker, 2)
    inject(alert_env, "leads", JUNK_LEADS)
    wait_for_messages(sink, 1)

    redis_cli("shutdown")  # the local stack's Redis keeps its data (append-only file)
    try:
        counted = total(scrape(worker.port), "kpimon_events_total")
        wait_until(
            lambda: total(scrape(worker.port), "kpimon_events_total") > counted + 50,
            60,
            "events counted while Redis is down",
        )
    finally:
        subprocess.run([str(REPO / "deploy/local/kpimon-local"), "up"], check=True, capture_output=True)
    time.sleep(5)  # evaluations resume on the same states
    assert kinds(sink.accepted()) == [("firing", DROPPED_TEAM)]

    inject(alert_env, "opportunities", CONVERTED)
    wait_for_messages(sink, 2)
    time.sleep(3)
    assert kinds(sink.accepted()) == [("firing", DROPPED_TEAM), ("resolved", DROPPED_TEAM)]
