"""Load a YAML file into a pydantic model, reporting errors as ``file:line:column``.

PyYAML's composed node tree keeps the position of every value; when pydantic
rejects the data, each error's location (a path of keys and indexes) is walked
back down that tree to the line the user has to fix.

Hostile files are refused before they are parsed, since PyYAML's time grows with the
square of the nesting: more than ``MAX_YAML_CHARS`` characters, brackets nested deeper
than ``MAX_FLOW_DEPTH`` (counted in the raw text, quotes or not) and lines indented more
than ``MAX_INDENT`` spaces. Anchors and aliases (``&name``, ``*name``, ``<<: *name``) work,
but a file whose aliases expand it to more than ``MAX_YAML_VALUES`` values (nine lines
can make billions: "billion laughs") or that refers to itself is refused before it is
loaded, in time linear in its size.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError

MAX_YAML_CHARS = 1_000_000
MAX_FLOW_DEPTH = 64
MAX_INDENT = 256
MAX_YAML_VALUES = 100_000
BRACKETS = re.compile(r"[\[\]{}]")
ModelT = TypeVar("ModelT", bound=BaseModel)
Location = tuple[int | str, ...]


class ConfigFileError(ValueError):
    """A config file that cannot be used; ``problems`` are ``file:line:col: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _position(path: Path, mark: yaml.Mark | None) -> str:
    if mark is None:
        return str(path)
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _child(node: yaml.Node, step: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(step):
                return cast(yaml.Node, value_node)
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        return cast(yaml.Node, node.value[step])
    return None


def _node_at(root: yaml.Node, loc: Location) -> yaml.Node:
    """The deepest node on the error's path (a missing field points at its parent)."""
    node = root
    for step in loc:
        child = _child(node, step)
        if child is None:
            break
        node = child
    return node


def _shape_problems(path: Path, text: str) -> list[str]:
    """Nesting too deep to parse in reasonable time (a linear scan of the raw text)."""
    if len(text) > MAX_YAML_CHARS:
        return [f"{path}: {len(text):,} characters, more than the {MAX_YAML_CHARS:,} a file may have"]
    depth = 0
    for match in BRACKETS.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        if depth > MAX_FLOW_DEPTH:
            line = text.count("\n", 0, match.start()) + 1
            return [f"{path}:{line}: brackets nested more than {MAX_FLOW_DEPTH} deep"]
    for number, line_text in enumerate(text.splitlines(), start=1):
        if len(line_text) - len(line_text.lstrip(" ")) > MAX_INDENT:
            return [f"{path}:{number}: indented more than {MAX_INDENT} spaces"]
    return []


def _expansion_problems(path: Path, root: yaml.Node) -> list[str]:
    """Whether the aliases expand the file past ``MAX_YAML_VALUES`` values, or make it refer to itself.

    The composed tree shares an aliased node between its uses; its size once expanded is
    summed over that graph with each node's size computed once.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def expanded(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise ConfigFileError(
                [f"{_position(path, node.start_mark)}: this value contains itself (through an alias)"]
            )
        open_nodes.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        size = 1
        for child in children:
            size = min(MAX_YAML_VALUES + 1, size + expanded(child))
        open_nodes.discard(id(node))
        sizes[id(node)] = size
        return size

    if expanded(root) > MAX_YAML_VALUES:
        return [
            f"{path}: its aliases (*name) expand it to more than {MAX_YAML_VALUES:,} values: write it out with fewer"
        ]
    return []


def _key_problems(path: Path, node: yaml.Node) -> list[str]:
    """Duplicate keys (PyYAML silently keeps the last) and keys that are not plain values."""
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(f"{_position(path, key_node.start_mark)}: a key must be a plain value")
            elif key_node.value in seen:
                problems.append(f"{_position(path, key_node.start_mark)}: duplicate key {key_node.value!r}")
            else:
                seen.add(key_node.value)
            problems.extend(_key_problems(path, value_node))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems.extend(_key_problems(path, item))
    return problems


def _describe(loc: Location, message: str) -> str:
    where = ".".join(str(step) for step in loc)
    return f"{where}: {message}" if where else message


CrossCheck = Callable[[ModelT], list[tuple[Location, str]]]


def load_yaml_model(path: Path, model: type[ModelT], cross_check: CrossCheck[ModelT] | None = None) -> ModelT:
    """Parse and validate ``path``; raise ConfigFileError naming every problem's line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError([f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8"]) from exc
    problems = _shape_problems(path, text)
    if problems:
        raise ConfigFileError(problems)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader) or yaml.compose("{}", Loader=yaml.SafeLoader)
        problems = _expansion_problems(path, root) or _key_problems(path, root)
        if problems:
            raise ConfigFileError(problems)
        data = yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as exc:
        raise ConfigFileError([f"{_position(path, exc.problem_mark)}: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError([f"{path}: {exc}"]) from exc
    except RecursionError:  # a structure within the bounds above that PyYAML still cannot hold
        raise ConfigFileError([f"{path}: nested too deeply"]) from None
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        located = [(tuple(error["loc"]), error["msg"].removeprefix("Value error, ")) for error in exc.errors()]
        raise ConfigFileError(_locate(path, root, located)) from exc
    if cross_check is not None and (located := cross_check(loaded)):
        raise ConfigFileError(_locate(path, root, located))
    return loaded


def _locate(path: Path, root: yaml.Node, located: list[tuple[Location, str]]) -> list[str]:
    return [f"{_position(path, _node_at(root, loc).start_mark)}: {_describe(loc, message)}" for loc, message in located]
