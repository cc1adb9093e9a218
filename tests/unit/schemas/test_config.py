"""schemas.config and schemas.yaml_source: loading the teams/reps file with `file:line:col` problems."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from schemas.config import KpimonConfig, RepConfig, TeamConfig, load_config
from schemas.scopes import OVERALL, Scope
from schemas.yaml_source import ConfigFileError

VALID = """\
timezone: Europe/Berlin        # for the overall and channel scopes
teams:
  emea: {timezone: Europe/Berlin}
  amer: {timezone: America/New_York, name: Americas}
  apac: {}
reps:
  alice: {team: emea}
  bob:
    team: amer
    name: Bob B.
"""


def write(tmp_path: Path, text: str, name: str = "kpimon.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def test_valid_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config == KpimonConfig(
        timezone="Europe/Berlin",
        teams={
            "emea": TeamConfig(timezone="Europe/Berlin"),
            "amer": TeamConfig(timezone="America/New_York", name="Americas"),
            "apac": TeamConfig(),
        },
        reps={"alice": RepConfig(team="emea"), "bob": RepConfig(team="amer", name="Bob B.")},
    )


@pytest.mark.parametrize(
    ("lookup", "expected"),
    [("alice", "emea"), ("bob", "amer"), ("carol", None)],
)
def test_team_of(tmp_path: Path, lookup: str, expected: str | None) -> None:
    assert load_config(write(tmp_path, VALID)).team_of(lookup) == expected


@pytest.mark.parametrize(
    ("team", "expected"),
    [
        ("emea", "Europe/Berlin"),
        ("amer", "America/New_York"),
        ("apac", "UTC"),  # a team without a time zone has UTC, the TeamConfig default
        ("unassigned", "Europe/Berlin"),  # not a team: the file's default
        ("", "Europe/Berlin"),
    ],
)
def test_timezone_of(tmp_path: Path, team: str, expected: str) -> None:
    assert load_config(write(tmp_path, VALID)).timezone_of(team) == ZoneInfo(expected)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "timezone: UTC\nteams:\n  emea:\n    timezone: Mars/Olympus\n",
            "4:15: teams.emea.timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as 'Europe/Berlin')",
        ),
        (
            "timezone: Europe/Berln\n",
            "1:11: timezone: unknown time zone 'Europe/Berln' (use an IANA name such as 'Europe/Berlin')",
        ),
        (
            "timezone: ''\n",
            "1:11: timezone: unknown time zone '' (use an IANA name such as 'Europe/Berlin')",
        ),
        (
            "timezone: ../../etc/passwd\n",
            "1:11: timezone: unknown time zone '../../etc/passwd' (use an IANA name such as 'Europe/Berlin')",
        ),
        # extra keys, top level and nested
        ("timezone: UTC\ncolour: blue\n", "2:9: colour: Extra inputs are not permitted"),
        ("teams:\n  emea: {timezone: UTC, colour: red}\n", "2:33: teams.emea.colour: Extra inputs are not permitted"),
        (
            "reps:\n  alice:\n    team: emea\n    manager: bob\n",
            "4:14: reps.alice.manager: Extra inputs are not permitted",
        ),
        # wrong shapes
        ("teams: [emea, amer]\n", "1:8: teams: Input should be a valid dictionary"),
        ("teams:\n", "1:7: teams: Input should be a valid dictionary"),
        ("- a\n- b\n", "1:1: Input should be a valid dictionary or instance of KpimonConfig"),
        ("just text\n", "1:1: Input should be a valid dictionary or instance of KpimonConfig"),
        # a rep without a team: the error points at the rep (the missing field's parent)
        ("teams: {emea: {}}\nreps:\n  alice: {name: Alice}\n", "3:10: reps.alice.team: Field required"),
        # a team name that is not a label (the scope key separator | is excluded)
        (
            "teams: {emea: {}}\nreps:\n  alice: {team: 'em|ea'}\n",
            "3:17: reps.alice.team: String should match pattern '^[A-Za-z0-9_.:@/ -]+$'",
        ),
    ],
)
def test_invalid_field_reported_with_line_and_column(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}:{problem}"]


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("timezone: UTC\nteams:\n  emea: {}\n  emea: {}\n", ["4:3: duplicate key 'emea'"]),
        ("timezone: UTC\ntimezone: Europe/Berlin\n", ["2:1: duplicate key 'timezone'"]),
        (
            "teams:\n  emea: {timezone: UTC, timezone: UTC}\nreps:\n  a: {team: emea}\n  a: {team: emea}\n",
            ["2:25: duplicate key 'timezone'", "5:3: duplicate key 'a'"],
        ),
    ],
)
def test_duplicate_keys(tmp_path: Path, text: str, problems: list[str]) -> None:
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}:{problem}" for problem in problems]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("timezone: UTC\n  bad: indent\n", "2:6: mapping values are not allowed here"),
        ("timezone: UTC\nteams:\n\temea: {}\n", "3:1: found character '\\t' that cannot start any token"),
        ("timezone: UTC\nteams:\n  emea: {timezone: UTC\n", "4:1: expected ',' or '}', but got '<stream end>'"),
        ("reps:\n  alice: {team: emea}\n  bob: [\n", "4:1: expected the node content, but found '<stream end>'"),
    ],
)
def test_yaml_syntax_error_line(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}:{problem}"]


def test_rep_in_undefined_team_points_at_the_reps_team_line(tmp_path: Path) -> None:
    text = "teams:\n  emea: {}\nreps:\n  alice:\n    team: emea\n  bob:\n    name: Bob\n    team: apac\n"
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}:8:11: reps.bob.team: team 'apac' is not defined under teams (emea)"]


def test_every_rep_in_an_undefined_team_is_reported(tmp_path: Path) -> None:
    text = "reps:\n  alice: {team: emea}\n  bob: {team: amer}\n"
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:2:17: reps.alice.team: team 'emea' is not defined under teams (none defined)",
        f"{path}:3:15: reps.bob.team: team 'amer' is not defined under teams (none defined)",
    ]


def test_anchors_and_merge_keys_are_plain_yaml(tmp_path: Path) -> None:
    text = "teams:\n  emea: &t {timezone: Asia/Kolkata}\n  amer:\n    <<: *t\n    name: x\n  apac: *t\n"
    config = load_config(write(tmp_path, text))
    assert config.teams == {
        "emea": TeamConfig(timezone="Asia/Kolkata"),
        "amer": TeamConfig(timezone="Asia/Kolkata", name="x"),
        "apac": TeamConfig(timezone="Asia/Kolkata"),
    }


def test_minimal_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "{}\n")) == KpimonConfig()
    assert KpimonConfig() == KpimonConfig(timezone="UTC", teams={}, reps={})


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(write(tmp_path, text)) == KpimonConfig()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "missing.yaml", "No such file or directory"),
        (lambda tmp: tmp, "Is a directory"),
    ],
)
def test_unreadable_path(tmp_path: Path, make: object, reason: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    assert problems_of(path) == [f"{path}: cannot read: {reason}"]


def test_config_file_error_is_a_value_error() -> None:
    error = ConfigFileError(["a:1:1: x", "a:2:1: y"])
    assert isinstance(error, ValueError)
    assert error.problems == ["a:1:1: x", "a:2:1: y"]
    assert str(error) == "a:1:1: x\na:2:1: y"


@pytest.mark.parametrize(
    ("value", "valid"),
    [("UTC", True), ("Asia/Kathmandu", True), ("America/Argentina/Buenos_Aires", True), ("Nowhere/City", False)],
)
def test_time_zone_validation_on_the_model(value: str, valid: bool) -> None:
    if valid:
        assert KpimonConfig(timezone=value).timezone == value
        assert TeamConfig(timezone=value).timezone == value
    else:
        with pytest.raises(ValidationError, match="unknown time zone"):
            KpimonConfig(timezone=value)


# Inputs that make load_config raise something other than ConfigFileError: `kpimon check` and the
# worker (streams/tools/cli.py main) only catch ConfigFileError, so users get a traceback with no file position.
def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kpimon.yaml"
    path.write_bytes(b"timezone: \xff\n")
    problems_of(path)


def test_control_character_is_a_config_error(tmp_path: Path) -> None:
    problems_of(write(tmp_path, "timezone: UTC\x07\n"))


def test_python_tag_is_a_config_error(tmp_path: Path) -> None:
    problems_of(write(tmp_path, "timezone: !!python/name:os.system\n"))


def test_complex_key_is_a_config_error(tmp_path: Path) -> None:
    problems_of(write(tmp_path, "teams:\n  ? [a, b]\n  : {}\n"))


def test_time_zone_directory_is_a_config_error(tmp_path: Path) -> None:
    pytest.importorskip("tzdata")  # without the tzdata package ZoneInfo raises ZoneInfoNotFoundError
    path = write(tmp_path, "timezone: Europe\n")
    assert problems_of(path) == [
        f"{path}:1:11: timezone: unknown time zone 'Europe' (use an IANA name such as 'Europe/Berlin')"
    ]


# -- reporting currency and rates ---------------------------------------------------------------------------------

RATES = """\
reporting_currency: EUR
currency_rates:
  USD: 0.92
  GBP: '1.17'
  BRL: 0.16
  EUR: 1
"""


def test_rates_are_read_as_exact_decimals(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, RATES))
    assert config.reporting_currency == "EUR"
    assert config.currency_rates == {
        "USD": Decimal("0.92"),
        "GBP": Decimal("1.17"),
        "BRL": Decimal("0.16"),
        "EUR": Decimal("1"),
    }
    assert all(isinstance(rate, Decimal) for rate in config.currency_rates.values())


@pytest.mark.parametrize(
    ("currency", "rate"),
    [("EUR", Decimal("1")), ("USD", Decimal("0.92")), ("GBP", Decimal("1.17")), ("XYZ", None), ("eur", None)],
)
def test_rate_of(tmp_path: Path, currency: str, rate: Decimal | None) -> None:
    assert load_config(write(tmp_path, RATES)).rate_of(currency) == rate


def test_known_currencies(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, RATES)).known_currencies() == frozenset({"EUR", "USD", "GBP", "BRL"})


def test_default_currency_is_usd_with_no_other_rate() -> None:
    config = KpimonConfig()
    assert config.reporting_currency == "USD"
    assert config.currency_rates == {}
    assert config.known_currencies() == frozenset({"USD"})
    assert config.rate_of("USD") == Decimal(1)
    assert config.rate_of("EUR") is None


def test_reporting_currency_is_rate_1_even_when_not_listed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "reporting_currency: GBP\ncurrency_rates: {USD: 0.79}\n"))
    assert config.rate_of("GBP") == Decimal(1)
    assert config.known_currencies() == frozenset({"GBP", "USD"})


@pytest.mark.parametrize("one", ["1", "1.0", "'1.000'"])
def test_reporting_currency_listed_with_rate_1_is_accepted(tmp_path: Path, one: str) -> None:
    config = load_config(write(tmp_path, f"reporting_currency: EUR\ncurrency_rates:\n  EUR: {one}\n"))
    assert config.rate_of("EUR") == Decimal(1)


def test_reporting_currency_with_another_rate_points_at_its_line(tmp_path: Path) -> None:
    text = "reporting_currency: EUR\ncurrency_rates:\n  USD: 0.92\n  EUR: 1.08\n"
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:4:8: currency_rates.EUR: EUR is the reporting_currency, its rate is always 1 (got 1.08): "
        "remove it or set it to 1"
    ]


def test_reporting_currency_default_usd_listed_with_another_rate(tmp_path: Path) -> None:
    path = write(tmp_path, "currency_rates:\n  EUR: 1.08\n  USD: 0.5\n")
    assert problems_of(path) == [
        f"{path}:3:8: currency_rates.USD: USD is the reporting_currency, its rate is always 1 (got 0.5): "
        "remove it or set it to 1"
    ]


def test_rate_problem_and_team_problem_are_both_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "reps:\n  alice: {team: emea}\nreporting_currency: EUR\ncurrency_rates: {EUR: 2}\n")
    assert problems_of(path) == [
        f"{path}:2:17: reps.alice.team: team 'emea' is not defined under teams (none defined)",
        f"{path}:4:23: currency_rates.EUR: EUR is the reporting_currency, its rate is always 1 (got 2): "
        "remove it or set it to 1",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("currency_rates:\n  EUR: 0\n", "2:8: currency_rates.EUR: Input should be greater than 0"),
        ("currency_rates:\n  EUR: -1.08\n", "2:8: currency_rates.EUR: Input should be greater than 0"),
        ("currency_rates:\n  EUR: .nan\n", "2:8: currency_rates.EUR: Input should be a finite number"),
        ("currency_rates:\n  EUR: .inf\n", "2:8: currency_rates.EUR: Input should be a finite number"),
        ("currency_rates:\n  EUR: lots\n", "2:8: currency_rates.EUR: Input should be a valid decimal"),
        ("currency_rates:\n  EUR:\n", "2:7: currency_rates.EUR: Decimal input should be an integer, float, string"),
        (
            "currency_rates:\n  eur: 1.08\n",
            "2:8: currency_rates.eur.[key]: String should match pattern '^[A-Z]{3}$'",
        ),
        ("reporting_currency: euro\n", "1:21: reporting_currency: String should match pattern '^[A-Z]{3}$'"),
        ("currency_rates: [USD, EUR]\n", "1:17: currency_rates: Input should be a valid dictionary"),
    ],
)
def test_invalid_rates_reported_with_line_and_column(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    (reported,) = problems_of(path)
    assert reported.startswith(f"{path}:{problem}")


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[3] / "deploy" / "examples" / "kpimon.yaml"
    config = load_config(example)
    assert config.reporting_currency == "EUR"
    assert config.known_currencies() == frozenset({"EUR", "USD", "GBP", "BRL"})


def test_configured_scopes_exist_without_events() -> None:
    config = KpimonConfig(teams={"emea": TeamConfig()}, reps={"anna": RepConfig(team="emea")})
    assert config.scopes() == [OVERALL, Scope(team="emea"), Scope(team="emea", rep="anna")]
