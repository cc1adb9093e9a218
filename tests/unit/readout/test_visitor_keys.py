"""streams.readout.visitor_keys: the HyperLogLog keys a session adds its visitor to, and those a window reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.catalog import WINDOW_NAMES, WindowName, load_catalog
from schemas.config import KpimonConfig, TeamConfig
from schemas.events import WebSession, parse_event
from schemas.scopes import Scope
from streams.core.windows import DAY, HOUR, MINUTE, MONTH, QUARTER
from streams.readout.kpis import ScopeTotals
from streams.readout.visitor_keys import (
    EXPIRY_MARGIN_SECONDS,
    VISITOR_SCOPE_KINDS,
    HllAddition,
    hll_key,
    scopes_with_sessions,
    visitor_additions,
    visitor_queries,
    window_keys,
)

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z, a Tuesday; 23:13:20 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
CONFIG = KpimonConfig(timezone="Europe/Berlin", teams={"amer": TeamConfig(timezone="America/New_York")})
ALL, UNKNOWN, SOCIAL, SPRING = Scope(), Scope(channel="unknown"), Scope(channel="social"), Scope(campaign="spring")


def session(visitor: str, at: int, **fields: Any) -> WebSession:
    data = {"event_id": f"e-{visitor}-{at}", "type": "web.session", "source": "test", "visitor_id": visitor}
    data |= {"occurred_at": datetime.fromtimestamp(at, UTC).isoformat(), "pageviews": 2, "duration_seconds": 30}
    event = parse_event(orjson.dumps(data | fields))
    assert isinstance(event, WebSession)
    return event


def test_key_layout() -> None:
    assert hll_key("kpimon", SOCIAL, MINUTE, 1_699_999_860) == "kpimon:hll:v1:||social|:1m:1699999860"
    assert hll_key("app", Scope(campaign="a:b|c"), DAY, 5) == "app:hll:v1:|||a:b|c:1d:5"  # the last two parts: split


def test_the_scopes_are_those_of_the_web_kpis() -> None:
    catalog = load_catalog()
    for kpi_id in ("web_sessions", "web_pageviews", "web_bounce_rate"):
        assert catalog.kpi(kpi_id).scopes == VISITOR_SCOPE_KINDS
        assert catalog.kpi(kpi_id).windows == WINDOW_NAMES


def test_a_session_adds_its_visitor_to_every_resolution_of_overall_channel_and_campaign() -> None:
    at = NOW - 100  # 1_699_999_900
    visit = session("v1", at, channel="social", campaign_id="spring", team="amer")
    additions = visitor_additions("k", [visit], CONFIG, NOW)
    starts = {  # bucket start and end of each resolution; day and month in Berlin (the config's zone)
        MINUTE: (1_699_999_860, 1_699_999_920),
        QUARTER: (1_699_999_200, 1_700_000_100),
        HOUR: (1_699_999_200, 1_700_002_800),
        DAY: (1_699_916_400, 1_700_002_800),  # 2023-11-14 in Berlin (CET)
        MONTH: (1_698_793_200, 1_701_385_200),  # November in Berlin
    }
    expected = {
        hll_key("k", scope, resolution, start): HllAddition(
            end + resolution.retention_seconds + EXPIRY_MARGIN_SECONDS, {"v1"}
        )
        for scope in (ALL, SOCIAL, SPRING)  # no team scope: the web KPIs have none
        for resolution, (start, end) in starts.items()
    }
    assert additions == expected


def test_without_channel_the_visitor_counts_under_unknown_and_without_campaign_in_none() -> None:
    additions = visitor_additions("k", [session("v1", NOW)], CONFIG, NOW)
    assert {key.split(":")[3] for key in additions} == {"|||", "||unknown|"}


def test_bots_add_no_visitor() -> None:
    assert visitor_additions("k", [session("v1", NOW, bot=True)], CONFIG, NOW) == {}


def test_visitors_of_one_bucket_are_merged_and_repeats_kept_once() -> None:
    sessions = [session("v1", NOW - 10), session("v2", NOW - 20), session("v1", NOW - 30)]
    additions = visitor_additions("k", sessions, CONFIG, NOW)
    assert additions[hll_key("k", ALL, MINUTE, 1_699_999_980)].visitors == {"v1", "v2"}
    assert additions[hll_key("k", ALL, MINUTE, 1_699_999_920)].visitors == {"v1"}  # NOW - 30 is a minute earlier
    assert len(additions[hll_key("k", ALL, HOUR, 1_699_999_200)].visitors) == 2


def test_buckets_no_window_can_read_any_more_are_left_out() -> None:
    old = NOW - 3 * 3600 - 60  # its minute ended more than 2 h (retention) + 1 h (margin) ago; its quarter did not
    resolutions = {key.split(":")[4] for key in visitor_additions("k", [session("v1", old)], CONFIG, NOW)}
    assert resolutions == {"15m", "1h", "1d", "1mo"}
    ancient = NOW - 900 * 86_400
    assert visitor_additions("k", [session("v1", ancient)], CONFIG, NOW) == {}


@pytest.mark.parametrize(
    ("window", "count", "first", "last"),
    [
        ("1h", 60, hll_key("k", ALL, MINUTE, 1_699_996_440), hll_key("k", ALL, MINUTE, 1_699_999_980)),
        ("24h", 96, hll_key("k", ALL, QUARTER, 1_699_913_700), hll_key("k", ALL, QUARTER, 1_699_999_200)),
        ("7d", 168, hll_key("k", ALL, HOUR, 1_699_398_000), hll_key("k", ALL, HOUR, 1_699_999_200)),
        ("today", 1, hll_key("k", ALL, DAY, 1_699_916_400), hll_key("k", ALL, DAY, 1_699_916_400)),
        ("week", 2, hll_key("k", ALL, DAY, 1_699_830_000), hll_key("k", ALL, DAY, 1_699_916_400)),  # Mon, Tue
        # 30 local days across the end of DST (2023-10-29 has 25 hours in Berlin): from 2023-10-16 00:00 CEST
        ("30d", 30, hll_key("k", ALL, DAY, 1_697_407_200), hll_key("k", ALL, DAY, 1_699_916_400)),
        ("month", 1, hll_key("k", ALL, MONTH, 1_698_793_200), hll_key("k", ALL, MONTH, 1_698_793_200)),
        ("quarter", 2, hll_key("k", ALL, MONTH, 1_696_111_200), hll_key("k", ALL, MONTH, 1_698_793_200)),  # Oct, Nov
    ],
)
def test_window_keys(window: WindowName, count: int, first: str, last: str) -> None:
    keys = window_keys("k", ALL, window, NOW, BERLIN)
    assert (len(keys), keys[0], keys[-1]) == (count, first, last)
    assert len(set(keys)) == count


def test_the_keys_of_a_day_window_are_the_local_days_a_session_adds_to() -> None:
    """Every day of the 30 days, DST included, is a key some session of that day writes."""
    keys = window_keys("k", ALL, "30d", NOW, BERLIN)
    written = set()
    for day in range(30):
        noon = NOW - day * 86_400 - 11 * 3600
        written |= {key for key in visitor_additions("k", [session("v", noon)], CONFIG, NOW) if ":1d:" in key}
    assert {key for key in written if key.startswith("k:hll:v1:|||:")} == set(keys)


def totals(windows: dict[tuple[Scope, WindowName], dict[str, float]]) -> ScopeTotals:
    return ScopeTotals(windows=windows, scopes={scope for scope, _ in windows})


def test_scopes_with_sessions_are_overall_channels_and_campaigns_with_any() -> None:
    found = totals(
        {
            (ALL, "quarter"): {"web_sessions": 3},
            (SOCIAL, "1h"): {"web_sessions": 0},
            (SOCIAL, "30d"): {"web_sessions": 1},
            (UNKNOWN, "7d"): {"web_bot_sessions": 4},  # bots only: no visitors
            (SPRING, "today"): {"leads": 2},
            (Scope(team="amer"), "today"): {"web_sessions": 5},  # no team scope for web KPIs
        }
    )
    assert scopes_with_sessions(found) == [SOCIAL, ALL]  # by scope key: "||social|" < "|||"


def test_one_query_per_scope_and_window_in_the_scope_zone() -> None:
    queries = visitor_queries("k", [ALL, SPRING], NOW, CONFIG)
    assert [(query.scope, query.window) for query in queries] == [
        (scope, window) for scope in (ALL, SPRING) for window in WINDOW_NAMES
    ]
    today = next(query for query in queries if query.scope == SPRING and query.window == "today")
    assert today.keys == (hll_key("k", SPRING, DAY, 1_699_916_400),)


def test_a_batch_adds_what_its_sessions_add_one_by_one() -> None:
    """Whatever the order of a batch across bucket edges (the last bucket located is reused while it fits)."""
    times = [NOW - 5, NOW - 3700, NOW - 65, NOW - 86_400 * 40, NOW - 1, NOW - 3600 * 30, NOW - 70]
    channels = ["social", None, "social", "email", None, "social", "email"]
    sessions = [
        session(f"v{n % 4}", at, **({"channel": channel} if channel else {}), campaign_id="spring" if n % 2 else None)
        for n, (at, channel) in enumerate(zip(times, channels, strict=True))
    ]
    one_by_one: dict[str, HllAddition] = {}
    for visit in sessions:
        for key, addition in visitor_additions("k", [visit], CONFIG, NOW).items():
            one_by_one.setdefault(key, HllAddition(addition.expire_at)).visitors |= addition.visitors
    assert visitor_additions("k", sessions, CONFIG, NOW) == one_by_one
