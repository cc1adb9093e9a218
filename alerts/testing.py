"""Test helpers shipped with the package: a webhook receiver that records and can fail, and a manual clock.

``WebhookSink`` stands in for Slack and generic webhooks: an aiohttp server on
127.0.0.1 (port 0 picks a free one) that records every POST (time, path, headers,
JSON body) and answers 200 ``ok``, or, after ``fail(...)``, an error until the failure
ends. Run it as a process for tests that run deliverers elsewhere::

    python -m alerts.testing --port 8765 --log requests.jsonl

which writes one JSON line per request, serves the recorded requests at
``GET /requests`` and takes failures at ``POST /fail`` (the arguments of ``fail`` as a
JSON object) and ``POST /recover``; any other path is a webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web


class ManualClock:
    """A clock that moves only when told: pass ``clock.now`` where a clock is wanted."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        return self._now


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sink received and what it answered."""

    at: float  # by the sink's clock
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def header(self, name: str) -> str | None:
        """A request header by its name in any case."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def as_json(self) -> dict[str, Any]:
        fields = asdict(self)
        try:
            fields["body"] = self.json
        except orjson.JSONDecodeError:
            fields["body"] = self.body.decode("utf-8", errors="replace")
        return fields


@dataclass
class _Failure:
    status: int
    until: float | None  # by the sink's clock; None: until recover() or times run out
    times: int | None
    retry_after: str | None
    body: str
    path: str | None = None
    answered: int = field(default=0)


class WebhookSink:
    """A recording webhook receiver on 127.0.0.1; ``url(path)`` is what routes point at."""

    def __init__(
        self,
        port: int = 0,
        *,
        clock: Callable[[], float] = time.time,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._host = host
        self._port = port
        self._clock = clock
        self._log_path = log_path
        self._requests: list[RecordedRequest] = []
        self._failure: _Failure | None = None
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    async def start(self) -> WebhookSink:
        app = web.Application()
        app.router.add_get("/requests", self._list_requests)
        app.router.add_post("/fail", self._fail_from_request)
        app.router.add_post("/recover", self._recover_from_request)
        app.router.add_route("*", "/{path:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self._port = int(self._runner.addresses[0][1])  # the port bound when 0 was asked for
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookSink:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/hook") -> str:
        return f"http://{self._host}:{self._port}{path}"

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._requests)

    @property
    def accepted(self) -> list[RecordedRequest]:
        return [request for request in self._requests if request.accepted]

    def fail(
        self,
        status: int = 500,
        seconds: float | None = None,
        times: int | None = None,
        retry_after: float | str | None = None,
        *,
        body: str = "",
        path: str | None = None,
    ) -> None:
        """Answer ``status`` (with ``Retry-After`` if given) for ``seconds`` (by the sink's clock) or ``times``
        requests, whichever ends first, or until ``recover()`` when neither is given; only to ``path`` if given."""
        until = None if seconds is None else self._clock() + seconds
        header = None if retry_after is None else str(retry_after)
        self._failure = _Failure(status, until, times, header, body or f"failing on purpose: HTTP {status}", path)

    def recover(self) -> None:
        self._failure = None

    async def wait_for(self, count: int, timeout: float, *, accepted_only: bool = True) -> list[RecordedRequest]:
        """Wait until ``count`` requests were answered 2xx (or received at all); the requests, or TimeoutError."""

        def enough() -> bool:
            return len(self.accepted if accepted_only else self._requests) >= count

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(enough), timeout)
        except TimeoutError:
            statuses = [request.status for request in self._requests]
            raise TimeoutError(f"{count} requests expected within {timeout} s; got statuses {statuses}") from None
        return self.accepted if accepted_only else self.requests

    def _failure_for(self, path: str) -> _Failure | None:
        failure = self._failure
        if failure is None or (failure.path is not None and failure.path != path):
            return None
        if (failure.until is not None and self._clock() >= failure.until) or (
            failure.times is not None and failure.answered >= failure.times
        ):
            self._failure = None
            return None
        return failure

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        failure = self._failure_for(request.path)
        if failure is not None:
            failure.answered += 1
            headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            response = web.Response(status=failure.status, text=failure.body, headers=headers)
        else:
            response = web.Response(status=200, text="ok")
        recorded = RecordedRequest(
            self._clock(),
            request.method,
            request.path,
            {str(key): value for key, value in request.headers.items()},
            body,
            response.status,
        )
        self._requests.append(recorded)
        if self._log_path is not None:
            with self._log_path.open("ab") as log:
                log.write(orjson.dumps(recorded.as_json()) + b"\n")
        async with self._changed:
            self._changed.notify_all()
        return response

    async def _list_requests(self, _: web.Request) -> web.Response:
        body = orjson.dumps([request.as_json() for request in self._requests])
        return web.Response(body=body, content_type="application/json")

    async def _fail_from_request(self, request: web.Request) -> web.Response:
        options = orjson.loads(await request.read() or b"{}")
        self.fail(**options)
        return web.Response(text="failing")

    async def _recover_from_request(self, _: web.Request) -> web.Response:
        self.recover()
        return web.Response(text="recovered")


async def _serve(port: int, log_path: Path | None) -> None:
    sink = await WebhookSink(port, log_path=log_path).start()
    print(f"webhook sink listening on {sink.url('/')}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sink.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alerts.testing", description="A recording webhook receiver.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one, printed)")
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per request to this file")
    options = parser.parse_args(argv)
    with suppress(KeyboardInterrupt):
        asyncio.run(_serve(options.port, options.log))


if __name__ == "__main__":
    main()
