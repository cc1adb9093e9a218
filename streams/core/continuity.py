"""Let through only messages that continue, offset by offset, what the state has applied. Pure.

Faust can drop a few messages on the way to an agent: a message that reaches a
stream while a rebalance is finishing is skipped *and acknowledged*, so it is
neither processed nor fetched again, and its offset may even be committed. The
folded state remembers, per source partition, the last offset it applied, so a
gap between that offset and the next message delivered is visible. Applying the
later messages would make the state skip the missing ones for good (its
idempotency check is "offset greater than the last applied"), so instead:

1. the messages of that partition from the gap on are held back (not applied),
2. the consumer is rewound to the first missing offset,
3. messages fetched before the rewind, all beyond the held-back batch's last
   offset, are held back as they arrive,
4. the first message at or below that last offset is the refetch: it is applied,
   and if it is above the missing offset the gap is real (offsets that hold no
   record, such as transaction markers or deleted segments) and is accepted.

Messages skipped at the very end of a partition have no successor to reveal
them, so an idle partition whose state ends below the log end, although the
consumer has fetched up to that end, is rewound the same way (``tail_rewind``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from streams.core.records import Position

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class _Awaiting:
    offset: int  # the first missing offset, where the consumer was rewound to
    stale_above: int | None  # messages beyond this offset were fetched before the rewind (None: no such messages)
    generation: int  # a rebalance since the rewind re-seeks the partition anyway


@dataclass(frozen=True)
class PartitionTail:
    """Where the consumer stands on one source partition: the log end and its next fetch offset."""

    topic: str
    partition: int
    end_offset: int
    fetch_position: int


@dataclass
class Admission:
    admitted: list[Position] = field(default_factory=list)
    held_back: int = 0
    rewinds: list[Position] = field(default_factory=list)  # seek each partition back to this offset
    accepted_gap_offsets: int = 0


class ContinuityGuard:
    def __init__(self) -> None:
        self._awaiting: dict[TopicPartition, _Awaiting] = {}
        self._last_delivery: dict[TopicPartition, float] = {}
        self.rewinds_total = 0
        self.accepted_gap_offsets_total = 0

    def admit(
        self,
        positions: Sequence[Position],
        last_applied: Callable[[str, int], int | None],
        generation: int,
        now: float,
    ) -> Admission:
        """Split one batch's positions (in delivery order) into the ones to apply and rewinds."""
        admission = Admission()
        by_partition: dict[TopicPartition, list[Position]] = {}
        for position in positions:
            by_partition.setdefault((position.topic, position.partition), []).append(position)
        admitted = set()
        for (topic, partition), partition_positions in by_partition.items():
            self._last_delivery[(topic, partition)] = now
            applied = last_applied(topic, partition)
            expected = None if applied is None else applied + 1
            for index, position in enumerate(partition_positions):
                awaiting = self._pending_rewind(topic, partition, generation)
                if awaiting is not None:
                    if awaiting.stale_above is not None and position.offset > awaiting.stale_above:
                        admission.held_back += 1
                        continue
                    del self._awaiting[(topic, partition)]
                    admission.accepted_gap_offsets += max(0, position.offset - awaiting.offset)
                elif expected is not None and position.offset > expected:
                    self._awaiting[(topic, partition)] = _Awaiting(
                        offset=expected, stale_above=partition_positions[-1].offset, generation=generation
                    )
                    admission.rewinds.append(Position(topic, partition, expected))
                    admission.held_back += len(partition_positions) - index
                    break
                admitted.add(position)
                expected = max(expected or 0, position.offset + 1)
        admission.admitted = [position for position in positions if position in admitted]
        self.rewinds_total += len(admission.rewinds)
        self.accepted_gap_offsets_total += admission.accepted_gap_offsets
        return admission

    def tail_rewind(
        self, tail: PartitionTail, last_applied: int | None, generation: int, now: float, idle_seconds: float
    ) -> Position | None:
        """A rewind for a partition that went quiet with messages between its state and the log end."""
        key = (tail.topic, tail.partition)
        if (
            last_applied is None
            or tail.end_offset <= last_applied + 1
            or tail.fetch_position < tail.end_offset
            or now - self._last_delivery.get(key, now) < idle_seconds
            or self._pending_rewind(tail.topic, tail.partition, generation) is not None
        ):
            self._last_delivery.setdefault(key, now)
            return None
        self._awaiting[key] = _Awaiting(offset=last_applied + 1, stale_above=None, generation=generation)
        self.rewinds_total += 1
        return Position(tail.topic, tail.partition, last_applied + 1)

    def _pending_rewind(self, topic: str, partition: int, generation: int) -> _Awaiting | None:
        awaiting = self._awaiting.get((topic, partition))
        if awaiting is not None and awaiting.generation != generation:
            del self._awaiting[(topic, partition)]
            return None
        return awaiting
