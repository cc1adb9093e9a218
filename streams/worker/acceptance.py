"""What the worker accepts besides the contract, for producers that check events before sending them."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.config import KpimonConfig
from schemas.events import AnyEvent
from streams.core.validation import Rejection, validate_message
from streams.worker.settings import Settings


@dataclass(frozen=True)
class Acceptance:
    """What the worker rejects besides the contract (``KPIMON_MAX_EVENT_BYTES``, ``..._FUTURE_TOLERANCE_SECONDS``,
    ``..._PAST_HORIZON_DAYS``, currencies without a rate)."""

    max_event_bytes: int = 65536
    future_tolerance_seconds: float = 300.0
    known_currencies: frozenset[str] | None = frozenset({"USD"})  # None: any currency
    past_horizon_seconds: float | None = None

    @classmethod
    def of(cls, settings: Settings, config: KpimonConfig) -> Acceptance:
        return cls(
            settings.max_event_bytes,
            settings.future_tolerance_seconds,
            config.known_currencies(),
            settings.past_horizon_days * 86_400,
        )

    def check(self, value: bytes, now: float) -> AnyEvent | Rejection:
        """The event, or why the worker would dead-letter ``value``."""
        return validate_message(
            value,
            max_bytes=self.max_event_bytes,
            now=now,
            future_tolerance_seconds=self.future_tolerance_seconds,
            past_horizon_seconds=self.past_horizon_seconds,
            known_currencies=self.known_currencies,
        )
