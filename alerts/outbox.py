"""The outbox: notifications wait here until their receiver answers 2xx, across restarts and workers.

A notification is queued once (its id is remembered for 30 days after it was delivered
or given up, so an event decided again after a crash is not sent again), claimed by one
deliverer at a time under a lease (a deliverer that dies mid-send releases it when the
lease ends), then acknowledged: ``delivered``, ``retry_later`` (an attempt more, due
later), ``postpone`` (due later, no attempt counted: the route's rate limit) or
``give_up`` (moved to the failed list). Acknowledging a notification that is no longer
queued (another deliverer finished it after this one's lease ran out) changes nothing.

``MemoryOutbox`` (tests, single process) and ``RedisOutbox`` pass one contract suite.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, cast

import orjson
from redis.asyncio import Redis

from alerts.model import Notification

REMEMBER_SECONDS = 30 * 86400.0  # how long a delivered or failed id stays known
FAILED_KEPT = 10_000  # the failed list keeps the newest this many


@dataclass(frozen=True)
class FailedNotification:
    """A notification given up on, with why (``HTTP 404: no_service``) and the last transient error before it."""

    notification: Notification
    reason: str
    last_error: str = ""


class Outbox(Protocol):
    async def enqueue(self, notifications: Iterable[Notification]) -> int:
        """Queue the notifications never seen before (not queued, delivered or failed); how many were new."""

    async def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[Notification]:
        """Take up to ``limit`` notifications due at ``now``, earliest first; they are due again at now + lease."""

    async def delivered(self, notification_id: str) -> bool:
        """The receiver accepted it: forget the message, remember the id. False if it was not queued any more."""

    async def retry_later(self, notification: Notification, not_before: float, error: str) -> bool:
        """Due again at ``not_before`` with one attempt more. False if it was not queued any more."""

    async def postpone(self, notification: Notification, not_before: float) -> bool:
        """Due again at ``not_before``, no attempt counted (it was not sent). False if it was not queued any more."""

    async def give_up(self, notification: Notification, reason: str) -> bool:
        """A permanent failure: move it to the failed list. False if it was not queued any more."""

    async def pending(self) -> int:
        """Notifications queued, due or not, claimed or not."""

    async def failed(self, limit: int = 100) -> list[FailedNotification]:
        """The newest failed notifications first."""


def encode_notification(notification: Notification) -> bytes:
    fields = asdict(notification)
    fields["body"] = base64.b64encode(notification.body).decode("ascii")
    return orjson.dumps(fields)


def decode_notification(raw: bytes | str) -> Notification:
    fields: dict[str, Any] = orjson.loads(raw)
    fields["body"] = base64.b64decode(fields["body"])
    return Notification(**fields)


class MemoryOutbox:
    """The outbox in dicts: for unit tests and single-process tools. ``clock`` dates the remembered ids."""

    def __init__(self, clock: Callable[[], float] = time.time, remember_seconds: float = REMEMBER_SECONDS) -> None:
        self._clock = clock
        self._remember_seconds = remember_seconds
        self._queued: dict[str, Notification] = {}
        self._due: dict[str, float] = {}
        self._errors: dict[str, str] = {}
        self._finished: dict[str, float] = {}  # id -> when it is forgotten
        self._failed: list[FailedNotification] = []

    def _is_finished(self, notification_id: str) -> bool:
        forget_at = self._finished.get(notification_id)
        if forget_at is not None and forget_at <= self._clock():
            del self._finished[notification_id]
            return False
        return forget_at is not None

    async def enqueue(self, notifications: Iterable[Notification]) -> int:
        added = 0
        for notification in notifications:
            if notification.id in self._queued or self._is_finished(notification.id):
                continue
            self._queued[notification.id] = notification
            self._due[notification.id] = notification.not_before
            added += 1
        return added

    async def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[Notification]:
        due = sorted((at, notification_id) for notification_id, at in self._due.items() if at <= now)[: max(0, limit)]
        for _, notification_id in due:
            self._due[notification_id] = now + lease_seconds
        return [self._queued[notification_id] for _, notification_id in due]

    def _finish(self, notification_id: str, reason: str, notification: Notification | None = None) -> bool:
        queued = self._queued.pop(notification_id, None) is not None
        self._due.pop(notification_id, None)
        last_error = self._errors.pop(notification_id, "")
        if not queued and self._is_finished(notification_id):
            return False
        self._finished[notification_id] = self._clock() + self._remember_seconds
        if notification is not None:
            self._failed.insert(0, FailedNotification(notification, reason, last_error))
            del self._failed[FAILED_KEPT:]
        return queued

    async def delivered(self, notification_id: str) -> bool:
        return self._finish(notification_id, "")

    def _reschedule(self, notification: Notification, not_before: float, error: str | None) -> bool:
        if notification.id not in self._queued:
            return False
        attempts = notification.attempts + (error is not None)
        self._queued[notification.id] = replace(notification, attempts=attempts, not_before=not_before)
        self._due[notification.id] = not_before
        if error is not None:
            self._errors[notification.id] = error
        return True

    async def retry_later(self, notification: Notification, not_before: float, error: str) -> bool:
        return self._reschedule(notification, not_before, error)

    async def postpone(self, notification: Notification, not_before: float) -> bool:
        return self._reschedule(notification, not_before, None)

    async def give_up(self, notification: Notification, reason: str) -> bool:
        return self._finish(notification.id, reason or "gave up", notification)

    async def pending(self) -> int:
        return len(self._queued)

    async def failed(self, limit: int = 100) -> list[FailedNotification]:
        return self._failed[: max(0, limit)]


# KEYS: due (zset id -> due time), items (hash id -> record), then one "done" key per notification.
# ARGV: per notification: id, due time, record.
_ENQUEUE = """
local added = 0
for i = 3, #KEYS do
  local a = (i - 3) * 3
  if redis.call('EXISTS', KEYS[i]) == 0 and redis.call('HSETNX', KEYS[2], ARGV[a + 1], ARGV[a + 3]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[a + 2], ARGV[a + 1])
    added = added + 1
  end
end
return added
"""

# KEYS: due, items. ARGV: now, limit, end of the lease.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local records = {}
for _, id in ipairs(ids) do
  local record = redis.call('HGET', KEYS[2], id)
  if record then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    table.insert(records, record)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return records
"""

# KEYS: due, items, errors, failed, the id's done key.
# ARGV: id, seconds to remember it, failed entries kept, "" (delivered) or the reason to give up, the record.
# 1 if the notification was queued; 0 if not, and nothing changes when it was already finished.
_FINISH = """
local queued = redis.call('HDEL', KEYS[2], ARGV[1])
local last_error = redis.call('HGET', KEYS[3], ARGV[1]) or ''
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if queued == 0 and redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
redis.call('SET', KEYS[5], '1', 'EX', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('LPUSH', KEYS[4], cjson.encode({notification = ARGV[5], reason = ARGV[4], last_error = last_error}))
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
end
return queued
"""

# KEYS: due, items, errors. ARGV: id, due time, new record, "1" to set the error, the error.
# Only a notification still queued is rescheduled.
_RESCHEDULE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if ARGV[4] == '1' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[5]) end
return 1
"""


class RedisOutbox:
    """The outbox in Redis, keys under ``<namespace>:outbox:v1:``.

    ``due`` (sorted set: id by due time), ``items`` (hash: id -> the notification as JSON),
    ``errors`` (hash: id -> last transient error), ``failed`` (list, newest first) and
    ``done:<id>`` (one key per finished id, expiring after 30 days). Every operation is one
    Lua script, so it is atomic: two deliverers never claim one notification at once.
    """

    def __init__(self, redis: Redis, namespace: str, remember_seconds: float = REMEMBER_SECONDS) -> None:
        self._redis = redis
        self.prefix = f"{namespace}:outbox:v1"
        self._queue_keys = [f"{self.prefix}:due", f"{self.prefix}:items"]
        self._errors_key = f"{self.prefix}:errors"
        self._failed_key = f"{self.prefix}:failed"
        self._remember_seconds = max(1, round(remember_seconds))
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._reschedule = redis.register_script(_RESCHEDULE)

    def done_key(self, notification_id: str) -> str:
        return f"{self.prefix}:done:{notification_id}"

    async def enqueue(self, notifications: Iterable[Notification]) -> int:
        batch = list(notifications)
        if not batch:
            return 0
        args: list[str | bytes | float] = []
        for item in batch:
            args += [item.id, item.not_before, encode_notification(item)]
        keys = [*self._queue_keys, *(self.done_key(item.id) for item in batch)]
        return int(await self._enqueue(keys=keys, args=args))

    async def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[Notification]:
        if limit <= 0:
            return []
        records = await self._claim(keys=self._queue_keys, args=[now, limit, now + lease_seconds])
        return [decode_notification(record) for record in cast(list[bytes], records)]

    async def _finish_one(self, notification_id: str, reason: str, record: bytes) -> bool:
        keys = [*self._queue_keys, self._errors_key, self._failed_key, self.done_key(notification_id)]
        args: list[str | bytes | int] = [notification_id, self._remember_seconds, FAILED_KEPT, reason, record]
        return bool(await self._finish(keys=keys, args=args))

    async def delivered(self, notification_id: str) -> bool:
        return await self._finish_one(notification_id, "", b"")

    async def _reschedule_one(self, notification: Notification, not_before: float, error: str | None) -> bool:
        attempts = notification.attempts + (error is not None)
        record = encode_notification(replace(notification, attempts=attempts, not_before=not_before))
        args: list[str | bytes | float] = [
            notification.id,
            not_before,
            record,
            "1" if error is not None else "0",
            error or "",
        ]
        return bool(await self._reschedule(keys=[*self._queue_keys, self._errors_key], args=args))

    async def retry_later(self, notification: Notification, not_before: float, error: str) -> bool:
        return await self._reschedule_one(notification, not_before, error)

    async def postpone(self, notification: Notification, not_before: float) -> bool:
        return await self._reschedule_one(notification, not_before, None)

    async def give_up(self, notification: Notification, reason: str) -> bool:
        return await self._finish_one(notification.id, reason or "gave up", encode_notification(notification))

    async def pending(self) -> int:
        return int(await self._redis.zcard(self._queue_keys[0]))

    async def failed(self, limit: int = 100) -> list[FailedNotification]:
        if limit <= 0:
            return []
        raws = cast(list[bytes], await self._redis.lrange(self._failed_key, 0, limit - 1))
        entries = [orjson.loads(raw) for raw in raws]
        return [
            FailedNotification(decode_notification(entry["notification"]), entry["reason"], entry["last_error"])
            for entry in entries
        ]
