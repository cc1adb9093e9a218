"""What each field of the event contract holds, as the kinds of value a CSV cell is converted to."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import NoneType, UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime

from schemas.events import EVENT_MODELS, EVENT_TYPES

ValueKind = Literal["timestamp", "whole number", "number", "decimal", "text"]


def _leaf_types(annotation: object) -> list[object]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaf_types(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return [leaf for arg in get_args(annotation) for leaf in _leaf_types(arg)]
    return [annotation]


def _kind_of(annotation: object) -> ValueKind:
    leaves = [leaf for leaf in _leaf_types(annotation) if leaf is not NoneType]
    if any(leaf is AwareDatetime or leaf is datetime for leaf in leaves):
        return "timestamp"
    if int in leaves:
        return "whole number"
    if float in leaves:
        return "number"
    return "decimal" if Decimal in leaves else "text"


CONTRACT_KINDS: dict[str, dict[str, ValueKind]] = {
    _type: {name: _kind_of(info.annotation) for name, info in model.model_fields.items()}
    for _type, model in zip(EVENT_TYPES, EVENT_MODELS, strict=True)
}
"""Per event type, what each field of the contract holds: rendered text is converted to it."""

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    _type: tuple(
        name for name, info in model.model_fields.items() if info.is_required() and name not in ("type", "source")
    )
    for _type, model in zip(EVENT_TYPES, EVENT_MODELS, strict=True)
}
"""Per event type, the fields an event spec must give (``type`` and ``source`` come from the mapping itself)."""
