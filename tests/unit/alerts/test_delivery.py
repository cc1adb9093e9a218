"""Delivery decisions as pure functions, and a deliverer whose route has no URL configured."""

from __future__ import annotations

import logging
from email.utils import formatdate

import aiohttp
import pytest

from alerts.delivery import (
    MAX_RETRY_AFTER,
    Backoff,
    Deliverer,
    DeliveryReport,
    gate_key,
    idempotency_header,
    retry_after_seconds,
    verdict,
)
from alerts.outbox import MemoryOutbox
from alerts.rate_gate import MemoryRateGate
from alerts.testing import ManualClock
from tests.unit.alerts.delivery_examples import ROUTES, T0, notification


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (429, "rate_limited"),
        (500, "transient"),
        (502, "transient"),
        (503, "transient"),
        (408, "transient"),
        (None, "transient"),
        (400, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (410, "permanent"),
        (301, "permanent"),
    ],
)
def test_verdict_by_status(status: int | None, expected: str) -> None:
    assert verdict(status) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 30.0),
        ("", 30.0),
        ("5", 5.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", 30.0),
        (formatdate(T0 + 90, usegmt=True), 90.0),
        (formatdate(T0 - 90, usegmt=True), 0.0),
        ("3600", 3600.0),
        ("86400000", 3600.0),  # capped at MAX_RETRY_AFTER: a huge value cannot park a message for ever
        ("1e400", 3600.0),
        ("inf", 3600.0),
        ("nan", 30.0),
        (formatdate(T0 + 10 * 86400, usegmt=True), 3600.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, expected: float) -> None:
    assert retry_after_seconds(header, T0) == pytest.approx(expected)


@pytest.mark.parametrize(("attempts", "ceiling"), [(0, 1.0), (1, 2.0), (3, 8.0), (5, 32.0), (6, 60.0), (500, 60.0)])
def test_backoff_has_full_jitter_under_an_exponential_ceiling(attempts: int, ceiling: float) -> None:
    assert Backoff().delay(attempts, lambda: 1.0) == ceiling
    assert Backoff().delay(attempts, lambda: 0.0) == 0.0
    assert Backoff().delay(attempts, lambda: 0.5) == ceiling / 2


def test_the_rate_gate_key_does_not_reveal_the_webhook_url() -> None:
    url = "https://hooks.slack.com/services/T000/B000/SECRET"
    assert "SECRET" not in gate_key(url) and gate_key(url) == gate_key(url) != gate_key(url + "x")


async def test_a_missing_environment_variable_is_logged_by_name_and_the_message_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(T0)
    outbox = MemoryOutbox(clock.now)
    await outbox.enqueue([notification(1, route="sales-slack"), notification(2, route="ops-hook")])
    deliverer = Deliverer(
        outbox, ROUTES, {}, clock.now, aiohttp.ClientSession, MemoryRateGate(clock.now), draw=lambda: 1.0
    )
    with caplog.at_level(logging.ERROR, logger="alerts.delivery"):
        report = await deliverer.deliver_due()
    await deliverer.close()
    assert report == DeliveryReport(claimed=2, retried=2, pending=2)
    assert "environment variable KPIMON_TEST_SLACK_SALES is not set" in caplog.text
    assert "environment variable KPIMON_TEST_OPS_HOOK is not set" in caplog.text
    assert await outbox.claim_due(T0 + 0.9, 10, 60) == []
    again = await outbox.claim_due(T0 + 1.0, 10, 60)  # backoff: 1 s ceiling at the first attempt
    assert sorted(item.attempts for item in again) == [1, 1]


@pytest.mark.parametrize(
    ("notification_id", "header"),
    [
        ("rule/team:emea:::/3/firing/0/sales-slack", "rule/team:emea:::/3/firing/0/sales-slack"),
        ("rule/rep:münchen:a b::/1/firing/0/hook", "rule/rep:m%C3%BCnchen:a%20b::/1/firing/0/hook"),
        ("r/x\r\ny%/1", "r/x%0D%0Ay%25/1"),
    ],
)
def test_the_idempotency_header_is_printable_ascii(notification_id: str, header: str) -> None:
    assert idempotency_header(notification_id) == header


async def test_a_notification_failing_past_the_maximum_age_is_given_up_as_expired(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(T0)
    outbox = MemoryOutbox(clock.now)
    await outbox.enqueue([notification(1, route="ops-hook")])  # queued at T0, its URL variable unset
    deliverer = Deliverer(
        outbox, ROUTES, {}, clock.now, aiohttp.ClientSession, MemoryRateGate(clock.now), max_age_seconds=3600
    )
    reports = []
    while clock.now() < T0 + 3600 + 120:
        reports.append(await deliverer.deliver_due())
        clock.advance(10)
    await deliverer.close()
    assert sum(report.expired for report in reports) == 1
    assert sum(report.failed for report in reports) == 0
    assert reports[-1].pending == 0
    [failed] = await outbox.failed()
    assert failed.reason == "expired: not delivered within 3600 s; last error: KPIMON_TEST_OPS_HOOK is not set"
    assert "gave up on" in caplog.text
    assert MAX_RETRY_AFTER == 3600.0
