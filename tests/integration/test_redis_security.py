"""KPIMON_REDIS_URL with a password, an ACL user and TLS (rediss://) against a real redis-server started here.

The alert store keeps its contract through each kind of URL; a worker counts unique
visitors through TLS with an ACL user; a wrong password is refused with an error that
does not show it, and the worker's log never shows the password.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError

from alerts.store import AlertStore, RedisAlertStore
from tests.integration.secured_redis import ACL_PASSWORD, DEFAULT_PASSWORD, SecuredRedis, secured_redis
from tests.integration.support import WorkerProcess, event_message, produce, run, scrape, wait_until
from tests.unit.alerts.alert_store_contract import CONTRACT

UNIQUE = "kpimon_web_unique_visitors"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredRedis]:
    with secured_redis(tmp_path_factory.mktemp("secured-redis")) as server:
        yield server


@pytest.mark.parametrize("way", ["requirepass", "acl_user", "tls"])
@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
async def test_the_alert_store_keeps_its_contract_with_each_kind_of_url(
    secured: SecuredRedis, way: str, check: Callable[[AlertStore], Awaitable[None]]
) -> None:
    redis = Redis.from_url(secured.urls()[way])
    try:
        await check(RedisAlertStore(redis, f"secured-{way}-{check.__name__}"))
    finally:
        await redis.aclose()


async def test_a_wrong_password_is_refused_without_showing_it(secured: SecuredRedis) -> None:
    for url in (secured.urls()["acl_user"].replace(ACL_PASSWORD, "wrong-pw-9"), f"redis://127.0.0.1:{secured.port}/0"):
        redis = Redis.from_url(url)
        with pytest.raises(Exception) as refused:
            await redis.ping()
        await redis.aclose()
        assert "wrong-pw-9" not in str(refused.value) and ACL_PASSWORD not in str(refused.value)
        assert isinstance(refused.value, AuthenticationError) or "NOAUTH" in str(refused.value)


def test_a_worker_counts_unique_visitors_through_tls_with_an_acl_user(
    secured: SecuredRedis, worker_env: dict[str, str], make_worker: Callable[..., WorkerProcess]
) -> None:
    worker = make_worker(KPIMON_REDIS_URL=secured.urls()["tls"])
    worker.start()
    now = datetime.fromtimestamp(time.time() - 60, UTC).isoformat()
    visits = [
        {"event_id": f"visit-{index}", "type": "web.session", "occurred_at": now, "source": "ga4",
         "visitor_id": f"visitor-{index % 3}", "pageviews": 2, "duration_seconds": 30}
        for index in range(7)
    ]  # fmt: skip
    run(produce(event_message(worker_env["KPIMON_MARKETING_TOPIC"], visit) for visit in visits))

    def three_visitors() -> bool:
        values = scrape(worker.port).get(UNIQUE, {}).values()
        return bool(values) and max(values) == 3

    wait_until(three_visitors, timeout=60, message=lambda: f"3 unique visitors: {scrape(worker.port).get(UNIQUE)}")
    log = Path(worker.log_path).read_text()
    assert ACL_PASSWORD not in log and DEFAULT_PASSWORD not in log
