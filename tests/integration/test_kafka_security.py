"""kpimon against a real Kafka requiring SASL over TLS and a client certificate (tests/integration/secured_kafka.py).

A worker and ``kpimon simulate`` and ``kpimon replay`` log in with SCRAM-SHA-512 (password
from a file) and a client certificate; every message they produce is read and counted.
SCRAM-SHA-256 and PLAIN logins work with the same options. A wrong password, an untrusted
CA or a mechanism the user was not created for stop the command at start with a message
that says which setting to fix, and no message shows the password.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from schemas.events import INTERNAL_TYPES
from tests.integration.secured_kafka import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    SCRAM256_PASSWORD,
    SCRAM256_USER,
    SCRAM_PASSWORD,
    SecuredKafka,
    logs_in,
    secured_kafka,
)
from tests.integration.support import REPO, Labels, WorkerProcess, scrape, wait_until

CLI = (sys.executable, "-m", "streams.tools.cli")
CONFIG_FILE = REPO / "deploy/examples/kpimon.yaml"
READ_COUNTERS = ("kpimon_events_total", "kpimon_events_duplicate_total", "kpimon_events_rejected_total")
SIMULATED = 300
REPLAYED = 4
Samples = Mapping[str, Mapping[Labels, float]]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    with secured_kafka(tmp_path_factory.mktemp("secured-kafka")) as broker:
        yield broker


def read_from_sources(samples: Samples, name: str) -> float:
    """A read counter without the events the worker sent itself (INTERNAL_TYPES, from its re-keyed topic)."""
    return sum(
        value for labels, value in samples.get(name, {}).items() if dict(labels).get("type") not in INTERNAL_TYPES
    )


def kpimon(*args: str, env: Mapping[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(
    ("mechanism", "user", "password"),
    [("SCRAM-SHA-256", SCRAM256_USER, SCRAM256_PASSWORD), ("PLAIN", PLAIN_USER, PLAIN_PASSWORD)],
)
def test_other_mechanisms_log_in_with_the_same_options(
    kafka: SecuredKafka, mechanism: str, user: str, password: str
) -> None:
    security = kafka.security(sasl_mechanism=mechanism, sasl_username=user, sasl_password=password)
    assert asyncio.run(logs_in(kafka.bootstrap, security))
    assert not asyncio.run(logs_in(kafka.bootstrap, kafka.security(ssl_certfile=None, ssl_keyfile=None)))


def test_worker_simulate_and_replay_count_every_event_over_sasl_ssl(
    kafka: SecuredKafka, tmp_path: Path, worker_env: dict[str, str], make_worker: Callable[..., WorkerProcess]
) -> None:
    env = {**worker_env, **kafka.env(tmp_path / "kafka-password"), "KPIMON_CONFIG_FILE": str(CONFIG_FILE)}
    worker = make_worker(**env)
    worker.start()

    simulated = kpimon("simulate", "--total", str(SIMULATED), "--rate", "500", env=env)
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    match = re.search(r"done, ([\d,]+) events produced", simulated.stdout)
    assert match and int(match.group(1).replace(",", "")) == SIMULATED, simulated.stdout

    now = time.time()
    calls = [
        {
            "event_id": f"secured-call-{index}",
            "type": "call.logged",
            "occurred_at": datetime.fromtimestamp(now - 60 * (index + 1), UTC).isoformat(),
            "source": "csv",
            "rep_id": "emea-anna",
            "duration_seconds": 60 * (index + 1),
            "outcome": "connected",
        }
        for index in range(REPLAYED)
    ]
    source = tmp_path / "calls.jsonl"
    source.write_bytes(b"".join(orjson.dumps(call) + b"\n" for call in calls))
    replayed = kpimon("replay", str(source), env=env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr

    seen: list[float] = []

    def read_everything() -> bool:
        samples = scrape(worker.port)
        seen.append(sum(read_from_sources(samples, name) for name in READ_COUNTERS))
        return seen[-1] >= SIMULATED + REPLAYED and seen[-2:] == [seen[-1]] * 2

    wait_until(read_everything, timeout=90, message=lambda: f"{SIMULATED + REPLAYED} read, saw {seen[-3:]}")
    assert seen[-1] == SIMULATED + REPLAYED
    log = worker.log_path.read_text()
    assert SCRAM_PASSWORD not in log + simulated.stdout + simulated.stderr + replayed.stdout + replayed.stderr


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"KPIMON_KAFKA_SASL_PASSWORD_FILE": None, "KPIMON_KAFKA_SASL_PASSWORD": "wrong-pw-31f"},
            "refused the login",
        ),
        ({"KPIMON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}, "refused the login"),
        ({"KPIMON_KAFKA_SSL_CAFILE": "other_ca"}, "the broker's certificate is not trusted"),
    ],
)
def test_a_refused_connection_says_what_to_fix(
    kafka: SecuredKafka,
    tmp_path: Path,
    worker_env: dict[str, str],
    change: dict[str, str | None],
    says: str,
) -> None:
    env: dict[str, str] = {**worker_env, **kafka.env(tmp_path / "kafka-password")}
    for name, value in change.items():
        if value is None:
            del env[name]
        else:
            env[name] = str(kafka.pki.other_ca) if value == "other_ca" else value
    for command in (("worker",), ("simulate", "--total", "1")):
        result = kpimon(*command, env=env)
        assert result.returncode == 3, (command, result.stdout, result.stderr)
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith(f"kpimon: cannot connect to Kafka at {kafka.bootstrap} with SASL_SSL"), last_line
        assert says in last_line, last_line
        fix = "KPIMON_KAFKA_SSL_CAFILE" if "certificate" in says else "KPIMON_KAFKA_SASL_PASSWORD"
        assert fix in last_line, last_line
        assert "wrong-pw-31f" not in result.stdout + result.stderr
        assert SCRAM_PASSWORD not in result.stdout + result.stderr
