"""Turn one raw Kafka message into a valid event or a rejection with its reason. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from schemas.events import INTERNAL_TYPES, AnyEvent, field_of, parse_event

# pydantic error types -> the reason code kept on the dead letter and in metrics
_REASONS = {
    "json_invalid": "invalid_json",
    "dict_type": "not_an_object",
    "union_tag_not_found": "missing_type",
    "union_tag_invalid": "unknown_type",
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "timezone_aware": "naive_timestamp",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "score_out_of_range": "out_of_range",
    "currency_missing": "missing_field",
}
REASON_CODES = (
    "empty_message",
    "too_large",
    "future_timestamp",
    "too_old",
    "internal_type",
    "unknown_currency",
    "unknown_rep",  # labels.reps.unknown: deadletter (streams.core.labels)
    "unknown_team",
    "invalid_field",
    *sorted(set(_REASONS.values())),
    "processing_error",  # valid, but processing it raised: a kpimon bug, isolated so the worker goes on
)
MAX_DETAILS = 3


@dataclass(frozen=True)
class Rejection:
    """Why a message was not accepted: a stable code and a sentence for people."""

    reason: str
    detail: str


def _describe(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    reason = _REASONS.get(errors[0]["type"], "invalid_field")
    parts = []
    for error in errors[:MAX_DETAILS]:
        if error["type"] == "union_tag_invalid":
            tag = error.get("ctx", {}).get("tag")
            parts.append(f"unknown event type {tag!r}; `kpimon schema` lists the accepted types")
            continue
        where = ".".join(str(step) for step in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    if len(errors) > MAX_DETAILS:
        parts.append(f"and {len(errors) - MAX_DETAILS} more")
    return Rejection(reason, "; ".join(parts))


def validate_message(
    raw: bytes | None,
    *,
    max_bytes: int,
    now: float,
    future_tolerance_seconds: float,
    past_horizon_seconds: float | None = None,
    known_currencies: frozenset[str] | None = None,
    internal_allowed: bool = False,
) -> AnyEvent | Rejection:
    """Validate one message against the contract; never raises on bad input.

    ``known_currencies`` are those the config file has a rate for
    (``KpimonConfig.known_currencies()``): money in any other currency is
    rejected. None does not check currencies (for callers without a config).
    Times (``occurred_at``, a won deal's ``opened_at``) older than ``past_horizon_seconds``
    before ``now`` are rejected (None: no such bound). The types kpimon sends itself
    (``INTERNAL_TYPES``) are accepted only with ``internal_allowed``: from its re-keyed topic.
    """
    if not raw:
        return Rejection("empty_message", "the message has no value")
    if len(raw) > max_bytes:
        return Rejection("too_large", f"the message is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        event = parse_event(raw)
    except ValidationError as exc:
        return _describe(exc)
    if event.type in INTERNAL_TYPES and not internal_allowed:
        return Rejection(
            "internal_type", f"{event.type} is sent by kpimon itself; producers cannot send it to a source topic"
        )
    ahead = event.occurred_at.timestamp() - now
    if ahead > future_tolerance_seconds:
        return Rejection(
            "future_timestamp",
            f"occurred_at {event.occurred_at.isoformat()} is {ahead:.0f} s in the future "
            f"(tolerance {future_tolerance_seconds:.0f} s): check the producer's clock",
        )
    if past_horizon_seconds is not None:
        for name in ("occurred_at", "opened_at"):
            at = field_of(event, name)
            if at is not None and now - at.timestamp() > past_horizon_seconds:
                return Rejection(
                    "too_old",
                    f"{name} {at.isoformat()} is more than {past_horizon_seconds / 86_400:.0f} days in the past "
                    "(KPIMON_PAST_HORIZON_DAYS): check the producer's clock, or raise the horizon for a backfill",
                )
    currency = field_of(event, "currency")
    if known_currencies is not None and currency is not None and currency not in known_currencies:
        return Rejection(
            "unknown_currency",
            f"currency {currency!r} has no rate: add it under currency_rates in the config file, or fix the producer",
        )
    return event
