"""streams.tools.cli: invalid settings are reported by variable name, without the values (passwords)."""

from __future__ import annotations

import pytest

from streams.tools.cli import main

PASSWORD = "pw-do-not-print"


def test_invalid_kafka_security_names_the_variables_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KPIMON_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KPIMON_KAFKA_SASL_PASSWORD", PASSWORD)
    assert main(["simulate", "--total", "1"]) == 2
    err = capsys.readouterr().err
    assert "kpimon: invalid settings:" in err
    assert "KPIMON_KAFKA_SASL_USERNAME must be set" in err
    assert PASSWORD not in err


def test_an_invalid_value_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KPIMON_KAFKA_SECURITY_PROTOCOL", "TLS")
    monkeypatch.setenv("KPIMON_WEB_AUTH_TOKEN", PASSWORD)
    assert main(["simulate", "--total", "1"]) == 2
    err = capsys.readouterr().err
    assert "KPIMON_KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'" in err
    assert PASSWORD not in err and "TLS" not in err.replace("SASL_SSL", "")
