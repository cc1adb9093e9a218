"""Load a YAML file into a pydantic model, reporting errors as ``file:line:column``.

PyYAML's composed node tree keeps the position of every value; when pydantic
rejects the data, each error's location (a path of keys and indexes) is walked
back down that tree to the line the user has to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError

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
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader) or yaml.compose("{}", Loader=yaml.SafeLoader)
        problems = _key_problems(path, root)
        if problems:
            raise ConfigFileError(problems)
        data = yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as exc:
        raise ConfigFileError([f"{_position(path, exc.problem_mark)}: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError([f"{path}: {exc}"]) from exc
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
