"""Messages as the pure core sees them: where each came from and what it became."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import AnyEvent
from streams.validation import Rejection


@dataclass(frozen=True)
class Position:
    """A message's place in Kafka; state remembers the last one applied per topic."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Accepted:
    position: Position
    event: AnyEvent

    @property
    def timestamp(self) -> int:
        return int(self.event.occurred_at.timestamp())


@dataclass(frozen=True)
class Rejected:
    position: Position
    rejection: Rejection


@dataclass(frozen=True)
class Forwarded:
    """Sent on to the partition of its routing key (the rekeyed topic), where it is folded."""

    position: Position


Record = Accepted | Rejected | Forwarded
