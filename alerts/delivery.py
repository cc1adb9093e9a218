"""Delivery: notifications due in the outbox are POSTed to their webhooks until the receiver answers 2xx.

One attempt per notification per ``deliver_due``:

- 2xx: delivered (the outbox remembers the id).
- 429: again after the ``Retry-After`` header (seconds or an HTTP date; 30 s without one; at
  most ``MAX_RETRY_AFTER`` = 1 h, so a huge value cannot park a notification for ever).
- 5xx, 408, timeouts, connection errors: again after an exponential backoff with full jitter
  (a random delay between 0 and min(cap, base * 2**attempts); base 1 s, cap 60 s): an outage
  of the receiver loses nothing, up to ``max_age_seconds`` (24 h by default) after the
  notification was queued. A notification that fails again past that age goes to the failed
  list as ``expired`` (counted in ``DeliveryReport.expired``), with its last error.
- any other status (Slack's 400, 403, 404, 410, a redirect): given up, to the failed list
  with the status and the start of the body.
- the route's environment variable is not set, or holds no valid URL: an error in the log
  naming the variable, and the notification waits like after a 5xx (and expires like it).

Every request carries ``Idempotency-Key: <notification id>``. A route's
``min_interval_seconds`` (Slack: 1 s) is enforced per webhook URL through a ``RateGate``;
a notification that finds the gate taken is postponed without counting an attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import quote

import aiohttp

from alerts.model import Notification
from alerts.outbox import Outbox
from alerts.rate_gate import RateGate
from alerts.routes import Route

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 30.0
MAX_RETRY_AFTER = 3600.0  # a longer Retry-After is taken as this
DEFAULT_MAX_AGE = 86_400.0  # a notification still failing this long after it was queued is given up
UNKNOWN_ROUTE_INTERVAL = 1.0  # the pace for a notification whose route left the configuration: Slack's
REASON_BODY_CHARS = 300
ORDER_STEP = 0.001  # postponed notifications keep their order: each due a millisecond after the previous

Verdict = Literal["delivered", "rate_limited", "transient", "permanent"]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: a delay drawn from [0, min(cap, base * 2**attempts)]."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempts: int, draw: Callable[[], float]) -> float:
        return draw() * min(self.cap, self.base * 2.0 ** min(attempts, 64))


def verdict(status: int | None) -> Verdict:
    """What an answer means; ``None`` stands for no answer (timeout, connection error)."""
    if status is None or status == 408 or status >= 500:
        return "transient"
    if 200 <= status < 300:
        return "delivered"
    if status == 429:
        return "rate_limited"
    return "permanent"


def retry_after_seconds(header: str | None, now: float, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; ``default`` if absent or bad.

    Never more than ``MAX_RETRY_AFTER``, never negative (an infinite or NaN number counts as bad).
    """
    if header is None or not header.strip():
        return default
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, OverflowError):
            return default
    if math.isnan(seconds):
        return default
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


@dataclass(frozen=True)
class Answer:
    """What one POST came to: the status (None: no answer), the start of the body, ``Retry-After``, or the error."""

    status: int | None
    body: str = ""
    retry_after: str | None = None
    error: str = ""

    def describe(self) -> str:
        if self.status is None:
            return self.error
        return f"HTTP {self.status}: {self.body}" if self.body else f"HTTP {self.status}"


@dataclass(frozen=True)
class DeliveryReport:
    """Counts of one ``deliver_due``, for metrics; ``pending`` is what the outbox holds afterwards."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    postponed: int = 0
    failed: int = 0
    expired: int = 0  # given up after failing past the maximum age (in the failed list too, not in ``failed``)
    pending: int = 0


def idempotency_header(notification_id: str) -> str:
    """The ``Idempotency-Key`` value: the id, with anything but printable ASCII (and ``%``) percent-encoded."""
    return "".join(char if "!" <= char <= "~" and char != "%" else quote(char, safe="") for char in notification_id)


def gate_key(url: str) -> str:
    """The rate gate of a webhook: a digest of its URL (the URL is a secret and stays out of Redis)."""
    return hashlib.sha256(url.encode()).hexdigest()[:24]


async def _body_start(response: aiohttp.ClientResponse) -> str:
    """The start of the body for the log and the failed list; a body that breaks off does not undo the status."""
    try:
        raw = await response.content.read(REASON_BODY_CHARS)
    except (aiohttp.ClientError, TimeoutError):
        return ""
    return raw.decode("utf-8", errors="replace").strip()


SessionSource = aiohttp.ClientSession | Callable[[], aiohttp.ClientSession]


class Deliverer:
    """Sends what the outbox has due. Several deliverers (workers) may share one outbox and one rate gate.

    ``http`` is a session (the caller closes it) or a factory (the deliverer makes the
    session when first needed and closes it in ``close``). ``lease_seconds`` (default:
    twice the request timeout plus 30 s) must outlast one ``deliver_due``: a notification
    claimed by a deliverer that dies is sent again after it. ``max_age_seconds``: how long
    after it was queued a notification is still retried.
    """

    def __init__(
        self,
        outbox: Outbox,
        routes: Mapping[str, Route],
        env: Mapping[str, str],
        clock: Callable[[], float],
        http: SessionSource,
        rate_limiter: RateGate,
        *,
        batch_size: int = 20,
        timeout_seconds: float = 10.0,
        lease_seconds: float | None = None,
        backoff: Backoff = Backoff(),
        draw: Callable[[], float] = random.random,
        max_age_seconds: float = DEFAULT_MAX_AGE,
    ) -> None:
        self._outbox = outbox
        self._routes = routes
        self._env = env
        self._clock = clock
        self._http = http
        self._session: aiohttp.ClientSession | None = http if isinstance(http, aiohttp.ClientSession) else None
        self._gate = rate_limiter
        self._batch_size = batch_size
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._lease_seconds = lease_seconds if lease_seconds is not None else 2 * timeout_seconds + 30.0
        self._backoff = backoff
        self._draw = draw
        self._max_age = max_age_seconds

    async def close(self) -> None:
        """Close the session if this deliverer made it."""
        if self._session is not None and not isinstance(self._http, aiohttp.ClientSession):
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            assert not isinstance(self._http, aiohttp.ClientSession)
            self._session = self._http()
        return self._session

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Deliver until ``stop`` is set: every ``interval`` s, at once again while batches come back full."""
        try:
            while not stop.is_set():
                claimed = 0
                try:
                    claimed = (await self.deliver_due()).claimed
                except Exception:  # Redis away, a bug: say so and keep going; the outbox keeps the messages
                    logger.exception("delivering alert notifications failed; trying again in %.1f s", interval)
                if claimed < self._batch_size:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval)
        finally:
            await self.close()

    async def deliver_due(self) -> DeliveryReport:
        """One attempt at every notification due now (at most ``batch_size``); routes in parallel."""
        claimed = await self._outbox.claim_due(self._clock(), self._batch_size, self._lease_seconds)
        by_route: dict[str, list[Notification]] = {}
        for notification in claimed:
            by_route.setdefault(notification.route, []).append(notification)
        counts: Counter[str] = Counter()
        await asyncio.gather(*(self._deliver_route(name, batch, counts) for name, batch in by_route.items()))
        return DeliveryReport(
            claimed=len(claimed),
            sent=counts["sent"],
            retried=counts["retried"],
            postponed=counts["postponed"],
            failed=counts["failed"],
            expired=counts["expired"],
            pending=await self._outbox.pending(),
        )

    def _interval(self, route_name: str) -> float:
        route = self._routes.get(route_name)
        if route is None:
            logger.warning("route %r is not configured any more; its notifications keep 1 message/s", route_name)
            return UNKNOWN_ROUTE_INTERVAL
        return route.min_interval_seconds

    async def _deliver_route(self, route_name: str, batch: Sequence[Notification], counts: Counter[str]) -> None:
        interval = self._interval(route_name)
        if interval <= 0:
            outcomes = await asyncio.gather(*(self._attempt(notification) for notification in batch))
            counts.update(outcomes)
            return
        for index, notification in enumerate(batch):
            url = self._url(notification)
            if url is None:
                counts[await self._wait_for_configuration(notification)] += 1
                continue
            wait = await self._gate.acquire(gate_key(url), interval)
            if wait > 0:
                counts["postponed"] += await self._postpone(batch[index:], wait)
                return
            counts[await self._attempt(notification, url)] += 1
            await self._gate.hold(gate_key(url), interval)

    async def _postpone(self, batch: Sequence[Notification], wait: float) -> int:
        """The rate gate is taken: the rest of the route's batch waits, in its order, no attempt counted."""
        not_before = self._clock() + wait
        for offset, notification in enumerate(batch):
            await self._outbox.postpone(notification, not_before + offset * ORDER_STEP)
        logger.debug("route %s: %d notification(s) wait %.2f s for the rate limit", batch[0].route, len(batch), wait)
        return len(batch)

    def _url(self, notification: Notification) -> str | None:
        return self._env.get(notification.url_env) or None

    async def _wait_for_configuration(self, notification: Notification) -> str:
        error = f"{notification.url_env} is not set"
        if self._expired(notification):
            return await self._expire(notification, error)
        delay = self._backoff.delay(notification.attempts, self._draw)
        logger.error(
            "route %s: environment variable %s is not set; notification %s waits %.1f s (not lost)",
            notification.route,
            notification.url_env,
            notification.id,
            delay,
        )
        await self._outbox.retry_later(notification, self._clock() + delay, error)
        return "retried"

    def _expired(self, notification: Notification) -> bool:
        return self._clock() - notification.created_at >= self._max_age

    async def _expire(self, notification: Notification, error: str) -> str:
        """Failed again past the maximum age: to the failed list, counted as expired."""
        age = f"{self._max_age:g} s"
        await self._outbox.give_up(notification, f"expired: not delivered within {age}; last error: {error}")
        logger.error(
            "route %s: gave up on %s after %d attempts over %s: %s (in the failed list)",
            notification.route,
            notification.id,
            notification.attempts + 1,
            age,
            error,
        )
        return "expired"

    async def _attempt(self, notification: Notification, url: str | None = None) -> str:
        """POST once and acknowledge in the outbox; returns the count it goes to."""
        url = url or self._url(notification)
        if url is None:
            return await self._wait_for_configuration(notification)
        answer = await self._post(notification, url)
        now = self._clock()
        attempt = notification.attempts + 1
        match verdict(answer.status):
            case "delivered":
                await self._outbox.delivered(notification.id)
                logger.info(
                    "route %s: delivered %s (HTTP %s, attempt %d)",
                    notification.route,
                    notification.id,
                    answer.status,
                    attempt,
                )
                return "sent"
            case "rate_limited" | "transient" if self._expired(notification):
                return await self._expire(notification, answer.describe())
            case "rate_limited":
                delay = retry_after_seconds(answer.retry_after, now)
                await self._outbox.retry_later(notification, now + delay, answer.describe())
                logger.warning(
                    "route %s: HTTP 429 for %s; Retry-After says again in %.1f s",
                    notification.route,
                    notification.id,
                    delay,
                )
                return "retried"
            case "transient":
                delay = self._backoff.delay(notification.attempts, self._draw)
                await self._outbox.retry_later(notification, now + delay, answer.describe())
                logger.warning(
                    "route %s: %s for %s (attempt %d); again in %.1f s",
                    notification.route,
                    answer.describe(),
                    notification.id,
                    attempt,
                    delay,
                )
                return "retried"
            case "permanent":
                await self._outbox.give_up(notification, answer.describe())
                logger.error(
                    "route %s: gave up on %s after attempt %d: %s (in the failed list)",
                    notification.route,
                    notification.id,
                    attempt,
                    answer.describe(),
                )
                return "failed"

    async def _post(self, notification: Notification, url: str) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_header(notification.id),
            "User-Agent": "kpimon",
        }
        try:
            async with self._client().post(
                url, data=notification.body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                return Answer(response.status, await _body_start(response), response.headers.get("Retry-After"))
        except aiohttp.InvalidURL:  # its text would show the URL, a secret
            return Answer(None, error=f"the URL in {notification.url_env} is not a valid http(s) URL")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Answer(None, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
