"""streams.worker.web_access: which Authorization headers pass, the settings' checks, the TLS context."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.worker.web_access import (
    WebAccessError,
    WebSecurity,
    authorized,
    web_credentials,
    web_ssl_context,
)
from tests.certificates import make_pki

TOKEN = "s3cret-token"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BOTH = web_credentials(WebSecurity(auth_token=TOKEN, auth_username="prometheus", auth_password="pa:ss"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer   {TOKEN} ", True),  # the scheme is case-insensitive; spaces around the value do not count
        (basic("prometheus", "pa:ss"), True),  # a colon in the password is part of it
        (None, False),
        ("", False),
        ("Bearer", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Token {TOKEN}", False),
        (basic("prometheus", "pa:sS"), False),
        (basic("Prometheus", "pa:ss"), False),
        ("Basic not-base64!", False),
        ("Basic " + base64.b64encode(b"prometheus").decode(), False),
        (f"Basic {TOKEN}", False),
    ],
)
def test_only_the_configured_credentials_pass(header: str | None, expected: bool) -> None:
    assert authorized(header, BOTH) is expected


def test_without_credentials_every_request_passes() -> None:
    open_access = web_credentials(WebSecurity())
    assert not open_access.required
    assert authorized(None, open_access)


def test_bearer_only_refuses_basic_and_asks_for_bearer() -> None:
    credentials = web_credentials(WebSecurity(auth_token=TOKEN))
    assert not authorized(basic("prometheus", TOKEN), credentials)
    assert credentials.challenge == 'Bearer realm="kpimon"'
    assert BOTH.challenge == 'Basic realm="kpimon"'


def test_credentials_keep_only_digests() -> None:
    assert TOKEN.encode() not in repr(BOTH).encode()
    assert "pa:ss" not in repr(BOTH)
    assert "s3cret" not in repr(WebSecurity(auth_token=TOKEN))


def test_token_and_password_files_are_read_once_without_their_line_break(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "password").write_text("pw\r\n")
    credentials = web_credentials(
        WebSecurity(auth_token_file=tmp_path / "token", auth_username="u", auth_password_file=tmp_path / "password")
    )
    assert authorized(f"Bearer {TOKEN}", credentials)
    assert authorized(basic("u", "pw"), credentials)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth_token": TOKEN, "auth_token_file": "/x"}, "one of KPIMON_WEB_AUTH_TOKEN and KPIMON_WEB_AUTH_TOKEN_FILE"),
        ({"auth_username": "u"}, "needs both KPIMON_WEB_AUTH_USERNAME and KPIMON_WEB_AUTH_PASSWORD"),
        ({"auth_password": "p"}, "needs both KPIMON_WEB_AUTH_USERNAME and KPIMON_WEB_AUTH_PASSWORD"),
        ({"auth_username": "a:b", "auth_password": "p"}, "cannot contain ':'"),
        ({"auth_token": ""}, "KPIMON_WEB_AUTH_TOKEN is empty"),
        ({"tls_certfile": "/cert.pem"}, "TLS needs both"),
    ],
)
def test_inconsistent_settings_say_what_to_set(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebSecurity(**settings)  # type: ignore[arg-type]


def test_missing_or_empty_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(WebAccessError, match=f"cannot read KPIMON_WEB_AUTH_TOKEN_FILE {tmp_path}/none"):
        web_credentials(WebSecurity(auth_token_file=tmp_path / "none"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(WebAccessError, match="is empty"):
        web_credentials(WebSecurity(auth_token_file=tmp_path / "empty"))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIMON_WEB_AUTH_TOKEN", TOKEN)
    assert authorized(f"Bearer {TOKEN}", web_credentials(WebSecurity()))


def test_tls_context_loads_the_certificate_or_names_the_files(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    assert web_ssl_context(WebSecurity()) is None
    context = web_ssl_context(WebSecurity(tls_certfile=pki.server_cert, tls_keyfile=pki.server_key))
    assert isinstance(context, ssl.SSLContext)
    with pytest.raises(WebAccessError, match="cannot load KPIMON_WEB_TLS_CERTFILE"):
        web_ssl_context(WebSecurity(tls_certfile=pki.server_cert, tls_keyfile=pki.client_key))
