"""The shipped webhook sink: records requests, fails on demand, runs as a process."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from alerts.testing import ManualClock, WebhookSink


async def post(url: str, payload: object, headers: dict[str, str] | None = None) -> tuple[int, str, str | None]:
    async with aiohttp.ClientSession() as session, session.post(url, json=payload, headers=headers) as response:
        return response.status, await response.text(), response.headers.get("Retry-After")


async def test_it_records_each_request_and_answers_200() -> None:
    async with WebhookSink() as sink:
        assert await post(sink.url("/slack/a"), {"text": "hi"}, {"Idempotency-Key": "k1"}) == (200, "ok", None)
        [request] = await sink.wait_for(1, timeout=2)
    assert (request.method, request.path, request.json, request.status) == ("POST", "/slack/a", {"text": "hi"}, 200)
    assert request.header("idempotency-key") == "k1"


async def test_it_fails_for_a_number_of_requests_then_recovers() -> None:
    async with WebhookSink() as sink:
        sink.fail(429, times=2, retry_after=7, body="rate_limited")
        answers = [await post(sink.url(), {}) for _ in range(3)]
    assert answers == [(429, "rate_limited", "7"), (429, "rate_limited", "7"), (200, "ok", None)]
    assert [request.status for request in sink.requests] == [429, 429, 200]
    assert len(sink.accepted) == 1


async def test_it_fails_for_a_time_by_its_clock() -> None:
    clock = ManualClock()
    async with WebhookSink(clock=clock.now) as sink:
        sink.fail(503, seconds=30)
        assert (await post(sink.url(), {}))[0] == 503
        clock.advance(29.9)
        assert (await post(sink.url(), {}))[0] == 503
        clock.advance(0.1)
        assert (await post(sink.url(), {}))[0] == 200
    assert [request.at - sink.requests[0].at for request in sink.requests] == pytest.approx([0, 29.9, 30])


async def test_a_failure_can_be_limited_to_one_path_and_ended_by_hand() -> None:
    async with WebhookSink() as sink:
        sink.fail(404, path="/slack/gone")
        assert (await post(sink.url("/slack/gone"), {}))[0] == 404
        assert (await post(sink.url("/slack/fine"), {}))[0] == 200
        sink.recover()
        assert (await post(sink.url("/slack/gone"), {}))[0] == 200


async def test_wait_for_says_what_came_when_it_times_out() -> None:
    async with WebhookSink() as sink:
        sink.fail(500)
        await post(sink.url(), {})
        with pytest.raises(TimeoutError, match=r"got statuses \[500\]"):
            await sink.wait_for(1, timeout=0.2)
        assert len(await sink.wait_for(1, timeout=0.2, accepted_only=False)) == 1


def test_as_a_process_it_logs_json_lines_serves_requests_and_takes_failures(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "alerts.testing", "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().split()[-1].rstrip("/")

        def call(path: str, payload: object) -> int:
            request = urllib.request.Request(base + path, data=json.dumps(payload).encode(), method="POST")
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code

        assert call("/hook", {"n": 1}) == 200
        assert call("/fail", {"status": 502, "times": 1}) == 200
        assert call("/hook", {"n": 2}) == 502
        assert call("/hook", {"n": 3}) == 200
        with urllib.request.urlopen(base + "/requests", timeout=5) as response:
            served = json.load(response)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert [(item["path"], item["body"], item["status"]) for item in served] == [
        ("/hook", {"n": 1}, 200),
        ("/hook", {"n": 2}, 502),
        ("/hook", {"n": 3}, 200),
    ]
    assert [json.loads(line)["body"]["n"] for line in log.read_text().splitlines()] == [1, 2, 3]
