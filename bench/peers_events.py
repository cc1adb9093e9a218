"""The events of a peers run (bench/peers.py): activity events of R reps in T teams, produced to a fresh topic.

Valid contract events (the first ones are checked with ``parse_event`` before anything is produced), each
with a unique ``event_id``, their event times rising evenly through the two hours before the run.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench.throughput import EVENT_SPAN_SECONDS, Phase, cpu_jiffies, machine_cpu, produce_events
from schemas.config import load_config
from schemas.events import parse_event
from streams.worker.topics import ensure_topics
from tests.integration.support import BOOTSTRAP

ACTIVITY_MIX = {  # share of each type, about a rep's day (see streams/tools/simulation/world.py)
    "call.logged": 35,
    "email.sent": 40,
    "email.replied": 8,
    "meeting.booked": 7,
    "meeting.held": 6,
    "demo.completed": 4,
}
TIME_ZONES = ("Europe/Berlin", "America/New_York", "Asia/Singapore", "America/Los_Angeles", "Asia/Tokyo")
SOURCE = "bench"
CHUNK_EVENTS = 5_000  # events generated and produced at once
SELF_CHECK_EVENTS = 200  # the first events are validated against the contract before producing


@dataclass(frozen=True)
class Roster:
    """Teams (with their time zones) and reps (with their team)."""

    teams: dict[str, str]
    reps: dict[str, str]


def make_roster(reps: int, teams: int) -> Roster:
    """``reps`` reps dealt round-robin to ``teams`` teams (fewer teams if there are fewer reps)."""
    team_ids = [f"team-{number}" for number in range(1, min(reps, teams) + 1)]
    zones = dict(zip(team_ids, itertools.cycle(TIME_ZONES), strict=False))
    width = len(str(reps))
    members = {f"rep-{number:0{width}d}": team_ids[number % len(team_ids)] for number in range(reps)}
    return Roster(zones, members)


def write_config(roster: Roster, path: Path) -> Path:
    """A kpimon config file (like deploy/examples/kpimon.yaml) with the roster; checked by kpimon's loader."""
    config = {
        "timezone": "UTC",
        "teams": {team: {"name": team, "timezone": zone} for team, zone in roster.teams.items()},
        "reps": {rep: {"team": team} for rep, team in roster.reps.items()},
        "reporting_currency": "EUR",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    load_config(path)
    return path


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def activity_fields(kind: str, rng: random.Random, reps: int) -> dict[str, Any]:
    """The fields of one activity type beyond the envelope."""
    if kind == "call.logged":
        outcome = rng.choices(("connected", "no_answer", "voicemail"), (35, 45, 20))[0]
        return {"duration_seconds": round(rng.expovariate(1 / 180), 1), "outcome": outcome}
    if kind in ("email.sent", "email.replied"):
        return {"contact_id": f"contact-{rng.randrange(reps * 50)}"}
    if kind in ("meeting.booked", "meeting.held"):
        return {"meeting_id": f"meeting-{rng.randrange(reps * 20)}"}
    return {}  # demo.completed: the deal is optional


def activity_chunks(roster: Roster, events: int, seed: int, end: float, id_prefix: str) -> Iterator[list[Any]]:
    """Exactly ``events`` activity events, event times rising through the two hours before ``end``, in chunks."""
    rng, reps = random.Random(seed), list(roster.reps)
    kinds, weights = list(ACTIVITY_MIX), list(ACTIVITY_MIX.values())
    step, start = EVENT_SPAN_SECONDS / events, end - EVENT_SPAN_SECONDS
    for first in range(0, events, CHUNK_EVENTS):
        chunk = []
        for number in range(first, min(events, first + CHUNK_EVENTS)):
            kind, rep = rng.choices(kinds, weights)[0], rng.choice(reps)
            event = {
                "event_id": f"{id_prefix}-{number}",
                "type": kind,
                "occurred_at": rfc3339(start + (number + rng.random()) * step),
                "source": SOURCE,
                "team": roster.reps[rep],
                "rep_id": rep,
                **activity_fields(kind, rng, len(reps)),
            }
            chunk.append(("crm", event))
        yield chunk


def checked(chunks: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """Validate the first events against the contract (a mistake here would make kpimon reject them all)."""
    for number, chunk in enumerate(chunks):
        if number == 0:
            for _, event in chunk[:SELF_CHECK_EVENTS]:
                parse_event(orjson.dumps(event))
        yield chunk


def source_topics(prefix: str) -> dict[str, str]:
    """The run's topics: events go to crm; the empty marketing topic is there for the kpimon worker."""
    return {"crm": f"{prefix}.crm", "marketing": f"{prefix}.marketing"}


async def produce(prefix: str, roster: Roster, events: int, partitions: int, seed: int) -> Phase:
    """Create the run's topics and produce the events to them."""
    topics = source_topics(prefix)
    await ensure_topics(BOOTSTRAP, list(topics.values()), partitions)
    print(f"producing {events:,} activity events of {len(roster.reps):,} reps to {topics['crm']}", flush=True)
    before = cpu_jiffies()
    chunks = checked(activity_chunks(roster, events, seed, time.time() - 1, prefix))
    phase = await produce_events(topics, events, seed, chunks)
    phase.extra["machine_cpu"] = machine_cpu(before, cpu_jiffies())
    return phase
