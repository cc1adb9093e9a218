"""The demo's history (streams.tools.simulation.history): pure, stable ids, resumable, ordered, realistic volumes."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.config import KpimonConfig, RepConfig, TeamConfig, load_config
from schemas.events import EVENT_TYPES, parse_event
from streams.tools.cli import build_parser
from streams.tools.simulation.history import (
    DAY,
    HISTORY_DELAY_HOURS,
    MAX_FOLLOW_UP_SECONDS,
    History,
    history_start,
    simulated_time,
)
from streams.tools.simulation.live import Simulation
from streams.tools.simulation.model import (
    CHURN_RATE,
    CONTRACTION_RATE,
    EXPANSION_RATE,
    NEW_DEAL_STAGE,
    RETURN_RATE,
    SEASON_HIGH_MONTH,
    SEASON_SWING,
    SEATS,
    SOURCE,
    STAGE_ENTRY_SECONDS,
    STAGES,
    EventDict,
    SimulatedEvent,
    message,
)
from streams.tools.simulation.producer import history_plan_line, history_progress_line
from tests.unit.tools.funnel_order import funnel_times, occurred

# Monday 7 December 2026, 10:41:12.5 UTC: 11:41 in Berlin, 05:41 in New York, 18:41 in Singapore
NOW = datetime(2026, 12, 7, 10, 41, 12, 500_000, tzinfo=UTC).timestamp()
HISTORY_DAYS = 35
WORKING_DAYS = 25  # Mon 2 Nov .. Fri 4 Dec, and Monday 7 Dec: 5 weeks of 5, in every team's zone
DEMO_REPS = 12


@pytest.fixture(scope="module")
def history() -> list[SimulatedEvent]:
    return History(KpimonConfig(), seed=1).events_between(NOW - HISTORY_DAYS * DAY, NOW)


def test_the_same_seed_gives_the_same_events_with_the_same_ids_and_another_seed_others() -> None:
    window = (NOW - 2 * DAY, NOW - DAY)
    first = History(KpimonConfig(), seed=1).events_between(*window)
    assert first == History(KpimonConfig(), seed=1).events_between(*window)
    assert first != History(KpimonConfig(), seed=2).events_between(*window)
    ids = [event["event_id"] for _, event in first]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"sim-1-2026(11|12)\d\d-[a-z.-]+-\d+", event_id) for event_id in ids)  # day of the root


@pytest.mark.parametrize(
    "cuts",
    [
        [NOW - 10 * DAY, NOW - 3 * DAY, NOW],  # resumed a week later, with deals opened before the first part
        [NOW - 3 * DAY, NOW - 2.5 * DAY, NOW - 2.5 * DAY + 0.001, NOW - DAY, NOW],  # mid-day and a millisecond
        [NOW - 2 * DAY + step * 3600.25 for step in range(7)],  # hour by hour
    ],
)
def test_windows_produced_one_after_the_other_give_what_one_window_gives(cuts: list[float]) -> None:
    """Where a second run resumes makes no difference: nothing is lost or made twice, ids included."""
    whole = History(KpimonConfig(), seed=3).events_between(cuts[0], cuts[-1])
    one_run = History(KpimonConfig(), seed=3)
    windows = list(itertools.pairwise(cuts))
    assert [event for start, end in windows for event in one_run.events_between(start, end)] == whole
    runs = [History(KpimonConfig(), seed=3).events_between(start, end) for start, end in windows]  # one per run
    assert [event for events in runs for event in events] == whole


def test_events_are_in_event_time_order_so_each_routing_key_is(history: list[SimulatedEvent]) -> None:
    times = [occurred(event) for _, event in history]
    assert times == sorted(times)
    assert times[0] >= NOW - HISTORY_DAYS * DAY and times[-1] < NOW
    last_by_key: dict[bytes, float] = {}
    for (_, event), moment in zip(history, times, strict=True):
        key = message(event)[0]
        assert last_by_key.get(key, moment) <= moment, key
        last_by_key[key] = moment
    assert sum(key.startswith(b"deal:") for key in last_by_key) > 100  # deals' events share their key


def test_every_event_validates_and_names_the_simulator(history: list[SimulatedEvent]) -> None:
    for _, event in history:
        assert parse_event(orjson.dumps(event)).source == SOURCE
    renewals = {"subscription.renewed"}  # the demo's subscriptions change or churn within weeks: none renews
    derived = {"lead.converted", "lead.deal_closed", "contact.lead_updated"}  # the worker sends these itself
    assert {event["type"] for _, event in history} == set(EVENT_TYPES) - renewals - derived


def test_a_rep_logs_the_asked_calls_per_working_day_and_rests_at_night_and_on_weekends(
    history: list[SimulatedEvent],
) -> None:
    config = History(KpimonConfig(), seed=1).config
    calls = [event for _, event in history if event["type"] == "call.logged"]
    per_rep = Counter(event["rep_id"] for event in calls)
    assert len(per_rep) == DEMO_REPS
    for rep, count in per_rep.items():
        assert 0.8 * 20 * WORKING_DAYS <= count <= 1.2 * 20 * WORKING_DAYS, rep
    for event in calls:
        local = datetime.fromtimestamp(occurred(event), config.timezone_of(str(event["team"])))
        assert local.weekday() < 5 and 8 <= local.hour < 18, event


def test_volume_scales_with_the_calls_asked_except_spend(history: list[SimulatedEvent]) -> None:
    kinds = Counter(event["type"] for _, event in history)
    assert 35_000 < len(history) < 60_000  # ~45,000: 1,300 a day for the 12 demo reps
    assert 0.9 * 640 * HISTORY_DAYS < kinds["web.session"] < 1.1 * 640 * HISTORY_DAYS
    assert 0.85 * 38 * HISTORY_DAYS < kinds["lead.created"] < 1.15 * 38 * HISTORY_DAYS
    half = Counter(
        event["type"]
        for _, event in History(KpimonConfig(), seed=1, calls_per_day=10).events_between(NOW - 14 * DAY, NOW)
    )
    full = Counter(event["type"] for _, event in history if occurred(event) >= NOW - 14 * DAY)
    for kind in ("call.logged", "email.sent", "web.session", "lead.created"):
        assert 0.4 < half[kind] / full[kind] < 0.6, kind
    assert 0.8 < half["spend.recorded"] / full["spend.recorded"] < 1.25  # money per day, not volume


def test_leads_of_past_weeks_convert_and_deals_opened_weeks_ago_close_in_the_last_days(
    history: list[SimulatedEvent],
) -> None:
    events = [event for _, event in history]
    recent_wins = [event for event in events if event["type"] == "deal.won" and occurred(event) >= NOW - 3 * DAY]
    assert recent_wins
    assert any(occurred({"occurred_at": won["opened_at"]}) < NOW - 14 * DAY for won in recent_wins)
    month = [event for event in events if occurred(event) >= NOW - 30 * DAY]
    won = sum(event["type"] == "deal.won" for event in month)
    lost = sum(event["type"] == "deal.lost" for event in month)
    assert won >= 20 and 0.15 < won / (won + lost) < 0.45
    assert {"spend.recorded", "email.clicked", "campaign.launched"} <= {event["type"] for event in month}


def test_follow_ups_come_after_their_roots_within_the_longest_delay(history: list[SimulatedEvent]) -> None:
    first_seen = funnel_times(history, began_earlier=True)  # the first days follow leads of before the history
    stages, close = HISTORY_DELAY_HOURS["stage"], HISTORY_DELAY_HOURS["close"]
    closed = [event for _, event in history if event["type"] in ("deal.won", "deal.lost")]
    cycles = [
        occurred(event) - first_seen["deal", event["deal_id"]]
        for event in closed
        if ("deal", event["deal_id"]) in first_seen
    ]
    assert len(cycles) > 50
    longest = 3600 * (2 * stages[1] + close[1]) + STAGE_ENTRY_SECONDS  # entered the first stage, then two moves
    assert all(3600 * close[0] <= cycle <= longest for cycle in cycles)
    assert max(MAX_FOLLOW_UP_SECONDS.values()) == MAX_FOLLOW_UP_SECONDS["lead.created"] < 50 * DAY


@pytest.mark.parametrize(
    ("produced_until", "start"),
    [
        (None, NOW - 35 * DAY),  # nothing of this seed on the topics: the whole history
        (NOW - 40 * DAY, NOW - 35 * DAY),  # older than the history asked for: the whole history
        (NOW - 3600.0, NOW - 3600.0 + 0.001),  # an earlier run stopped an hour ago: from just after it
        (NOW - 0.0005, NOW),  # it stopped just now: nothing left
        (NOW + 60.0, NOW),  # ahead of this clock: nothing
    ],
)
def test_the_history_resumes_after_what_the_topics_hold(produced_until: float | None, start: float) -> None:
    assert history_start(NOW, 35 * DAY, produced_until) == pytest.approx(start, abs=1e-6)


def test_the_resume_point_is_the_newest_event_of_the_seed() -> None:
    event = {"event_id": "sim-1-20261207-web-4", "occurred_at": "2026-12-07T10:41:12.500Z", "source": SOURCE}
    assert simulated_time(orjson.dumps(event), seed=1) == NOW
    live = {**event, "event_id": "sim-1-20261207T104112500-3"}
    assert simulated_time(orjson.dumps(live), seed=1) == NOW
    assert simulated_time(orjson.dumps(event), seed=11) is None  # another seed's world
    assert simulated_time(orjson.dumps({**event, "event_id": "sim-1-20261207"}), seed=1) is None  # before --history
    assert simulated_time(orjson.dumps({**event, "source": "hubspot"}), seed=1) is None
    assert simulated_time(orjson.dumps({**event, "occurred_at": "2026-12-07T10:41:12"}), seed=1) is None
    assert simulated_time(b"not json", seed=1) is None


def test_live_runs_never_share_ids_with_each_other_or_the_history() -> None:
    first = Simulation(KpimonConfig(), seed=1, rate=20).events_between(NOW, NOW + 60)
    second = Simulation(KpimonConfig(), seed=1, rate=20).events_between(NOW + 120, NOW + 180)
    past = History(KpimonConfig(), seed=1).events_between(NOW - DAY, NOW + 180)
    ids = [[event["event_id"] for _, event in events] for events in (first, second, past)]
    assert ids[0][0] == "sim-1-20261207T104112500-0"
    assert not set(ids[0]) & set(ids[1]) and not (set(ids[0]) | set(ids[1])) & set(ids[2])
    entities = defaultdict(set)
    for index, events in enumerate((first, second)):
        entities[index] = {event["lead_id"] for _, event in events if event["type"] == "lead.created"}
    assert entities[0] and not entities[0] & entities[1]


def test_progress_and_plan_lines_say_what_happens() -> None:
    assert history_progress_line(12_345, NOW - 22 * DAY, NOW - 35 * DAY, NOW, 1.25) == (
        "simulate: history 12,345 events, simulated day 2026-11-15 (14 of 35), 9,876 events/s"
    )
    assert history_plan_line(1, NOW, 35 * DAY, None, NOW - 35 * DAY) == (
        "simulate: history of 35 days, 2026-11-02 10:41:12 UTC to 2026-12-07 10:41:12 UTC "
        "(no events of seed 1 on the topics yet)"
    )
    assert history_plan_line(1, NOW, 35 * DAY, NOW - 3600, NOW - 3599.999) == (
        "simulate: history already produced up to 2026-12-07 09:41:12 UTC (the newest event of seed 1 on the "
        "topics); producing from there to 2026-12-07 10:41:12 UTC"
    )
    assert history_plan_line(1, NOW, 35 * DAY, NOW, NOW).endswith("nothing to add")
    assert "before the 35 days asked for" in history_plan_line(1, NOW, 35 * DAY, NOW - 40 * DAY, NOW - 35 * DAY)


def test_teams_work_in_their_own_zone() -> None:
    events = History(KpimonConfig(), seed=5).events_between(NOW - 7 * DAY, NOW)
    hours = defaultdict(set)
    for _, event in events:
        if event["type"] == "call.logged":
            zone = {"emea": "Europe/Berlin", "amer": "America/New_York", "apac": "Asia/Singapore"}[event["team"]]
            hours[event["team"]].add(datetime.fromtimestamp(occurred(event), ZoneInfo(zone)).hour)
    assert all(hours[team] <= set(range(8, 18)) and len(hours[team]) == 10 for team in hours)
    assert len(hours) == 3


def test_the_command_line_takes_the_history_as_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["simulate", "--history", "35d", "--history-calls", "12", "--duration", "2m"])
    assert (args.history, args.history_calls, args.duration) == (35 * DAY, 12.0, 120.0)
    assert build_parser().parse_args(["simulate"]).history == 0.0  # no history unless asked
    for wrong in (["--history", "35 days"], ["--history-calls", "0"], ["--rate", "-5"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["simulate", *wrong])
    assert "'35 days' is not a duration (use seconds or a number with s, m, h or d" in capsys.readouterr().err


def test_deals_move_through_the_example_configs_stages_and_wins_close_from_the_last(
    history: list[SimulatedEvent],
) -> None:
    """Every deal enters the first stage a second after its opening, then moves on in order; a win from the last."""
    known = load_config(Path(__file__).resolve().parents[3] / "deploy/examples/kpimon.yaml").labels.stages.known
    assert tuple(known) == STAGES
    opened: dict[str, float] = {}
    moves: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    closings: dict[str, tuple[str, float]] = {}
    for _, event in history:
        deal = str(event.get("deal_id"))
        if event["type"] == "opportunity.created":
            opened[deal] = occurred(event)
        elif event["type"] == "opportunity.stage_changed":
            moves[deal].append((event["from_stage"], event["to_stage"], occurred(event)))
        elif event["type"] in ("deal.won", "deal.lost"):
            closings[deal] = (event["type"], occurred(event))
    assert len(opened) > 100
    for deal, moment in opened.items():
        stages = [(from_stage, to_stage) for from_stage, to_stage, _ in moves[deal]]
        assert stages[0] == (NEW_DEAL_STAGE, STAGES[0]), deal
        assert moves[deal][0][2] == pytest.approx(moment + STAGE_ENTRY_SECONDS, abs=0.001)
        assert stages[1:] == list(itertools.pairwise(STAGES))[: len(stages) - 1], deal
        if deal in closings:
            outcome, closed = closings[deal]
            assert closed > moves[deal][-1][2]
            if outcome == "deal.won":
                assert stages[-1][1] == STAGES[-1], deal
    ended_in = Counter(moves[deal][-1][1] for deal, (outcome, _) in closings.items() if deal in opened)
    assert set(ended_in) == set(STAGES)  # losses happen in every stage: each stage has a win rate


YEAR = (datetime(2025, 1, 1, tzinfo=UTC).timestamp(), datetime(2026, 1, 1, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def year() -> list[EventDict]:
    """A year of one rep's world in UTC: ~4,700 self-serve signups (the default 20 calls a day)."""
    config = KpimonConfig(timezone="UTC", teams={"t": TeamConfig(timezone="UTC")}, reps={"t-a": RepConfig(team="t")})
    return [event for _, event in History(config, seed=7).events_between(*YEAR)]


def test_a_year_of_signups_peaks_in_the_high_month_by_the_configured_swing(year: list[EventDict]) -> None:
    """January has SEASON_SWING times the signups of July (both 31 days), within Poisson noise (~6% each month)."""
    signups = [event for event in year if event["type"] == "subscription.started" and "channel" in event]
    per_month = Counter(datetime.fromtimestamp(occurred(event), UTC).month for event in signups)
    assert len(per_month) == 12 and 4_000 < len(signups) < 5_400
    low_month = (SEASON_HIGH_MONTH + 5) % 12 + 1
    assert (SEASON_HIGH_MONTH, low_month) == (1, 7)
    assert per_month[1] / per_month[7] == pytest.approx(SEASON_SWING, abs=0.2)  # 0.2: ~2.5 standard deviations
    # April and October lie halfway on the cosine: about the year's mean month (per day, both 30 or 31 days)
    mean_per_day = len(signups) / 365
    for month, days in ((4, 30), (10, 31)):
        assert per_month[month] / days == pytest.approx(mean_per_day, rel=0.15), month


def test_a_year_of_subscriptions_churns_expands_contracts_and_comes_back_at_the_configured_rates(
    year: list[EventDict],
) -> None:
    """Counted over the signups of January to October, whose follow-ups (at most 45 days) all fall in the year."""
    october_end = datetime(2025, 11, 1, tzinfo=UTC).timestamp()
    started = {
        event["account_id"]: event["seats"]
        for event in year
        if event["type"] == "subscription.started" and "channel" in event and occurred(event) < october_end
    }
    assert MAX_FOLLOW_UP_SECONDS["subscription.started"] <= 45 * DAY
    changes = [event for event in year if event["type"] == "subscription.changed" and event["account_id"] in started]
    expanded = sum(event["seats"] > started[event["account_id"]] for event in changes)
    contracted = sum(event["seats"] < started[event["account_id"]] for event in changes)
    churned = {event["account_id"] for event in year if event["type"] == "subscription.churned"} & set(started)
    returned = [
        event
        for event in year
        if event["type"] == "subscription.started" and "channel" not in event and event["account_id"] in started
    ]
    signups = len(started)
    # a contraction by 0 seats (drawn 0 of seats - 1) sends nothing: 1 - mean(1 / seats) of them are sent
    sent_share = 1 - sum(1 / seats for seats in range(SEATS[0], SEATS[1] + 1)) / (SEATS[1] - SEATS[0] + 1)
    assert len(changes) == expanded + contracted  # every change moves seats
    assert expanded / signups == pytest.approx(EXPANSION_RATE, abs=0.025)  # binomial sd ~0.007
    assert contracted / signups == pytest.approx(CONTRACTION_RATE * sent_share, abs=0.015)
    assert len(churned) / signups == pytest.approx(CHURN_RATE, abs=0.025)
    assert len(returned) / len(churned) == pytest.approx(RETURN_RATE, abs=0.05)  # sd ~0.015
    assert {event["account_id"] for event in returned} <= churned
