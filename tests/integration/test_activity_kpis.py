"""A known event set through a real worker: every activity KPI on /metrics, exactly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.catalog import WINDOW_NAMES, load_catalog
from streams.worker.pipeline import partition_of
from tests.integration.support import (
    Labels,
    Message,
    WorkerProcess,
    consume_all,
    event_message,
    produce,
    run,
    scrape,
    total,
    wait_until,
)

CONFIG = """\
timezone: UTC
currency_rates: {EUR: 1.1}
teams:
  emea: {timezone: Europe/Berlin}
  amer: {timezone: America/New_York}
reps:
  bob: {team: emea}
  carol: {team: amer}
"""
TEAM_TZ = {"emea": "Europe/Berlin", "amer": "America/New_York", "unassigned": "UTC"}
REP_TEAM = {"alice": "emea", "bob": "emea", "carol": "amer", "dave": "unassigned"}
PARTITIONS = 4
MAX_EVENT_BYTES = 4096

# (minutes before now, rep, type, extra fields): away from every window edge but "today".
ACTIVITY = [
    (10, "alice", "call.logged", {"duration_seconds": 120, "outcome": "connected"}),
    (12, "alice", "call.logged", {"duration_seconds": 30, "outcome": "no_answer"}),
    (30, "bob", "call.logged", {"duration_seconds": 300, "outcome": "connected"}),
    (45, "carol", "email.sent", {"contact_id": "c1"}),
    (50, "carol", "email.sent", {"contact_id": "c2"}),
    (55, "carol", "email.replied", {"contact_id": "c1"}),
    (20, "dave", "meeting.booked", {"meeting_id": "m1"}),
    (180, "alice", "meeting.held", {"meeting_id": "m0"}),
    (200, "bob", "demo.completed", {"deal_id": "d1"}),
    (190, "alice", "email.sent", {"contact_id": "c3"}),
    (30 * 60, "carol", "call.logged", {"duration_seconds": 60, "outcome": "voicemail"}),
    (2 * 24 * 60, "bob", "email.replied", {"contact_id": "c9"}),
    (5 * 24 * 60, "alice", "call.logged", {"duration_seconds": 90, "outcome": "connected"}),
]
MARKETING = [
    (15, "content.published", {"channel": "blog", "content_id": "p1"}),
    (25, "social.posted", {"channel": "linkedin", "content_id": "s1", "team": "emea"}),
    (26, "social.posted", {"channel": "linkedin", "content_id": "s2"}),
    (240, "campaign.launched", {"channel": "email", "campaign_id": "k1", "budget": "1500.00", "currency": "EUR"}),
    (35, "email_campaign.sent", {"campaign_id": "k1", "recipients": 250}),
    (3 * 24 * 60, "email_campaign.sent", {"campaign_id": "k0", "recipients": 40}),
    (60 * 24, "lead.created", {"lead_id": "l1", "channel": "social", "campaign_id": "k1"}),
]
COUNTERS = {
    "call.logged": lambda e: {
        "calls": 1,
        "call_duration_seconds": e["duration_seconds"],
        "calls_connected": 1 if e["outcome"] == "connected" else 0,
    },
    "email.sent": lambda e: {"emails_sent": 1},
    "email.replied": lambda e: {"email_replies": 1},
    "meeting.booked": lambda e: {"meetings_booked": 1},
    "meeting.held": lambda e: {"meetings_held": 1},
    "demo.completed": lambda e: {"demos_completed": 1},
    "content.published": lambda e: {"content_published": 1},
    "social.posted": lambda e: {"social_posts": 1},
    "campaign.launched": lambda e: {"campaigns_launched": 1},
    "email_campaign.sent": lambda e: {"email_campaign_sends": e["recipients"]},
    "lead.created": lambda e: {"leads": 1},  # one lead, one creation event: counted once
}


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def _activity_events(now: float) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for index, (minutes, rep, kind, extra) in enumerate(ACTIVITY):
        event = {"event_id": f"a{index}", "type": kind, "occurred_at": _iso(now - minutes * 60)}
        event |= {"source": "test", "rep_id": rep, **extra}
        if rep == "alice":
            event["team"] = "emea"
        events.append(event)
    for index, (minutes, kind, extra) in enumerate(MARKETING):
        event = {"event_id": f"m{index}", "type": kind, "occurred_at": _iso(now - minutes * 60), "source": "test"}
        events.append(event | extra)
    return events


Scope = tuple[str, str, str, str, str]  # kind, team, rep, channel, campaign


def _scopes(event: dict[str, object]) -> list[Scope]:
    """(scope kind, team, rep, channel, campaign), computed from the test's own roster."""
    scopes = [("all", "", "", "", "")]
    rep = event.get("rep_id")
    team = event.get("team") or (REP_TEAM[str(rep)] if rep else None)
    if rep:
        scopes.append(("rep", str(team), str(rep), "", ""))
    if team:
        scopes.append(("team", str(team), "", "", ""))
    if event.get("channel"):
        scopes.append(("channel", "", "", str(event["channel"]), ""))
    if event.get("campaign_id"):
        scopes.append(("campaign", "", "", "", str(event["campaign_id"])))
    return scopes


def _labels(scope: Scope, window: str) -> Labels:
    kind, team, rep, channel, campaign = scope
    return (
        ("campaign", campaign),
        ("channel", channel),
        ("rep", rep),
        ("scope", kind),
        ("team", team),
        ("window", window),
    )


def _in_window(window: str, occurred: float, now: float, team: str) -> bool:
    """Rolling windows end at ``now``; calendar ones start at a local midnight of the scope's zone."""
    if window in ("1h", "24h", "7d"):
        length = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}[window]
        return now - length < occurred <= now
    tz = ZoneInfo(TEAM_TZ.get(team, "UTC"))
    today = datetime.fromtimestamp(now, tz).date()
    first_day = {
        "today": today,
        "30d": today - timedelta(days=29),
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
        "quarter": today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1),
    }[window]
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=tz)
    return start.timestamp() <= occurred <= now


def expected_kpis(events: Iterable[dict[str, object]], now: float) -> dict[tuple[str, Labels], float]:
    sums: dict[tuple[Scope, str], dict[str, float]] = {}
    known: set[Scope] = set()
    for event in events:
        occurred = datetime.fromisoformat(str(event["occurred_at"])).timestamp()
        counters: Callable[[dict[str, object]], dict[str, float]] = COUNTERS.get(str(event["type"]), lambda e: {})
        deltas = counters(event)
        if not deltas:
            continue
        for scope in _scopes(event):
            known.add(scope)
            for window in WINDOW_NAMES:
                if _in_window(window, occurred, now, scope[1]):
                    window_sums = sums.setdefault((scope, window), {})
                    for name, delta in deltas.items():
                        window_sums[name] = window_sums.get(name, 0) + delta
    expected: dict[tuple[str, Labels], float] = {}
    for kpi in load_catalog().kpis:
        for scope in known:
            if scope[0] not in kpi.scopes:
                continue
            for window in kpi.windows:
                value = kpi.formula.evaluate(sums.get((scope, window), {}))
                if value is not None:
                    expected[(kpi.metric, _labels(scope, window))] = value
    return expected


def invalid_messages(topic: str, now: float) -> dict[str, bytes]:
    valid_call = {
        "event_id": "bad",
        "type": "call.logged",
        "occurred_at": _iso(now),
        "source": "test",
        "rep_id": "alice",
        "duration_seconds": 5,
        "outcome": "connected",
    }
    return {
        "invalid_json": b'{"event_id": "x1", "type": ',
        "unknown_type": orjson.dumps(valid_call | {"event_id": "x2", "type": "call.teleported"}),
        "missing_field": orjson.dumps({k: v for k, v in valid_call.items() if k != "rep_id"} | {"event_id": "x3"}),
        "naive_timestamp": orjson.dumps(valid_call | {"event_id": "x4", "occurred_at": "2026-01-05T10:00:00"}),
        "out_of_range": orjson.dumps(valid_call | {"event_id": "x5", "duration_seconds": -3}),
        "too_large": orjson.dumps(valid_call | {"event_id": "x6", "attributes": {"blob": "z" * MAX_EVENT_BYTES}}),
    }


@pytest.mark.integration
def test_activity_kpis_exact_with_duplicates_late_and_invalid_input(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    config_path = tmp_path / "kpimon.yaml"
    config_path.write_text(CONFIG)
    crm, marketing, deadletter = (
        worker_env["KPIMON_CRM_TOPIC"],
        worker_env["KPIMON_MARKETING_TOPIC"],
        worker_env["KPIMON_DEADLETTER_TOPIC"],
    )
    now = time.time()
    events = _activity_events(now)
    topic_of = {str(e["event_id"]): (marketing if str(e["event_id"]).startswith("m") else crm) for e in events}
    messages = [event_message(topic_of[str(e["event_id"])], e) for e in reversed(events)]  # out of order
    by_id = {str(e["event_id"]): e for e in events}
    duplicates = [
        event_message(crm, by_id["a0"]),  # the same message again, a later offset
        event_message(marketing, by_id["a2"]),  # the same event_id on the other topic
        event_message(crm, by_id["m1"], key="m1"),
    ]
    rekeyed = {"event_id": "rk1", "type": "call.logged", "occurred_at": _iso(now - 300), "source": "test"}
    rekeyed |= {"rep_id": "bob", "duration_seconds": 45, "outcome": "connected"}
    wrong_key = next(f"k{n}" for n in range(100) if partition_of(f"k{n}", PARTITIONS) != partition_of("rk1", 4))
    routed = [event_message(crm, rekeyed, key=wrong_key), event_message(crm, rekeyed)]  # the 2nd is a duplicate
    late_id = next(
        f"late{n}" for n in range(100) if partition_of(f"late{n}", PARTITIONS) == partition_of("a0", PARTITIONS)
    )
    late = {"event_id": late_id, "type": "call.logged", "occurred_at": _iso(now - 900 * 86400), "source": "test"}
    late |= {"rep_id": "alice", "duration_seconds": 10, "outcome": "connected"}
    invalid = invalid_messages(crm, now)
    invalid_messages_out = [Message(crm, raw, f"bad-{reason}".encode()) for reason, raw in invalid.items()]

    worker = make_worker(KPIMON_CONFIG_FILE=str(config_path), KPIMON_MAX_EVENT_BYTES=str(MAX_EVENT_BYTES))
    worker.start()
    run(produce([*messages, *duplicates, *routed, *invalid_messages_out]))
    run(produce([event_message(crm, late)]))  # after a0 in the same partition: beyond the longest retention (800 days)

    counted_events = [*events, rekeyed]
    wait_until(
        lambda: (
            (s := scrape(worker.port))
            and total(s, "kpimon_events_total") == len(counted_events) + 1  # and l1's view sent to its person
            and total(s, "kpimon_events_duplicate_total") == len(duplicates) + 1
            and total(s, "kpimon_events_rejected_total") == len(invalid)
            and total(s, "kpimon_events_late_dropped_total") == 1
        ),
        timeout=60,
        message="the worker to count every message",
    )
    samples = scrape(worker.port)
    assert samples["kpimon_events_rejected_total"] == {(("reason", r),): 1.0 for r in invalid}
    expected = expected_kpis(counted_events, time.time())
    actual = {
        (name, labels): value
        for name, series in samples.items()
        if name in {kpi.metric for kpi in load_catalog().kpis}
        for labels, value in series.items()
    }
    missing, extra = sorted(set(expected) - set(actual))[:5], sorted(set(actual) - set(expected))[:5]
    assert actual == pytest.approx(expected, abs=1e-9), f"missing {missing}, unexpected {extra}"
    # spot checks by hand, so a shared mistake in the expectation cannot hide
    rep_alice_24h = _labels(("rep", "emea", "alice", "", ""), "24h")
    assert actual[("kpimon_calls", rep_alice_24h)] == 2
    assert actual[("kpimon_call_duration_seconds", rep_alice_24h)] == 150
    overall_1h = _labels(("all", "", "", "", ""), "1h")
    assert actual[("kpimon_calls", overall_1h)] == 4  # a0, a1, a2 and the re-keyed rk1
    assert actual[("kpimon_email_response_ratio", overall_1h)] == 0.5
    assert actual[("kpimon_email_campaign_sends", overall_1h)] == 250
    k1 = ("campaign", "", "", "", "k1")  # k0's 40 recipients, three days ago, are not in the last 24h
    assert (
        actual[("kpimon_email_campaign_sends", _labels(k1, "24h"))],
        actual[("kpimon_leads", _labels(k1, "7d"))],
    ) == (250, 1)

    dead = run(consume_all(deadletter, expected=len(invalid)))
    assert isinstance(dead, list) and len(dead) == len(invalid)
    by_reason = {dict(r.headers)["kpimon-reason"].decode(): r for r in dead}
    assert set(by_reason) == set(invalid)
    for reason, record in by_reason.items():
        headers = dict(record.headers)
        assert record.value == invalid[reason]
        assert record.key == f"bad-{reason}".encode()
        assert headers["kpimon-source-topic"].decode() == crm
        assert int(headers["kpimon-source-partition"]) in range(PARTITIONS)
        assert int(headers["kpimon-source-offset"]) >= 0
        assert headers["kpimon-detail"]


@pytest.mark.integration
def test_today_uses_the_team_time_zone() -> None:
    """The expectation helper itself: 'today' starts at the team's local midnight."""
    berlin_noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC).timestamp()  # 12:00 in Berlin
    assert _in_window("today", berlin_noon - 11 * 3600, berlin_noon, "emea")
    assert not _in_window("today", berlin_noon - 13 * 3600, berlin_noon, "emea")
    assert not _in_window("today", berlin_noon - 7 * 3600 + timedelta(minutes=1).total_seconds(), berlin_noon, "amer")
