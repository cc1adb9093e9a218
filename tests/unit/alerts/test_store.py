from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from alerts.store import AlertStore, MemoryAlertStore
from tests.unit.alerts.alert_store_contract import CONTRACT


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
async def test_memory_store_keeps_the_contract(check: Callable[[AlertStore], Awaitable[None]]) -> None:
    await check(MemoryAlertStore())
