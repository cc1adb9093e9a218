"""Spend and web traffic through a real worker, Kafka and Redis: exact spend, CPL, cost per MQL, CAC and web
KPIs per channel, campaign and overall; unique visitors within 3 standard errors, unchanged by a replay."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from schemas.catalog import WINDOW_NAMES, load_catalog
from schemas.events import routing_key_of
from streams.readout.visitor_keys import STANDARD_ERROR
from tests.integration.redis_namespace import REDIS_URL
from tests.integration.support import (
    Labels,
    Message,
    WorkerProcess,
    event_message,
    produce,
    run,
    scrape,
    total,
    wait_until,
)

CONFIG = "timezone: UTC\ncurrency_rates: {EUR: 1.1}\n"
WINDOWS = ("1h", "24h", "7d", "30d")  # every event is within the last 40 minutes: in all of these, whatever now is
CATALOG = load_catalog()
WEB_AND_SPEND = (
    *("marketing_spend", "sales_spend", "cost_per_lead", "cost_per_mql", "customer_acquisition_cost"),
    *("web_sessions", "web_pageviews", "pages_per_session", "average_session_duration", "web_session_duration_total"),
    *("web_bounce_rate", "web_bounced_sessions", "web_bot_sessions"),
)
WEB_AND_SPEND_KPIS = [CATALOG.kpi(kpi_id) for kpi_id in WEB_AND_SPEND]
MANY_VISITORS = 5000
TYPES_SENT = {"spend.recorded", "web.session", "lead.created", "lead.qualified", "deal.won"}
UNIQUE = "kpimon_web_unique_visitors"
COUNTED_AT = "kpimon_web_unique_visitors_counted_timestamp_seconds"
Scope = tuple[str, str]  # scope kind, and the channel or campaign
ALL: Scope = ("all", "")
BRAND, RETARGET = ("campaign", "brand"), ("campaign", "retarget")
SEARCH, SOCIAL, UNKNOWN, SALES = [("channel", name) for name in ("paid_search", "social", "unknown", "sales")]


def scopes(channel: str | None, campaign: str | None) -> list[Scope]:
    """Overall, the channel (``unknown`` for none, as the worker does) and the campaign if any."""
    return [ALL, ("channel", channel or "unknown"), *([("campaign", campaign)] if campaign else [])]


def placed(channel: str | None, campaign: str | None) -> dict[str, str]:
    return {name: value for name, value in {"channel": channel, "campaign_id": campaign}.items() if value}


class Ground:
    """The event set and what it must give: counters per scope, and the visitors of each scope."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.events: list[dict[str, Any]] = []
        self.counters: dict[Scope, dict[str, float]] = {}
        self.visitors: dict[Scope, set[str]] = {}

    def add(self, event_id: str, event_type: str, minutes_ago: float, **fields: Any) -> None:
        occurred_at = datetime.fromtimestamp(self.now - minutes_ago * 60, UTC).isoformat()
        self.events.append({"event_id": event_id, "type": event_type, "occurred_at": occurred_at, "source": "test"})
        self.events[-1] |= fields

    def count(self, channel: str | None, campaign: str | None, **counters: float) -> None:
        for scope in scopes(channel, campaign):
            sums = self.counters.setdefault(scope, {})
            for name, value in counters.items():
                sums[name] = sums.get(name, 0) + value

    def spend(self, event_id: str, minutes_ago: float, amount: str, channel: str, **fields: str) -> None:
        currency = fields.pop("currency", "USD")
        self.add(event_id, "spend.recorded", minutes_ago, channel=channel, amount=amount, currency=currency, **fields)

    def session(
        self, event_id: str, visitor: str, views: int, seconds: float, channel: str | None, campaign: str | None
    ) -> None:
        visit = {"visitor_id": visitor, "pageviews": views, "duration_seconds": seconds}
        self.add(event_id, "web.session", 25, **visit, **placed(channel, campaign))
        counters = {"web_sessions": 1, "web_pageviews": views, "web_session_seconds": seconds}
        self.count(channel, campaign, **counters, web_bounced_sessions=1 if views <= 1 else 0)
        for scope in scopes(channel, campaign):
            self.visitors.setdefault(scope, set()).add(visitor)

    def bot(self, event_id: str, channel: str | None, campaign: str | None) -> None:
        visit = {"visitor_id": f"bot-{event_id}", "pageviews": 30, "duration_seconds": 2, "bot": True}
        self.add(event_id, "web.session", 24, **visit, **placed(channel, campaign))
        self.count(channel, campaign, web_bot_sessions=1)


def marketing_events(now: float) -> tuple[Ground, list[str]]:
    """The events, and the ids of those to send twice (copies)."""
    g = Ground(now)
    # Spend. s1 is corrected twice, and its first correction is sent before it: it counts 400.50, at s1's time.
    # s2 is in EUR; s3 is corrected once; s4 and s5 are sales spend.
    g.spend("s1-fix", 20, "300", "paid_search", campaign_id="brand", replaces="s1")
    g.spend("s1", 30, "500", "paid_search", campaign_id="brand")
    g.spend("s1-fix2", 15, "400.50", "paid_search", campaign_id="brand", replaces="s1")
    g.count("paid_search", "brand", marketing_spend=400.5)
    g.spend("s2", 30, "100", "social", campaign_id="retarget", currency="EUR")
    g.count("social", "retarget", marketing_spend=110.0)
    g.spend("s3", 35, "250.25", "social")
    g.spend("s3-fix", 5, "200", "social", replaces="s3")
    g.count("social", None, marketing_spend=200.0)
    g.spend("s4", 30, "1000", "paid_search", kind="sales")
    g.count("paid_search", None, sales_spend=1000.0)
    g.spend("s5", 30, "2000", "sales", currency="EUR", kind="sales")
    g.count("sales", None, sales_spend=2200.0)
    # Leads, MQLs and wins per channel and campaign.
    leads = [("l1", "paid_search", "brand", True), ("l2", "paid_search", "brand", False)]
    leads += [("l3", "paid_search", None, True), ("l4", "social", "retarget", True)]
    leads += [("l5", "social", None, False), ("l6", "social", None, False)]
    for lead, channel, campaign, mql in leads:
        g.add(f"c-{lead}", "lead.created", 38, lead_id=lead, **placed(channel, campaign))
        g.count(channel, campaign, leads=1)
        if mql:
            g.add(f"q-{lead}", "lead.qualified", 36, lead_id=lead, stage="mql")
            g.count(channel, campaign, mqls=1)
    for deal, channel, campaign in (
        ("d1", "paid_search", "brand"),
        ("d2", "social", None),
        ("d3", "paid_search", None),
    ):
        g.add(f"w-{deal}", "deal.won", 12, deal_id=deal, amount="5000", currency="USD", **placed(channel, campaign))
        g.count(channel, campaign, deals_won=1)
    # Sessions: 5,000 distinct visitors of paid search (a quarter of them from the brand campaign); a handful on
    # social (7 visitors, 10 sessions) and without channel (3 visitors, 4 sessions); bots, with visitors of their own.
    rng = random.Random(6)
    for n in range(MANY_VISITORS):
        views, seconds = rng.choice((1, 1, 2, 3, 5, 8)), round(rng.uniform(5, 600), 1)
        g.session(f"ps{n}", f"v-{n}", views, seconds, "paid_search", "brand" if n % 4 == 0 else None)
    for n in range(10):
        g.session(f"so{n}", f"s-{n % 7}", 1 + n % 3, 30.0 + n, "social", "retarget" if n < 5 else None)
    for n in range(4):
        g.session(f"un{n}", f"u-{n % 3}", 2, 45.5, None, None)
    for n, (channel, campaign) in enumerate([("paid_search", "brand"), ("social", "retarget"), (None, None)] * 2):
        g.bot(f"bot{n}", channel, campaign)
    copies = ["s1-fix", "s1", "s2", "c-l1", "w-d1", "ps0", "so3", "bot0"]
    return g, copies


def messages(g: Ground, copies: list[str], crm: str, marketing: str) -> list[Message]:
    """Every event keyed by its routing key, in list order (s1-fix before s1), then the copies, every other one
    on the other topic."""
    crm_types = {"lead.created", "lead.qualified", "deal.won"}

    def message(event: dict[str, Any], other_topic: bool = False) -> Message:
        topic = crm if (event["type"] in crm_types) != other_topic else marketing
        return event_message(topic, event, key=routing_key_of(event))

    by_id = {event["event_id"]: event for event in g.events}
    return [message(event) for event in g.events] + [
        message(by_id[event_id], other_topic=index % 2 == 1) for index, event_id in enumerate(copies)
    ]


def labels(scope: Scope, window: str) -> Labels:
    kind, name = scope
    channel, campaign = (name, "") if kind == "channel" else ("", name)
    return (
        ("campaign", campaign),
        ("channel", channel),
        ("rep", ""),
        ("scope", kind),
        ("team", ""),
        ("window", window),
    )


def expected_kpis(g: Ground) -> dict[tuple[str, Labels], float]:
    expected = {}
    for kpi in WEB_AND_SPEND_KPIS:
        for scope, counters in g.counters.items():
            value = kpi.formula.evaluate(counters)
            if value is not None:
                for window in WINDOWS:
                    expected[kpi.metric, labels(scope, window)] = value
    return expected


def observed_kpis(samples: dict[str, dict[Labels, float]]) -> dict[tuple[str, Labels], float]:
    metrics = {kpi.metric for kpi in WEB_AND_SPEND_KPIS}
    return {
        (name, series): value
        for name, by_labels in samples.items()
        if name in metrics
        for series, value in by_labels.items()
        if dict(series)["window"] in WINDOWS
    }


def unique_visitors(samples: dict[str, dict[Labels, float]]) -> dict[Labels, float]:
    return dict(samples.get(UNIQUE, {}))


def counted(samples: dict[str, dict[Labels, float]]) -> Counter[str]:
    """Events counted per type, but those the worker sends itself (lead and contact updates)."""
    by_type = {dict(series)["type"]: int(value) for series, value in samples.get("kpimon_events_total", {}).items()}
    return Counter({kind: n for kind, n in by_type.items() if kind in TYPES_SENT})


def settled_visitors(port: int) -> dict[Labels, float]:
    """The unique visitors once two counts agree, each started after the scrape before it (a scrape serves the last
    count and starts the next one; the sessions reach Redis in the background)."""
    previous: dict[Labels, float] = {}
    asked = time.time()
    for _ in range(60):
        samples = scrape(port)
        counted_at = total(samples, COUNTED_AT)
        if counted_at >= asked:
            current = unique_visitors(samples)
            if current and current == previous:
                return current
            previous, asked = current, time.time()
        time.sleep(0.5)
    raise AssertionError(f"the unique visitors did not settle: {previous}")


@pytest.mark.integration
def test_spend_and_web_kpis_exact_and_unique_visitors_within_the_error_bound(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    config_path = tmp_path / "kpimon.yaml"
    config_path.write_text(CONFIG)
    crm, marketing = worker_env["KPIMON_CRM_TOPIC"], worker_env["KPIMON_MARKETING_TOPIC"]
    g, copies = marketing_events(time.time())
    all_messages = messages(g, copies, crm, marketing)
    worker = make_worker(KPIMON_CONFIG_FILE=str(config_path))
    try:
        worker.start()
        run(produce(all_messages))
        wait_until(
            lambda: (
                (s := scrape(worker.port))
                and counted(s) == Counter(event["type"] for event in g.events)
                and total(s, "kpimon_events_duplicate_total") == len(copies)
            ),
            timeout=90,
            message=lambda: f"the worker to count every event: {counted(scrape(worker.port))}",
        )
        samples = scrape(worker.port)
        actual, expected = observed_kpis(samples), expected_kpis(g)
        missing, extra = sorted(set(expected) - set(actual))[:5], sorted(set(actual) - set(expected))[:5]
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-9), f"missing {missing}, unexpected {extra}"
        # by hand, so that a mistake shared by the expectation and the worker cannot hide
        assert actual["kpimon_marketing_spend", labels(ALL, "1h")] == pytest.approx(400.5 + 110 + 200)
        assert actual["kpimon_marketing_spend", labels(BRAND, "24h")] == pytest.approx(400.5)
        assert actual["kpimon_sales_spend", labels(ALL, "7d")] == pytest.approx(1000 + 2200)
        assert actual["kpimon_cost_per_lead", labels(BRAND, "1h")] == pytest.approx(400.5 / 2)
        assert actual["kpimon_cost_per_lead", labels(ALL, "7d")] == pytest.approx(710.5 / 6)
        assert actual["kpimon_cost_per_mql", labels(SOCIAL, "1h")] == pytest.approx(310.0)
        assert actual["kpimon_customer_acquisition_cost", labels(ALL, "30d")] == pytest.approx((710.5 + 3200) / 3)
        assert actual["kpimon_customer_acquisition_cost", labels(SEARCH, "1h")] == pytest.approx(1400.5 / 2)
        assert actual["kpimon_web_sessions", labels(ALL, "1h")] == MANY_VISITORS + 14
        assert actual["kpimon_web_bot_sessions", labels(ALL, "1h")] == 6
        assert actual["kpimon_web_sessions", labels(UNKNOWN, "1h")] == 4
        assert actual["kpimon_web_bounce_ratio", labels(UNKNOWN, "1h")] == 0
        assert actual["kpimon_web_session_duration_seconds", labels(UNKNOWN, "1h")] == 45.5
        assert ("kpimon_cost_per_lead", labels(SALES, "1h")) not in actual  # no lead: no value

        visitors = settled_visitors(worker.port)
        assert {dict(series)["window"] for series in visitors} == set(WINDOW_NAMES)
        assert len(visitors) == len(g.visitors) * len(WINDOW_NAMES)  # the scopes with sessions, every window
        assert (len(g.visitors[SOCIAL]), len(g.visitors[RETARGET]), len(g.visitors[UNKNOWN])) == (7, 5, 3)
        for scope in (SOCIAL, RETARGET, UNKNOWN):  # a handful: exact, bots left out
            for window in WINDOWS:
                assert visitors[labels(scope, window)] == len(g.visitors[scope]), (scope, window)
        for scope in (ALL, SEARCH, BRAND):  # 5,000 and more: within 3 standard errors
            truth = len(g.visitors[scope])
            for window in WINDOWS:
                assert abs(visitors[labels(scope, window)] - truth) <= 3 * STANDARD_ERROR * truth, (scope, window)

        # A replay, twice: every event again. Nothing counts twice, the unique visitors stay where they were.
        run(produce([*all_messages, *all_messages]))
        wait_until(
            lambda: total(scrape(worker.port), "kpimon_events_duplicate_total") == len(copies) + 2 * len(all_messages),
            timeout=90,
            message="the replayed events to be recognised as copies",
        )
        again = scrape(worker.port)
        assert observed_kpis(again) == actual
        assert settled_visitors(worker.port) == visitors
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{worker_env['KPIMON_APP_ID']}:hll:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
