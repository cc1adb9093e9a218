"""A flood of label values from one broken producer is bounded, visible in a metric, and changes no total.

100,000 web sessions, each naming a random campaign id and a random channel, and 20,000 calls by
random reps (about 118,000 distinct values in all) go through a real worker whose config caps
unknown campaigns and channels per partition and folds unknown reps. The /metrics page must hold
no more scopes of each kind than `kpimon check` prints for the config, at most the cap's campaigns
and channels (plus ``other``), count every session and call in the overall and team scopes, show
the folds in
``kpimon_labels_folded_total``, and stay under ``MAX_RSS_MIB`` of memory (the labels it keeps are
bounded, so its memory is too: a peak of 161 MiB in a run here).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from schemas.config import load_config
from streams.core.labels import LabelPolicy, most_scopes
from tests.integration.support import Labels, WorkerProcess, event_message, produce, run, scrape, total, wait_until

SESSIONS = 100_000
CALLS = 20_000
MAX_RSS_MIB = 600
PARTITIONS = 4
MAX_CAMPAIGNS = 20  # per partition
MAX_CHANNELS = 5
CONFIG = f"""\
teams:
  emea: {{timezone: Europe/Berlin}}
reps:
  ann: {{team: emea}}
labels:
  campaigns: {{max_unknown: {MAX_CAMPAIGNS}}}
  channels: {{known: [web, email], max_unknown: {MAX_CHANNELS}}}
  reps: {{unknown: fold}}
"""


def _events(crm: str, marketing: str) -> list[object]:
    rng = random.Random(13)
    now = time.time()
    messages = []
    for n in range(SESSIONS):
        session = {
            "event_id": f"s-{n}",
            "type": "web.session",
            "occurred_at": datetime.fromtimestamp(now - 3000 + n * 2500 / SESSIONS, UTC).isoformat(),
            "source": "flood",
            "visitor_id": f"v-{n}",
            "pageviews": 2,
            "duration_seconds": 10,
            "campaign_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "channel": rng.choice(["web", "email", *(f"ch-{rng.randrange(1000)}" for _ in range(3))]),
        }
        messages.append(event_message(marketing, session))
    for n in range(CALLS):
        call = {
            "event_id": f"c-{n}",
            "type": "call.logged",
            "occurred_at": datetime.fromtimestamp(now - 3000 + n * 2500 / CALLS, UTC).isoformat(),
            "source": "flood",
            "rep_id": "ann" if n % 10 == 0 else f"rep-{rng.getrandbits(64):x}",
            "team": "emea",
            "duration_seconds": 60,
            "outcome": "connected",
        }
        messages.append(event_message(crm, call))
    return messages


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def _by(samples: Mapping[str, Mapping[Labels, float]], name: str, scope: str, label: str) -> dict[str, float]:
    return {
        dict(labels)[label]: value
        for labels, value in samples.get(name, {}).items()
        if dict(labels)["scope"] == scope and dict(labels)["window"] == "24h"
    }


def test_a_hundred_thousand_random_labels_are_bounded_and_every_total_stays_exact(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "kpimon.yaml"
    config.write_text(CONFIG)
    env = {**worker_env, "KPIMON_PARTITIONS": str(PARTITIONS), "KPIMON_CONFIG_FILE": str(config)}
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    worker.start()
    try:
        run(produce(_events(env["KPIMON_CRM_TOPIC"], env["KPIMON_MARKETING_TOPIC"])))  # type: ignore[arg-type]
        wait_until(
            lambda: total(scrape(worker.port), "kpimon_events_total") == SESSIONS + CALLS,
            600,
            lambda: f"every event counted: {total(scrape(worker.port), 'kpimon_events_total')}",
        )
        samples = scrape(worker.port)
        rss_mib = _rss_mib(worker.process.pid)
    finally:
        worker.stop()
    assert rss_mib <= MAX_RSS_MIB

    campaigns = _by(samples, "kpimon_web_sessions", "campaign", "campaign")
    channels = _by(samples, "kpimon_web_sessions", "channel", "channel")
    assert 0 < len(set(campaigns) - {"other"}) <= PARTITIONS * MAX_CAMPAIGNS
    assert set(channels) - {"other"} <= {"web", "email"} | {f"ch-{n}" for n in range(1000)}
    assert len(set(channels) - {"other", "web", "email"}) <= PARTITIONS * MAX_CHANNELS
    assert sum(campaigns.values()) == SESSIONS == sum(channels.values())
    assert _by(samples, "kpimon_web_sessions", "all", "scope") == {"all": SESSIONS}

    reps = _by(samples, "kpimon_calls", "rep", "rep")
    assert reps == {"ann": CALLS / 10, "other": CALLS - CALLS / 10}
    assert _by(samples, "kpimon_calls", "team", "team") == {"emea": CALLS}

    folded = {dict(labels)["dimension"]: value for labels, value in samples["kpimon_labels_folded_total"].items()}
    assert folded["campaign"] == campaigns["other"]
    assert folded["channel"] == channels.get("other", 0)
    assert folded["rep"] == CALLS - CALLS / 10
    bounds = most_scopes(LabelPolicy.from_config(load_config(config)), PARTITIONS)  # what `kpimon check` prints
    scopes = {
        tuple(dict(labels).get(name, "") for name in ("scope", "team", "rep", "channel", "campaign"))
        for values in samples.values()
        for labels in values
        if dict(labels).get("scope") in bounds
    }
    for kind, bound in bounds.items():
        assert 0 < sum(1 for scope in scopes if scope[0] == kind) <= bound, kind
