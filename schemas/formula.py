"""KPI formulas: arithmetic over counter names, parsed once and evaluated often.

``email_replies / emails_sent`` or ``call_duration_seconds / calls``: numbers,
counter names, ``+ - * /``, unary minus and parentheses. A division by zero
yields ``None`` (the KPI has no value in that window) instead of raising, and so
does ``at_least(x, n)`` where ``x`` is below the number ``n``: the guard of a value
computed from too small a sample (``revenue / at_least(deals_won, 5)``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
AT_LEAST = "at_least"


def guard_of(node: ast.AST) -> tuple[ast.expr, float] | None:
    """(x, n) of a valid ``at_least(x, n)`` call; None for any other node."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == AT_LEAST):
        return None
    if len(node.args) != 2 or node.keywords:
        return None
    bound = node.args[1]
    if not (isinstance(bound, ast.Constant) and type(bound.value) in (int, float)):
        return None
    return node.args[0], float(cast(float, bound.value))


class FormulaError(ValueError):
    pass


def _check(node: ast.AST, source: str) -> None:
    if isinstance(node, ast.Expression):
        _check(node.body, source)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
        _check(node.left, source)
        _check(node.right, source)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        _check(node.operand, source)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        pass
    elif (guard := guard_of(node)) is not None:
        _check(guard[0], source)
    elif not isinstance(node, ast.Name):
        raise FormulaError(f"unsupported syntax in formula {source!r}: {ast.unparse(node)!r}")


def _evaluate(node: ast.AST, values: Mapping[str, float]) -> float | None:
    if isinstance(node, ast.Constant):
        return float(cast(float, node.value))
    if isinstance(node, ast.Name):
        return float(values.get(node.id, 0.0))
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return None if operand is None else -operand
    guard = guard_of(node)
    if guard is not None:
        guarded = _evaluate(guard[0], values)
        return None if guarded is None or guarded < guard[1] else guarded
    assert isinstance(node, ast.BinOp)
    left = _evaluate(node.left, values)
    right = _evaluate(node.right, values)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return None if right == 0 else left / right


@dataclass(frozen=True)
class Formula:
    source: str
    tree: ast.Expression = field(compare=False, repr=False)
    names: frozenset[str] = field(compare=False)

    @classmethod
    def parse(cls, source: str) -> Formula:
        source = source.strip()
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise FormulaError(f"formula {source!r} is not an expression: {exc.msg}") from None
        _check(tree, source)
        functions = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        names = frozenset(
            node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in functions
        )
        return cls(source=source, tree=tree, names=names)

    def evaluate(self, values: Mapping[str, float]) -> float | None:
        """The formula's value; counters absent from ``values`` are 0; x/0 is None."""
        return _evaluate(self.tree.body, values)

    def is_additive(self) -> bool:
        """Counters joined by ``+`` and ``-`` only (``calls``, ``email_campaign_sends - email_bounces``).

        Such a value adds up: over time (a month is the sum of its days) and over
        workers (each worker's share of a scope sums to the scope's value), so a
        target and a pace make sense for it and Prometheus may ``sum`` it.
        """
        return all(
            isinstance(node, ast.Expression | ast.Name | ast.Load | ast.Add | ast.Sub | ast.USub)
            or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub))
            or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub))
            for node in ast.walk(self.tree)
        )

    def ratio_parts(self) -> tuple[Formula, Formula] | None:
        """Numerator and denominator of a formula that is one division at the top; None otherwise.

        ``deals_won / (deals_won + deals_lost)`` gives ``deals_won`` and
        ``deals_won + deals_lost``: the successes and the sample size of a rate.
        """
        body = self.tree.body
        if not (isinstance(body, ast.BinOp) and isinstance(body.op, ast.Div)):
            return None
        return Formula.parse(ast.unparse(body.left)), Formula.parse(ast.unparse(body.right))
