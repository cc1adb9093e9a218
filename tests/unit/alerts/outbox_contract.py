"""The contract every outbox keeps; run against MemoryOutbox here and RedisOutbox against real Redis.

Each check gets a fresh, empty outbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from alerts.outbox import Outbox
from tests.unit.alerts.delivery_examples import T0, notification

LEASE = 60.0


async def check_enqueue_counts_only_new_notifications(outbox: Outbox) -> None:
    assert await outbox.enqueue([notification(1), notification(2)]) == 2
    assert await outbox.enqueue([notification(2), notification(3)]) == 1
    assert await outbox.enqueue([notification(4), notification(4)]) == 1  # twice in one batch: once
    assert await outbox.enqueue([]) == 0
    assert await outbox.pending() == 4


async def check_a_queued_id_keeps_its_first_body(outbox: Outbox) -> None:
    await outbox.enqueue([notification(1)])
    await outbox.enqueue([notification(1, body=b'{"rendered": "again"}')])
    assert [item.body for item in await outbox.claim_due(T0, 10, LEASE)] == [notification(1).body]


async def check_claim_takes_due_notifications_earliest_first(outbox: Outbox) -> None:
    await outbox.enqueue(
        [notification(1, not_before=T0 + 5), notification(2, not_before=T0), notification(3, not_before=T0 + 50)]
    )
    assert await outbox.claim_due(T0 - 1, 10, LEASE) == []
    assert [item.id for item in await outbox.claim_due(T0 + 10, 10, LEASE)] == [notification(2).id, notification(1).id]


async def check_claim_takes_at_most_limit(outbox: Outbox) -> None:
    await outbox.enqueue([notification(number, not_before=T0 + number) for number in range(5)])
    first = await outbox.claim_due(T0 + 10, 2, LEASE)
    assert [item.id for item in first] == [notification(0).id, notification(1).id]
    assert len(await outbox.claim_due(T0 + 10, 10, LEASE)) == 3
    assert await outbox.claim_due(T0 + 10, 0, LEASE) == []


async def check_a_claimed_notification_is_not_claimed_again_within_its_lease(outbox: Outbox) -> None:
    await outbox.enqueue([notification(1)])
    assert len(await outbox.claim_due(T0, 10, LEASE)) == 1
    assert await outbox.claim_due(T0 + LEASE - 1, 10, LEASE) == []
    assert await outbox.pending() == 1  # claimed, still in the outbox


async def check_a_claim_whose_worker_died_is_due_again_after_the_lease(outbox: Outbox) -> None:
    await outbox.enqueue([notification(1)])
    await outbox.claim_due(T0, 10, LEASE)  # this worker dies without acknowledging
    again = await outbox.claim_due(T0 + LEASE, 10, LEASE)
    assert [item.id for item in again] == [notification(1).id]
    assert again[0].attempts == 0


async def check_concurrent_claims_never_share_a_notification(outbox: Outbox) -> None:
    await outbox.enqueue([notification(number) for number in range(30)])
    claims = await asyncio.gather(*(outbox.claim_due(T0, 4, LEASE) for _ in range(10)))
    ids = [item.id for claim in claims for item in claim]
    assert len(ids) == len(set(ids)) == 30


async def check_delivered_forgets_the_message_and_remembers_the_id(outbox: Outbox) -> None:
    await outbox.enqueue([notification(1), notification(2)])
    [first, _] = await outbox.claim_due(T0, 10, LEASE)
    assert await outbox.delivered(first.id)
    assert not await outbox.delivered(first.id)  # a second acknowledgement changes nothing
    assert await outbox.pending() == 1
    assert await outbox.enqueue([notification(1)]) == 0  # the same event decided again: not sent again
    assert [item.id for item in await outbox.claim_due(T0 + LEASE, 10, LEASE)] == [notification(2).id]


async def check_retry_later_counts_an_attempt_and_waits(outbox: Outbox) -> None:
    await outbox.enqueue([notification(1)])
    [claimed] = await outbox.claim_due(T0, 10, LEASE)
    assert await outbox.retry_later(claimed, T0 + 7, "HTTP 500")
    assert await outbox.claim_due(T0 + 6.9, 10, LEASE) == []
    [again] = await outbox.claim_due(T0 + 7, 10, LEASE)
    assert (again.attempts, again.not_before, again.body) == (1, T0 + 7, notification(1).body)
    assert await outbox.retry_later(again, T0 + 9, "HTTP 502")
    [third] = await outbox.claim_due(T0 + 9, 10, LEASE)
    assert third.attempts == 2


async def check_postpone_waits_without_counting_an_attempt(outbox: Outbox) -> None:
    await outbox.enqueue([notification(1)])
    [claimed] = await outbox.claim_due(T0, 10, LEASE)
    assert await outbox.postpone(claimed, T0 + 1)
    assert await outbox.claim_due(T0 + 0.5, 10, LEASE) == []
    [again] = await outbox.claim_due(T0 + 1, 10, LEASE)
    assert again.attempts == 0


async def check_late_acknowledgements_of_a_finished_notification_change_nothing(outbox: Outbox) -> None:
    """A worker whose lease ran out acknowledges after another one delivered the notification."""
    await outbox.enqueue([notification(1)])
    [stale] = await outbox.claim_due(T0, 10, LEASE)
    [fresh] = await outbox.claim_due(T0 + LEASE, 10, LEASE)
    assert await outbox.delivered(fresh.id)
    assert not await outbox.retry_later(stale, T0 + LEASE + 1, "timeout")
    assert not await outbox.postpone(stale, T0 + LEASE + 1)
    assert not await outbox.give_up(stale, "HTTP 404")
    assert await outbox.pending() == 0
    assert await outbox.failed() == []
    assert await outbox.claim_due(T0 + 10 * LEASE, 10, LEASE) == []


async def check_give_up_moves_the_notification_to_the_failed_list(outbox: Outbox) -> None:
    await outbox.enqueue([notification(1), notification(2)])
    [first, second] = await outbox.claim_due(T0, 10, LEASE)
    await outbox.retry_later(first, T0 + 1, "HTTP 503: over capacity")
    [first] = await outbox.claim_due(T0 + 1, 10, LEASE)
    assert await outbox.give_up(first, "HTTP 404: no_service")
    assert await outbox.give_up(second, "HTTP 410: channel_is_archived")
    assert await outbox.pending() == 0
    failed = await outbox.failed()
    assert [(item.notification.id, item.reason) for item in failed] == [
        (second.id, "HTTP 410: channel_is_archived"),
        (first.id, "HTTP 404: no_service"),
    ]
    assert failed[1].last_error == "HTTP 503: over capacity"
    assert failed[1].notification == replace(first)
    assert [item.notification.id for item in await outbox.failed(limit=1)] == [second.id]
    assert await outbox.enqueue([notification(1)]) == 0  # a failed id is not queued again either


async def check_bodies_and_fields_survive_the_round_trip(outbox: Outbox) -> None:
    odd = notification(1, body=bytes(range(256)), created_at=T0 - 0.125, id="r/ü/🙂 x:y/1")
    await outbox.enqueue([odd])
    assert await outbox.claim_due(T0, 10, LEASE) == [odd]


CONTRACT = (
    check_enqueue_counts_only_new_notifications,
    check_a_queued_id_keeps_its_first_body,
    check_claim_takes_due_notifications_earliest_first,
    check_claim_takes_at_most_limit,
    check_a_claimed_notification_is_not_claimed_again_within_its_lease,
    check_a_claim_whose_worker_died_is_due_again_after_the_lease,
    check_concurrent_claims_never_share_a_notification,
    check_delivered_forgets_the_message_and_remembers_the_id,
    check_retry_later_counts_an_attempt_and_waits,
    check_postpone_waits_without_counting_an_attempt,
    check_late_acknowledgements_of_a_finished_notification_change_nothing,
    check_give_up_moves_the_notification_to_the_failed_list,
    check_bodies_and_fields_survive_the_round_trip,
)
