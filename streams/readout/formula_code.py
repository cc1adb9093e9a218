"""A catalog formula as a Python function: ``Formula.evaluate``'s arithmetic without walking its tree. Pure.

``/metrics`` evaluates hundreds of thousands of formulas per render at scale; walking the syntax
tree for each was most of the rendering time. ``compiled(formula)`` turns the tree, once, into the
source of one Python function with the same operations in the same order (counters absent are 0,
a division by zero gives None, None goes through every operation), so the results are identical,
float for float (``tests/unit/readout/test_formula_code.py`` checks every catalog formula).
The source is made from the validated tree only (numbers, counter names as string literals, the
four operators and ``at_least``), never from text.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import cast

from schemas.formula import Formula, guard_of

Compiled = Callable[[Mapping[str, float]], float | None]


def _add(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None else left + right


def _sub(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None else left - right


def _mul(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None else left * right


def _div(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None or right == 0 else left / right


def _neg(operand: float | None) -> float | None:
    return None if operand is None else -operand


def _at_least(value: float | None, bound: float) -> float | None:
    return None if value is None or value < bound else value


_OPERATORS = {ast.Add: "_add", ast.Sub: "_sub", ast.Mult: "_mul", ast.Div: "_div"}
_HELPERS: dict[str, object] = {"_add": _add, "_sub": _sub, "_mul": _mul, "_div": _div, "_neg": _neg}
_HELPERS |= {"_at_least": _at_least, "_float": float}


def _source(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return repr(float(cast(float, node.value)))  # an int or a float (Formula.parse checks)
    if isinstance(node, ast.Name):
        return f"_float(values.get({node.id!r}, 0.0))"
    if isinstance(node, ast.UnaryOp):
        return f"_neg({_source(node.operand)})"
    if isinstance(node, ast.BinOp):
        return f"{_OPERATORS[type(node.op)]}({_source(node.left)}, {_source(node.right)})"
    guard = guard_of(node)
    if guard is not None:
        return f"_at_least({_source(guard[0])}, {guard[1]!r})"
    raise ValueError(f"not a formula node: {ast.dump(node)}")  # Formula.parse admits nothing else


def compiled(formula: Formula) -> Compiled:
    """A function of the counter values that returns what ``formula.evaluate`` returns."""
    code = compile(f"lambda values: {_source(formula.tree.body)}", f"<formula {formula.source}>", "eval")
    function: Compiled = eval(code, dict(_HELPERS))  # the source is built from the checked tree above
    return function
