"""Which sources the settings serve, and the errors that say what to set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from streams.gateway.settings import GatewaySettings
from streams.gateway.sources import SourceSetupError, build_sources
from streams.tools.cli import main

MAPPINGS = Path(__file__).resolve().parents[3] / "deploy" / "gateway" / "mappings"


@pytest.fixture(autouse=True)
def _no_gateway_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("KPIMON_GATEWAY_")]:
        monkeypatch.delenv(name)


def _settings(**values: str) -> GatewaySettings:
    return GatewaySettings(mappings_dir=MAPPINGS, **values)


def test_a_source_is_served_when_its_credentials_are_set() -> None:
    assert build_sources(_settings()) == []
    routes = build_sources(
        _settings(
            segment_write_keys="a,b",
            pipedrive_user="u",
            pipedrive_password="p",
            salesforce_organization_ids="x",
            salesforce_relay_user="r",
            salesforce_relay_password="q",
        )
    )
    assert [path for path, _ in routes] == [
        "/v1/track",
        "/v1/page",
        "/v1/identify",
        "/v1/batch",
        "/webhooks/pipedrive",
        "/webhooks/salesforce",
        "/webhooks/salesforce-relay",
    ]
    assert len({id(source) for path, source in routes if path.startswith("/v1/")}) == 1  # one rate limit for Segment


def test_hubspot_with_fetch_needs_an_access_token() -> None:
    with pytest.raises(SourceSetupError, match="KPIMON_GATEWAY_HUBSPOT_ACCESS_TOKEN"):
        build_sources(_settings(hubspot_client_secret="s"))


def test_a_missing_or_foreign_mapping_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SourceSetupError, match=r"its mapping .*pipedrive.yaml does not exist"):
        build_sources(GatewaySettings(mappings_dir=tmp_path, pipedrive_user="u", pipedrive_password="p"))
    shutil.copy(MAPPINGS / "segment.yaml", tmp_path / "pipedrive.yaml")
    with pytest.raises(SourceSetupError, match="is a mapping of format 'segment', not 'pipedrive'"):
        build_sources(GatewaySettings(mappings_dir=tmp_path, pipedrive_user="u", pipedrive_password="p"))


def test_the_command_refuses_to_start_without_any_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--bootstrap-servers", "127.0.0.1:1"]) == 2
    assert "no source has credentials: set KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET" in capsys.readouterr().err
