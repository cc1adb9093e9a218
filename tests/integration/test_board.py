"""The board in a real Chromium, fed by a real worker through a real Prometheus.

For a known event set: every screen shows the values the worker's /metrics shows (and the
counts made by hand), a new event appears without reload within 2 s, a stopped worker turns
the tiles stale at once, a restarted board server is reconnected to by itself, every text has a
contrast of at least 4.5:1, nothing scrolls, and with two workers the board shows the sums over
both. Screenshots go to tests/screenshots/ (gitignored).
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.config import load_config
from schemas.events import routing_key_of
from streams.board.screens import SCREEN_IDS
from tests.integration.board_browser import (
    CONFIG_FILE,
    BoardProcess,
    chromium,
    elapsed_until,
    lowest_contrast,
    open_screen,
    screenshot,
    scrolls,
    shown_values,
    stale_flags,
    wait_for_values,
)
from tests.integration.prometheus_server import Prometheus
from tests.integration.support import Labels, WorkerProcess, event_message, produce, run, scrape, total, wait_until

CONFIG = load_config(CONFIG_FILE)
TEAM = "emea"
REPS = [rep for rep, settings in CONFIG.reps.items() if settings.team == TEAM]  # anna, lukas, sofia, jan
CALLS = {rep: 3 + n for n, rep in enumerate(REPS)}  # 3, 4, 5, 6
LEADS, MQLS, OPPORTUNITIES, WON = 6, 3, 3, 1  # and 1 lost (the last opportunity), 1 open (20,000)
WON_AMOUNT = 18_000.0
SPEND = 900.0
RECIPIENTS = 40
UPDATE_SECONDS = 2.0
ANNA = f"{CONFIG.reps[REPS[0]].name} (EMEA)"  # the rep of the funnel's won deal
Samples = dict[str, dict[Labels, float]]
Started = list[Any]  # processes the test started, stopped at its end


def board_prometheus_config(worker_ports: list[int]) -> Callable[[int], dict[str, Any]]:
    """deploy/prometheus/prometheus.demo.yml (1 s scrapes), scraping the test's workers."""

    def config(port: int) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load((CONFIG_FILE.parents[1] / "prometheus/prometheus.demo.yml").read_text())
        loaded["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{p}" for p in worker_ports]}]
        return loaded

    return config


def known_events(now: float, prefix: str) -> list[dict[str, Any]]:
    """Calls per rep; a funnel of 6 leads, 3 MQLs, 3 opportunities, 1 won, 1 lost; a spend; an email campaign."""
    events: list[dict[str, Any]] = []

    def event(kind: str, serial: str, seconds_ago: float = 30, **fields: Any) -> None:
        occurred_at = datetime.fromtimestamp(now - seconds_ago, UTC).isoformat()
        envelope = {"event_id": f"{prefix}-{serial}", "type": kind, "occurred_at": occurred_at, "source": "test"}
        events.append({**envelope, **fields})

    for rep, calls in CALLS.items():
        for n in range(calls):
            event("call.logged", f"call-{rep}-{n}", team=TEAM, rep_id=rep, duration_seconds=60, outcome="connected")
        event("email.sent", f"email-{rep}", team=TEAM, rep_id=rep, contact_id=f"c-{rep}")
        event("meeting.booked", f"meeting-{rep}", team=TEAM, rep_id=rep, meeting_id=f"m-{rep}")
    rep = REPS[0]
    for n in range(LEADS):
        event("lead.created", f"lead-{n}", 120, team=TEAM, lead_id=f"{prefix}-lead-{n}", channel="referral")
    for n in range(MQLS):
        event("lead.qualified", f"mql-{n}", 110, team=TEAM, lead_id=f"{prefix}-lead-{n}", stage="mql")
    for n in range(OPPORTUNITIES):
        deal = {"deal_id": f"{prefix}-deal-{n}", "lead_id": f"{prefix}-lead-{n}", "rep_id": rep, "team": TEAM}
        event("opportunity.created", f"opportunity-{n}", 90, **deal, amount=20_000, currency="EUR", channel="referral")
    event("deal.won", "won-0", 60, deal_id=f"{prefix}-deal-0", rep_id=rep, team=TEAM, amount=WON_AMOUNT, currency="EUR")
    event("deal.lost", "lost-2", 60, deal_id=f"{prefix}-deal-2", reason="budget")
    event("spend.recorded", "spend", 150, channel="referral", amount=SPEND, currency="EUR")
    event("email_campaign.sent", "sent", 200, campaign_id="spring", recipients=RECIPIENTS)
    for serial, kind, person in (("opened", "email.opened", "a"), ("clicked", "email.clicked", "a")):
        event(kind, serial, 190, campaign_id="spring", contact_id=f"{prefix}-{person}")
    event("email.bounced", "bounced", 190, campaign_id="spring", contact_id=f"{prefix}-b")
    return events


def event_at(now: float, event_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    occurred_at = datetime.fromtimestamp(now, UTC).isoformat()
    return {"event_id": event_id, "type": kind, "occurred_at": occurred_at, "source": "test", **fields}


def call(now: float, event_id: str, rep: str) -> dict[str, Any]:
    return event_at(now, event_id, "call.logged", team=TEAM, rep_id=rep, duration_seconds=60, outcome="connected")


def ticker_lines(driver: Any) -> list[str]:
    return driver.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll('.ticker li')].map((li) => li.textContent)"
    )


def summed(scrapes: list[Samples], name: str, **labels: str) -> float:
    """A series' value summed over the workers' /metrics (what Prometheus' sum gives)."""
    return sum(
        value
        for samples in scrapes
        for series, value in samples.get(name, {}).items()
        if all(dict(series).get(key) == wanted for key, wanted in labels.items())
    )


def has_series(samples: Samples, name: str, **labels: str) -> bool:
    return any(
        all(dict(series).get(key) == wanted for key, wanted in labels.items()) for series in samples.get(name, {})
    )


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def by_stage(scrapes: list[Samples], name: str, **labels: str) -> dict[str, float]:
    """A per-stage series summed over the workers, per stage."""
    stages = {
        dict(series)["stage"]
        for samples in scrapes
        for series in samples.get(name, {})
        if all(dict(series).get(key) == wanted for key, wanted in labels.items())
    }
    return {stage: summed(scrapes, name, **labels, stage=stage) for stage in stages}


def weighted_open_value(scrapes: list[Samples], overall_rate: float, **team: str) -> float:
    """Each stage's open value at the stage's 30-day win rate (of the deals closed from it), else the overall one."""
    won = by_stage(scrapes, "kpimon_deals_won_by_stage", **team, window="30d")
    lost = by_stage(scrapes, "kpimon_deals_lost_by_stage", **team, window="30d")
    opened = by_stage(scrapes, "kpimon_open_pipeline_value_by_stage", **team)
    rates = {stage: ratio(won.get(stage, 0), won.get(stage, 0) + lost.get(stage, 0)) for stage in {*won, *lost}}
    return sum(value * rates.get(stage, overall_rate) for stage, value in opened.items())


def expected_values(scrapes: list[Samples]) -> dict[str, dict[str, float]]:
    """Per screen, what the team's board must show: /metrics' values summed over the workers, ratios of sums."""

    def value(name: str, **labels: str) -> float:
        return summed(scrapes, name, **labels)

    team = {"scope": "team", "team": TEAM}
    everyone = {"scope": "all"}
    leads, mqls = value("kpimon_leads", **team, window="7d"), value("kpimon_mqls", **team, window="7d")
    opportunities = value("kpimon_opportunities_created", **team, window="7d")
    won_30d = value("kpimon_deals_won", **team, window="30d")
    win_rate = ratio(won_30d, won_30d + value("kpimon_deals_lost", **team, window="30d"))
    won = value("kpimon_deals_won", **team, window="7d")
    spend = value("kpimon_marketing_spend", **everyone, window="month")
    deliveries = value("kpimon_email_deliveries", **everyone, window="30d")
    return {
        "activity": {
            f"{rep}:{kpi}": value(f"kpimon_{kpi}", scope="rep", rep=rep, window="today")
            for rep in REPS
            for kpi in ("calls", "emails_sent", "meetings_booked", "demos_completed")
        },
        "funnel": {
            "leads": leads,
            "mqls": mqls,
            "opportunities_created": opportunities,
            "deals_won": won,
            "leads_to_mqls": ratio(mqls, leads),
            "mqls_to_opportunities_created": ratio(opportunities, mqls),
            "opportunities_created_to_deals_won": ratio(won, opportunities),
        },
        "revenue": {
            "revenue": value("kpimon_revenue", **team, window="month"),
            "deals_won": value("kpimon_deals_won", **team, window="month"),
            "open_pipeline_value": value("kpimon_open_pipeline_value", **team),
            "win_rate": win_rate,
            "weighted_pipeline": value("kpimon_revenue", **team, window="month")
            + weighted_open_value(scrapes, win_rate, **team),
        },
        "ticker": {
            "deals_won": value("kpimon_deals_won", **team, window="today"),
            "revenue": value("kpimon_revenue", **team, window="today"),
        },
        "essentials": essentials_values(scrapes),
        "marketing": {
            "marketing_spend": spend,
            "cost_per_lead": ratio(spend, value("kpimon_leads", **everyone, window="month")),
            "romi": ratio(value("kpimon_attributed_revenue_linear", **everyone, window="month") - spend, spend),
            "email_open": ratio(value("kpimon_email_unique_opens", **everyone, window="30d"), deliveries),
            "email_click_through": ratio(value("kpimon_email_unique_clicks", **everyone, window="30d"), deliveries),
            "email_bounce": ratio(
                value("kpimon_email_bounces", **everyone, window="30d"),
                value("kpimon_email_campaign_sends", **everyone, window="30d"),
            ),
        },
    }


def essentials_values(scrapes: list[Samples]) -> dict[str, float]:
    """The Essentials screen of the team's board (last 30 days): ratios of sums, and a gauge where one worker has it."""
    team = {"scope": "team", "team": TEAM, "window": "30d"}
    everyone = {"scope": "all", "window": "30d"}
    values = {}
    for column, labels in (("all", everyone), (TEAM, team)):
        revenue, won = summed(scrapes, "kpimon_revenue", **labels), summed(scrapes, "kpimon_deals_won", **labels)
        leads = summed(scrapes, "kpimon_leads", **labels)
        values[f"average_deal_size:{column}"] = ratio(revenue, won)
        values[f"lead_to_opportunity:{column}"] = ratio(
            summed(scrapes, "kpimon_opportunities_created", **labels), leads
        )
        gauge = "kpimon_lead_cohort_to_customer_ratio"
        serving = [samples for samples in scrapes if has_series(samples, gauge, **labels)]
        if len(serving) == 1:  # a gauge no sum rebuilds: shown where one worker has the scope's whole value
            values[f"lead_cohort_to_customer:{column}"] = summed(serving, gauge, **labels)
    return values


def differences(expected: dict[str, dict[str, float]]) -> list[str]:
    """Where the workers' /metrics differs from the counts made by hand."""
    return [
        f"{screen} {key}: /metrics {expected[screen][key]}, by hand {value}"
        for screen, values in by_hand().items()
        for key, value in values.items()
        if expected[screen][key] != pytest.approx(value)
    ]


def wait_for_metrics(workers: list[WorkerProcess], produced: int) -> dict[str, dict[str, float]]:
    """Until the workers' /metrics, summed, hold the counts made by hand; then what each screen must show."""

    def expected() -> dict[str, dict[str, float]]:
        return expected_values([scrape(worker.port) for worker in workers])

    def rejected() -> float:
        return sum(total(scrape(worker.port), "kpimon_events_rejected_total") for worker in workers)

    wait_until(
        lambda: not differences(expected()),
        timeout=90,
        message=lambda: f"{produced} events counted ({rejected()} rejected): {differences(expected())}",
    )
    return expected()


def by_hand() -> dict[str, dict[str, float]]:
    """The same numbers counted from the event set by hand (one worker, nothing else on its topics)."""
    return {
        "activity": {f"{rep}:calls": float(calls) for rep, calls in CALLS.items()},
        "funnel": {
            "leads": LEADS,
            "mqls": MQLS,
            "opportunities_created": OPPORTUNITIES,
            "deals_won": WON,
            "leads_to_mqls": MQLS / LEADS,
        },
        "revenue": {
            "revenue": WON_AMOUNT,
            "deals_won": WON,
            "open_pipeline_value": 20_000.0,
            "win_rate": 0.5,  # 1 won, 1 lost in 30 days
            # the won deal, and the open one at the win rate of its stage (unknown: all three have no stage change)
            "weighted_pipeline": WON_AMOUNT + 20_000.0 * 0.5,
        },
        "essentials": {
            f"average_deal_size:{TEAM}": WON_AMOUNT / WON,
            "average_deal_size:all": WON_AMOUNT / WON,
            f"lead_to_opportunity:{TEAM}": OPPORTUNITIES / LEADS,
        },
        "marketing": {
            "marketing_spend": SPEND,
            "cost_per_lead": SPEND / LEADS,
            "romi": (WON_AMOUNT - SPEND) / SPEND,
            "email_open": 1 / (RECIPIENTS - 1),
            "email_bounce": 1 / RECIPIENTS,
        },
    }


@pytest.fixture
def driver() -> Iterator[Any]:
    browser = chromium()
    yield browser
    browser.quit()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Any]]:
    """Processes to stop at the end (Prometheus, boards), last started first."""
    processes: list[Any] = []
    yield processes
    for process in reversed(processes):
        process.stop()


def start_stack(
    tmp_path: Path, workers: list[WorkerProcess], started: list[Any], token: str | None = None
) -> tuple[Prometheus, BoardProcess]:
    for worker in workers:
        worker.start()
    prometheus = Prometheus(tmp_path, board_prometheus_config([worker.port for worker in workers]))
    started.append(prometheus)
    wait_until(prometheus.ready, timeout=30, message="prometheus ready")
    board = BoardProcess(f"http://127.0.0.1:{prometheus.port}", tmp_path / "board.log", token=token)
    started.append(board)
    board.start()
    return prometheus, board


def produce_known_events(worker_env: Mapping[str, str], prefix: str) -> int:
    events = known_events(time.time(), prefix)
    crm = worker_env["KPIMON_CRM_TOPIC"]
    run(produce(event_message(crm, event, routing_key_of(event)) for event in events))
    return len(events)


def check_every_screen(driver: Any, board: BoardProcess, expected: dict[str, dict[str, float]], name: str) -> None:
    for screen in SCREEN_IDS:
        open_screen(driver, board.url(f"/board/{TEAM}", screen=screen), screen)
        wait_for_values(driver, expected.get(screen, {}), timeout=15)
        assert not scrolls(driver), f"the {screen} screen scrolls"
        ratio, where = lowest_contrast(driver)
        assert ratio >= 4.5, f"contrast {ratio:.2f}:1 on the {screen} screen at {where}"
        screenshot(driver, f"{name}-{screen}")


@pytest.mark.integration
def test_board_shows_metrics_live_goes_stale_and_recovers(
    tmp_path: Path, make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], driver: Any, started: Started
) -> None:
    worker = make_worker(KPIMON_CONFIG_FILE=str(CONFIG_FILE))
    prometheus, board = start_stack(tmp_path, [worker], started, token="wall-tv-secret")
    produced = produce_known_events(worker_env, "board")
    # every screen shows what /metrics shows, and what was counted by hand
    expected = wait_for_metrics([worker], produced)
    check_every_screen(driver, board, expected, "one-worker")

    # the token: required, never in the board's log
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{board.port}/board/{TEAM}", timeout=5)
    assert refused.value.code == 403
    assert "wall-tv-secret" not in board.log_path.read_text()

    # the ticker: today's wins so far, then a deal won now, within 2 s
    open_screen(driver, board.url(f"/board/{TEAM}", screen="ticker"), "ticker")
    wait_until(lambda: ticker_lines(driver)[:1] == [f"earlier{ANNA} won a deal today: €18,000"], 5, "today's win")
    rep = REPS[1]
    won = {"deal_id": "board-deal-late", "rep_id": rep, "team": TEAM, "amount": 7_500, "currency": "EUR"}
    run(produce([event_message(worker_env["KPIMON_CRM_TOPIC"], event_at(time.time(), "board-won", "deal.won", **won))]))
    expected_line = f"NEW{CONFIG.reps[rep].name} (EMEA) won a deal: €7,500"
    seconds = elapsed_until(lambda: any(line.endswith(expected_line[3:]) for line in ticker_lines(driver)), 10)
    assert seconds <= UPDATE_SECONDS, f"the deal won showed after {seconds:.2f} s"
    assert ticker_lines(driver)[0].startswith("NEW") and "€7,500" in ticker_lines(driver)[0]
    screenshot(driver, "one-worker-ticker-live")

    # a new event shows within 2 s, without reload
    open_screen(driver, board.url(f"/board/{TEAM}", screen="activity"), "activity")
    loaded_at = driver.execute_script("return window.kpimonBoardLoadedAt")
    rep = REPS[1]
    before = shown_values(driver)[f"{rep}:calls"]
    run(produce([event_message(worker_env["KPIMON_CRM_TOPIC"], call(time.time(), "board-live", rep))]))
    seconds = elapsed_until(lambda: shown_values(driver)[f"{rep}:calls"] == before + 1, timeout=10)
    assert seconds <= UPDATE_SECONDS, f"the new call showed after {seconds:.2f} s"
    assert driver.execute_script("return window.kpimonBoardLoadedAt") == loaded_at

    # a stopped worker turns every tile stale at once, and says so
    worker.kill()
    wait_until(lambda: set(stale_flags(driver)) == {"yes"}, timeout=5, message="tiles stale", interval=0.1)
    problem = driver.find_element("id", "problem")
    assert problem.is_displayed() and "not answering" in problem.text
    ratio, where = lowest_contrast(driver)
    assert ratio >= 4.5, f"contrast {ratio:.2f}:1 on a stale screen at {where}"
    screenshot(driver, "one-worker-stale")
    worker.start()
    # fresh once the worker answers again; its numbers back once it restored its state from Kafka
    wait_until(lambda: set(stale_flags(driver)) == {"no"}, timeout=60, message="tiles fresh again", interval=0.2)
    calls_now = {f"{rep}:calls": before + 1}
    wait_for_values(driver, calls_now, timeout=60)

    # the board server restarts: the page reconnects by itself and shows new events again
    board.stop()
    wait_until(lambda: "reconnecting" in driver.find_element("id", "problem").text, 10, "the lost connection shown")
    wait_until(lambda: set(stale_flags(driver)) == {"yes"}, timeout=10, message="tiles stale while disconnected")
    board.start()
    wait_until(lambda: set(stale_flags(driver)) == {"no"}, timeout=15, message="tiles fresh after the reconnect")
    wait_for_values(driver, calls_now, timeout=10)
    run(produce([event_message(worker_env["KPIMON_CRM_TOPIC"], call(time.time(), "board-after", rep))]))
    wait_for_values(driver, {f"{rep}:calls": before + 2}, timeout=10)
    assert driver.execute_script("return window.kpimonBoardLoadedAt") == loaded_at
    assert prometheus.ready()


def both_own_partitions(workers: list[WorkerProcess], worker_env: Mapping[str, str]) -> bool:
    """Produce a few posts (no board screen counts them) until each worker has counted some: the group settled."""
    posts = [
        event_at(time.time(), f"post-{uuid.uuid4().hex}", "content.published", channel="blog", content_id="c")
        for _ in range(8)
    ]
    run(produce(event_message(worker_env["KPIMON_CRM_TOPIC"], post) for post in posts))
    time.sleep(1)
    return all(total(scrape(worker.port), "kpimon_events_total") > 0 for worker in workers)


@pytest.mark.integration
def test_board_totals_are_the_sums_over_two_workers(
    tmp_path: Path, make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], driver: Any, started: Started
) -> None:
    config = {"KPIMON_CONFIG_FILE": str(CONFIG_FILE)}
    workers = [make_worker(**config), make_worker(**config, KPIMON_DATA_DIR=worker_env["KPIMON_DATA_DIR"] + "-2")]
    _, board = start_stack(tmp_path, workers, started)
    wait_until(lambda: both_own_partitions(workers, worker_env), timeout=90, message="both workers own partitions")
    produced = produce_known_events(worker_env, "two")
    expected = wait_for_metrics(workers, produced)
    calls = [summed([scrape(worker.port)], "kpimon_calls", scope="team", window="today") for worker in workers]
    assert all(calls), f"the calls were not split between the workers: {calls}"
    check_every_screen(driver, board, expected, "two-workers")

    # a TV: the screens rotate by themselves, none of them scrolls
    driver.get(board.url("/board", rotate="1"))
    shown = set()
    wait_until(
        lambda: (
            shown.add(driver.execute_script("return document.getElementById('screen').dataset.screen"))
            or set(SCREEN_IDS) <= shown
        ),
        timeout=15,
        message=lambda: f"every screen in turn, saw {sorted(map(str, shown))}",
        interval=0.2,
    )
    assert not scrolls(driver)
