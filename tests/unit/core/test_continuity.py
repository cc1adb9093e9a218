"""The continuity guard: skipped messages are re-read, never jumped over."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.continuity import Admission, ContinuityGuard, PartitionTail
from streams.core.records import Position

TOPIC = "crm"


def _positions(*offsets: int, partition: int = 0) -> list[Position]:
    return [Position(TOPIC, partition, offset) for offset in offsets]


def _admit(guard: ContinuityGuard, positions: list[Position], applied: int | None, generation: int = 1) -> Admission:
    return guard.admit(positions, lambda topic, partition: applied, generation=generation, now=0.0)


def test_first_batch_without_state_is_admitted_whatever_its_offsets() -> None:
    admission = _admit(ContinuityGuard(), _positions(40, 41, 42), None)
    assert admission.admitted == _positions(40, 41, 42)
    assert admission.rewinds == []


def test_contiguous_and_redelivered_offsets_are_admitted() -> None:
    admission = _admit(ContinuityGuard(), _positions(8, 9, 10, 11, 12), 9)
    assert admission.admitted == _positions(8, 9, 10, 11, 12)
    assert admission.rewinds == []


def test_a_gap_holds_the_partition_back_and_rewinds_to_the_first_missing_offset() -> None:
    guard = ContinuityGuard()
    batch = _positions(10, 11, 14, 15) + _positions(3, 4, 5, partition=1)
    applied = {0: 9, 1: 2}
    admission = guard.admit(batch, lambda topic, partition: applied[partition], generation=1, now=0.0)
    assert admission.admitted == _positions(10, 11) + _positions(3, 4, 5, partition=1)
    assert admission.rewinds == [Position(TOPIC, 0, 12)]
    assert admission.held_back == 2
    assert guard.rewinds_total == 1


def test_messages_fetched_before_the_rewind_are_held_back_until_the_refetch_arrives() -> None:
    guard = ContinuityGuard()
    _admit(guard, _positions(14, 15), 11)
    stale = _admit(guard, _positions(16, 17), 11)
    assert stale.admitted == [] and stale.held_back == 2 and stale.rewinds == []
    refetch = _admit(guard, _positions(12, 13, 14, 15, 16), 11)
    assert refetch.admitted == _positions(12, 13, 14, 15, 16)
    assert refetch.accepted_gap_offsets == 0


def test_a_real_gap_is_accepted_after_one_rewind() -> None:
    guard = ContinuityGuard()
    _admit(guard, _positions(14, 15), 11)  # 12, 13 hold no message
    refetch = _admit(guard, _positions(14, 15, 16), 11)
    assert refetch.admitted == _positions(14, 15, 16)
    assert refetch.accepted_gap_offsets == 2
    assert guard.accepted_gap_offsets_total == 2


def test_a_rebalance_forgets_a_pending_rewind_and_checks_again() -> None:
    guard = ContinuityGuard()
    _admit(guard, _positions(14, 15), 11)
    after_rebalance = _admit(guard, _positions(20, 21), 11, generation=2)
    assert after_rebalance.admitted == []
    assert after_rebalance.rewinds == [Position(TOPIC, 0, 12)]


@dataclass
class LossyConsumer:
    """One partition read in batches, dropping the messages that ``drops`` marks (one flag per delivery).

    ``log`` holds the offsets that carry a message (the others are gaps, as after
    transaction markers). Messages already fetched when a rewind arrives are still
    delivered first, as Faust's buffers do. Faust drops messages while a rebalance
    ends, so every drop comes with a new generation.
    """

    log: list[int]
    drops: list[bool]
    batch_size: int
    position: int = 0
    deliveries: int = 0
    generation: int = 1
    fetched: list[int] = field(default_factory=list)

    def next_batch(self) -> list[int]:
        while len(self.fetched) < self.batch_size and self.position < len(self.log):
            self.fetched.append(self.log[self.position])
            self.position += 1
        batch, self.fetched = self.fetched[: self.batch_size], self.fetched[self.batch_size :]
        delivered = []
        for offset in batch:
            dropped = self.deliveries < len(self.drops) and self.drops[self.deliveries]
            self.deliveries += 1
            if dropped:
                self.generation += 1
            else:
                delivered.append(offset)
        return delivered

    def seek(self, offset: int) -> None:
        self.position = next((i for i, o in enumerate(self.log) if o >= offset), len(self.log))

    @property
    def exhausted(self) -> bool:
        return self.position == len(self.log) and not self.fetched


def test_an_idle_partition_ending_below_the_log_end_is_rewound_once() -> None:
    guard = ContinuityGuard()
    tail = PartitionTail(TOPIC, 0, end_offset=20, fetch_position=20)
    guard.admit(_positions(16, 17), lambda topic, partition: 15, generation=1, now=100.0)
    assert guard.tail_rewind(tail, 17, generation=1, now=103.0, idle_seconds=5) is None  # not idle yet
    assert guard.tail_rewind(tail, 17, generation=1, now=106.0, idle_seconds=5) == Position(TOPIC, 0, 18)
    assert guard.tail_rewind(tail, 17, generation=1, now=120.0, idle_seconds=5) is None  # already re-reading
    refetch = guard.admit(_positions(18, 19), lambda topic, partition: 17, generation=1, now=121.0)
    assert refetch.admitted == _positions(18, 19)


def test_no_tail_rewind_while_fetching_or_when_the_state_is_at_the_end() -> None:
    guard = ContinuityGuard()
    assert guard.tail_rewind(PartitionTail(TOPIC, 0, 20, 20), 19, generation=1, now=0.0, idle_seconds=0) is None
    assert guard.tail_rewind(PartitionTail(TOPIC, 0, 20, 12), 11, generation=1, now=0.0, idle_seconds=0) is None
    assert guard.tail_rewind(PartitionTail(TOPIC, 0, 20, 20), None, generation=1, now=0.0, idle_seconds=0) is None


@settings(max_examples=400, deadline=None)
@given(
    gaps=st.lists(st.booleans(), min_size=1, max_size=60),
    drops=st.lists(st.booleans(), max_size=80),
    batch_size=st.integers(min_value=1, max_value=7),
)
def test_every_message_is_applied_once_and_in_order_despite_drops(
    gaps: list[bool], drops: list[bool], batch_size: int
) -> None:
    log = [offset for offset, gap in enumerate(gaps) if not gap]
    consumer = LossyConsumer(log, drops, batch_size)
    guard = ContinuityGuard()
    applied: list[int] = []  # what the fold applies: offsets above the last one applied
    for now in range(1000):
        last_applied = applied[-1] if applied else -1  # the partition starts at offset 0
        admission = guard.admit(
            _positions(*consumer.next_batch()),
            lambda _t, _p: last_applied,  # noqa: B023
            generation=consumer.generation,
            now=float(now),
        )
        for position in admission.admitted:
            if position.offset > (applied[-1] if applied else -1):
                applied.append(position.offset)
        for rewind in admission.rewinds:
            consumer.seek(rewind.offset)
        fetch_position = consumer.log[consumer.position] if consumer.position < len(log) else len(gaps)
        tail = PartitionTail(TOPIC, 0, end_offset=len(gaps), fetch_position=fetch_position)
        rewind = guard.tail_rewind(
            tail, applied[-1] if applied else -1, generation=consumer.generation, now=float(now), idle_seconds=2
        )
        if rewind is not None:
            consumer.seek(rewind.offset)
    assert applied == log
