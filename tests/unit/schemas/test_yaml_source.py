"""schemas.yaml_source: hostile YAML (aliases, size, nesting) is refused before it is loaded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.config import KpimonConfig, load_config
from schemas.yaml_source import MAX_YAML_CHARS, MAX_YAML_VALUES, ConfigFileError, load_yaml_model

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "kpimon.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.perf_counter()
    with pytest.raises(ConfigFileError) as refused:
        load_yaml_model(path, KpimonConfig)
    assert time.perf_counter() - started < 1.0
    assert refused.value.problems == [
        f"{path}: its aliases (*name) expand it to more than {MAX_YAML_VALUES:,} values: write it out with fewer"
    ]


def test_a_value_containing_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kpimon.yaml"
    path.write_text("teams: &t\n  emea: *t\n")
    with pytest.raises(ConfigFileError, match=r"kpimon.yaml:1:8: this value contains itself \(through an alias\)"):
        load_config(path)


def test_aliases_within_the_bound_still_load(tmp_path: Path) -> None:
    path = tmp_path / "kpimon.yaml"
    path.write_text("teams:\n  emea: &t {timezone: Europe/Berlin}\n  dach: *t\n  amer:\n    <<: *t\n    name: A\n")
    teams = load_config(path).teams
    assert teams["dach"].timezone == teams["amer"].timezone == "Europe/Berlin"


def test_an_oversized_file_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "kpimon.yaml"
    path.write_text("# " + "x" * MAX_YAML_CHARS + "\n")
    with pytest.raises(ConfigFileError, match=f"more than the {MAX_YAML_CHARS:,} a file may have"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("teams: " + "[" * 200_000 + "]" * 200_000 + "\n", r"kpimon.yaml:1: brackets nested more than 64 deep"),
        ("teams:\n  x: " + "{a: " * 65 + "1" + "}" * 65 + "\n", r"kpimon.yaml:2: brackets nested more than 64 deep"),
        (
            "".join(f"{' ' * level}k{level}:\n" for level in range(300)),
            r"kpimon.yaml:258: indented more than 256 spaces",
        ),
    ],
    ids=["flow-200k", "flow-65", "block-300"],
)
def test_deep_nesting_is_refused_before_parsing(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kpimon.yaml"
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(ConfigFileError, match=message):
        load_config(path)
    assert time.perf_counter() - started < 1.0
