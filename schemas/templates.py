"""Templates of a mapping's field values: ``"maven-{opportunity_id}"``, ``"{teams.regional_office}"``.

Literal text and ``{placeholders}`` (a column of the data row, or ``join.column``
of the row a join found); ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Placeholder:
    """``{name}`` in a template: a column of the data row, or ``join.column`` of the row a join found."""

    name: str


TemplatePart = str | Placeholder
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@cache
def parse_template(text: str) -> tuple[TemplatePart, ...]:
    """Split a template into literal text and placeholders; ValueError on a lone brace or ``{}``."""
    parts: list[TemplatePart] = []
    literal = ""
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
        elif token in ("{", "}"):
            raise ValueError(f"unmatched {token!r} in {text!r} (write {token * 2} for a literal brace)")
        elif not match.group(1).strip():
            raise ValueError(f"empty placeholder {{}} in {text!r}")
        else:
            parts += [literal, Placeholder(match.group(1))] if literal else [Placeholder(match.group(1))]
            literal = ""
    literal += text[position:]
    return (*parts, literal) if literal else tuple(parts)


def placeholders(text: str) -> list[str]:
    """The names between braces in a template, in order."""
    return [part.name for part in parse_template(text) if isinstance(part, Placeholder)]
