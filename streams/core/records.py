"""Messages as the pure core sees them: where each came from, what it became, and the facts it adds."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import AnyEvent
from streams.core.validation import Rejection

UNKNOWN_CHANNEL = "unknown"  # the channel of a lead or web session that names none, so channels add up to the total


@dataclass(frozen=True)
class Fact:
    """``counters`` at event time ``timestamp`` in the scopes of (team, rep, channel, campaign).

    Without a campaign the counters go to no campaign scope (see ``schemas.scopes.Scope``).
    """

    timestamp: int
    team: str | None
    rep: str | None
    channel: str | None
    counters: dict[str, float]
    campaign: str | None = None


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
    # The event time in epoch seconds, computed once: dedup, entities and folding all read it.
    timestamp: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", int(self.event.occurred_at.timestamp()))


@dataclass(frozen=True)
class Rejected:
    position: Position
    rejection: Rejection


@dataclass(frozen=True)
class Forwarded:
    """Sent on to the partition of its routing key (the rekeyed topic), where it is folded."""

    position: Position


Record = Accepted | Rejected | Forwarded
