"""Where alert states live between evaluations: in Redis for workers, in memory for tests.

Each (rule, scope) has one ``AlertState`` and a version. ``save`` is a
compare-and-set on that version: when two workers evaluate the same rule for a
moment (a rebalance moving it), the first write wins and the other's decision is
dropped, so a transition is decided once. Both stores pass one contract suite.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Protocol, cast

import orjson
from redis.asyncio import Redis

from alerts.model import AlertState

Versioned = tuple[AlertState, int]  # a state and its version (0: never saved)

# KEYS[1] the state hash; ARGV: field, expected version, new JSON value (with its version inside).
_COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
if current then version = cjson.decode(current)['version'] end
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


def encode_state(state: AlertState, version: int) -> bytes:
    return orjson.dumps({**dataclasses.asdict(state), "version": version})


def decode_state(raw: bytes | str) -> Versioned:
    fields = orjson.loads(raw)
    version = int(fields.pop("version"))
    return AlertState(**fields), version


class AlertStore(Protocol):
    async def load(self, keys: Iterable[str]) -> dict[str, Versioned]:
        """The states of ``keys``; a key never saved is absent."""

    async def save(self, key: str, state: AlertState, expected_version: int) -> bool:
        """Store ``state`` if the stored version is still ``expected_version``; False when another writer won."""


class MemoryAlertStore:
    """The in-memory store, for unit tests and single-process tools."""

    def __init__(self) -> None:
        self._states: dict[str, Versioned] = {}

    async def load(self, keys: Iterable[str]) -> dict[str, Versioned]:
        return {key: self._states[key] for key in keys if key in self._states}

    async def save(self, key: str, state: AlertState, expected_version: int) -> bool:
        if self._states.get(key, (AlertState(), 0))[1] != expected_version:
            return False
        self._states[key] = (state, expected_version + 1)
        return True


class RedisAlertStore:
    """States in one Redis hash, ``<namespace>:alerts:v1:state``, one field per (rule, scope)."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self.key = f"{namespace}:alerts:v1:state"
        self._compare_and_set = redis.register_script(_COMPARE_AND_SET)

    async def load(self, keys: Iterable[str]) -> dict[str, Versioned]:
        fields = list(keys)
        if not fields:
            return {}
        values = cast(list[bytes | None], await self._redis.hmget(self.key, fields))
        return {key: decode_state(raw) for key, raw in zip(fields, values, strict=True) if raw is not None}

    async def save(self, key: str, state: AlertState, expected_version: int) -> bool:
        value = encode_state(state, expected_version + 1)
        return bool(await self._compare_and_set(keys=[self.key], args=[key, expected_version, value]))


def states_by_key(loaded: Mapping[str, Versioned], keys: Iterable[str]) -> dict[str, Versioned]:
    """Every key's state, a fresh ``ok`` at version 0 for keys never saved."""
    return {key: loaded.get(key, (AlertState(), 0)) for key in keys}
