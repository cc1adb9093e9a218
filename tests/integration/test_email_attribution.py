"""A generated marketing event set through a real worker: every email KPI per campaign and the revenue attributed by
each model per channel and campaign, on /metrics, equal the offline computation of
tests/reference/offline_email_attribution.py (counts exactly, amounts and ratios within 1e-9); every model adds up to
the won revenue.

The events go out shuffled, a fifth of the deals', leads' and people's events twice, a third of them keyed by their
event_id (re-keyed by the worker), so touches arrive after wins, wins before their leads' creation, and the
internal events (a deal's outcome to its leads, a lead's view to its people) cross the re-keyed topic in any order.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import load_catalog
from schemas.events import routing_key_of
from tests.integration.support import Labels, WorkerProcess, event_message, produce, run, scrape, wait_until
from tests.reference.offline_email_attribution import email_and_attribution_totals, marketing_events

CONFIG = "timezone: UTC\nreporting_currency: USD\n"
WINDOW = "30d"  # every event is in the 20 days before now
INTERNAL = ("lead.converted", "lead.deal_closed", "contact.lead_updated")  # the worker sends these itself
CATALOG = load_catalog()
EMAIL_KPIS = tuple(kpi.id for kpi in CATALOG.kpis if kpi.id.startswith("email_") and kpi.scopes == ("all", "campaign"))
ATTRIBUTION_KPIS = ("attributed_revenue_first", "attributed_revenue_last", "attributed_revenue_linear", "romi")
ENTITY_TYPES = ("email.", "lead.", "opportunity.", "deal.")

Key = tuple[str, str]  # (scope, value)


def _labels(key: Key) -> Labels:
    scope, value = key
    labels = {"campaign": "", "channel": "", "rep": "", "scope": scope, "team": "", "window": WINDOW}
    if scope != "all":
        labels[scope] = value
    return tuple(sorted(labels.items()))


def _observed(samples: Mapping[str, Mapping[Labels, float]], metric: str) -> dict[Key, float]:
    observed = {}
    for labels, value in samples.get(metric, {}).items():
        label = dict(labels)
        if label["window"] == WINDOW and label["scope"] in ("all", "channel", "campaign"):
            observed[label["scope"], label[label["scope"]] if label["scope"] != "all" else ""] = value
    return observed


def _mismatches(samples: Mapping[str, Mapping[Labels, float]], expected: Mapping[Key, Mapping[str, Any]]) -> list[str]:
    problems = []
    for kpi_id in (*EMAIL_KPIS, *ATTRIBUTION_KPIS):
        kpi = CATALOG.kpi(kpi_id)
        observed = _observed(samples, kpi.metric)
        keys = {key for key in {*observed, *expected} if key[0] in kpi.scopes}
        for key in sorted(keys):
            want = expected.get(key, {}).get(kpi_id, None if kpi.unit == "ratio" else Fraction(0))
            got = observed.get(key, None if kpi.unit == "ratio" else 0.0)
            if want is None or got is None:
                if want is not got:
                    problems.append(f"{kpi.metric} {key}: expected {want}, got {got}")
            elif not math.isclose(float(want), got, rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{kpi.metric} {key}: expected {float(want)}, got {got}")
    return problems


def _counted(samples: Mapping[str, Mapping[Labels, float]], name: str) -> float:
    return sum(value for labels, value in samples.get(name, {}).items() if dict(labels)["type"] not in INTERNAL)


@pytest.mark.integration
def test_email_kpis_and_attributed_revenue_equal_the_offline_computation(
    make_worker: Callable[..., WorkerProcess], worker_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "kpimon.yaml"
    config.write_text(CONFIG)
    events = marketing_events(seed=23, end=int(time.time()))
    expected = email_and_attribution_totals(events)
    rng = random.Random(23)
    copies = [event for event in events if event["type"].startswith(ENTITY_TYPES) and rng.random() < 0.2]
    topic = {"crm": worker_env["KPIMON_CRM_TOPIC"], "marketing": worker_env["KPIMON_MARKETING_TOPIC"]}
    messages = [
        event_message(
            topic["crm" if event["type"].startswith(("lead.", "opportunity.", "deal.")) else "marketing"],
            event,
            key=routing_key_of(event) if rng.random() < 0.67 else None,  # else its event_id: the worker re-keys it
        )
        for event in [*events, *copies]
    ]
    rng.shuffle(messages)

    worker = make_worker(KPIMON_CONFIG_FILE=str(config))
    worker.start()
    run(produce(messages))
    wait_until(
        lambda: (
            (s := scrape(worker.port))
            and _counted(s, "kpimon_events_total") == len(events)
            and _counted(s, "kpimon_events_duplicate_total") == len(copies)
        ),
        timeout=120,
        message="every event and copy read",
    )
    # the internal events may still be on their way round the re-keyed topic: wait for the values to settle
    wait_until(lambda: not _mismatches(scrape(worker.port), expected), 60, lambda: "\n".join(
        _mismatches(scrape(worker.port), expected)[:20]))  # fmt: skip

    samples = scrape(worker.port)
    assert _mismatches(samples, expected) == []
    compared = [value for values in expected.values() for name, value in values.items() if value]
    assert len(compared) > 60  # non-zero values the worker had to get right
    overall = ("all", "")
    revenue = _observed(samples, "kpimon_revenue")[overall]
    assert revenue == pytest.approx(float(expected[overall]["revenue"]), rel=1e-9) and revenue > 0
    for model in ATTRIBUTION_KPIS[:3]:
        per_channel = _observed(samples, CATALOG.kpi(model).metric)
        assert per_channel[overall] == pytest.approx(revenue, rel=1e-9)
        assert sum(value for key, value in per_channel.items() if key[0] == "channel") == pytest.approx(revenue)
    # spot checks by hand, so a shared mistake in the offline computation cannot hide
    proxy = ("campaign", "proxy-only")  # opened and clicked, never sent
    opens = _observed(samples, "kpimon_email_unique_opens")
    assert opens[proxy] > 0 and proxy not in _observed(samples, "kpimon_email_open_ratio")
    assert _observed(samples, "kpimon_email_campaign_sends")[("campaign", "newsletter")] == 200
    assert _observed(samples, "kpimon_romi_ratio").keys() >= {("channel", "paid_search"), ("campaign", "newsletter")}
