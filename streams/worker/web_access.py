"""Who may read the worker's HTTP pages: optional bearer token or basic auth, optional TLS, from ``KPIMON_WEB_*``.

With a token (``KPIMON_WEB_AUTH_TOKEN`` or ``_FILE``) a request must send
``Authorization: Bearer <token>``; with a user and password (``KPIMON_WEB_AUTH_USERNAME``,
``KPIMON_WEB_AUTH_PASSWORD`` or ``_FILE``) ``Authorization: Basic ...``; with both, either
will do. That is what Prometheus sends with a scrape config's ``authorization`` or
``basic_auth``. Credentials are compared in constant time (digests of equal length),
a refusal is a bare 401, and neither the credentials nor what a client sent are logged.
With neither set, every page is open (the worker binds 127.0.0.1 by default).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebAccessError(ValueError):
    """A web security setting that cannot be used (a file that cannot be read, a certificate that does not load)."""


class WebSecurity(BaseSettings):
    """Authentication and TLS of the worker's web server; each is ``KPIMON_WEB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KPIMON_WEB_", frozen=True)

    auth_token: SecretStr | None = Field(default=None, description="Bearer token required by /metrics and /kpis/*")
    auth_token_file: Path | None = Field(default=None, description="A file holding the bearer token")
    auth_username: str | None = Field(default=None, description="Basic auth user required by /metrics and /kpis/*")
    auth_password: SecretStr | None = None
    auth_password_file: Path | None = Field(default=None, description="A file holding the basic auth password")
    tls_certfile: Path | None = Field(default=None, description="PEM certificate (chain): serve HTTPS instead of HTTP")
    tls_keyfile: Path | None = Field(default=None, description="PEM private key of the certificate")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        for name, secret in (("TOKEN", self.auth_token), ("PASSWORD", self.auth_password)):
            if secret is not None and not secret.get_secret_value():
                problems.append(f"KPIMON_WEB_AUTH_{name} is empty: give a value or unset it")
        if self.auth_token is not None and self.auth_token_file is not None:
            problems.append("set one of KPIMON_WEB_AUTH_TOKEN and KPIMON_WEB_AUTH_TOKEN_FILE")
        if self.auth_password is not None and self.auth_password_file is not None:
            problems.append("set one of KPIMON_WEB_AUTH_PASSWORD and KPIMON_WEB_AUTH_PASSWORD_FILE")
        has_password = self.auth_password is not None or self.auth_password_file is not None
        if bool(self.auth_username) != has_password:
            problems.append("basic auth needs both KPIMON_WEB_AUTH_USERNAME and KPIMON_WEB_AUTH_PASSWORD (or _FILE)")
        if self.auth_username and ":" in self.auth_username:
            problems.append("KPIMON_WEB_AUTH_USERNAME cannot contain ':'")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            problems.append("TLS needs both KPIMON_WEB_TLS_CERTFILE and KPIMON_WEB_TLS_KEYFILE")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def uses_tls(self) -> bool:
        return self.tls_certfile is not None


def _digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


@dataclass(frozen=True)
class WebCredentials:
    """The accepted credentials, as digests (equal length, so comparing them says nothing of their length)."""

    token: bytes | None = None
    basic: bytes | None = None  # digest of b"user:password"

    @property
    def required(self) -> bool:
        return self.token is not None or self.basic is not None

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header of a 401: basic when configured (browsers then ask), else bearer."""
        return 'Basic realm="kpimon"' if self.basic is not None else 'Bearer realm="kpimon"'


def _secret(value: SecretStr | None, file: Path | None, name: str) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if file is None:
        return None
    try:
        text = file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise WebAccessError(f"cannot read {name} {file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text:
        raise WebAccessError(f"{name} {file} is empty")
    return text


def web_credentials(security: WebSecurity) -> WebCredentials:
    """The credentials the settings ask for (files read once, at start)."""
    token = _secret(security.auth_token, security.auth_token_file, "KPIMON_WEB_AUTH_TOKEN_FILE")
    password = _secret(security.auth_password, security.auth_password_file, "KPIMON_WEB_AUTH_PASSWORD_FILE")
    basic = f"{security.auth_username}:{password}" if security.auth_username and password is not None else None
    return WebCredentials(
        token=_digest(token.encode()) if token else None,
        basic=_digest(basic.encode()) if basic else None,
    )


def authorized(header: str | None, credentials: WebCredentials) -> bool:
    """Whether an ``Authorization`` header carries accepted credentials (always, when none are required)."""
    if not credentials.required:
        return True
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and credentials.token is not None:
        return hmac.compare_digest(_digest(value.encode()), credentials.token)
    if scheme.lower() == "basic" and credentials.basic is not None:
        try:
            pair = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(_digest(pair), credentials.basic)
    return False


def web_ssl_context(security: WebSecurity) -> ssl.SSLContext | None:
    """The server's TLS context (None: plain HTTP)."""
    if security.tls_certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(security.tls_certfile), str(security.tls_keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise WebAccessError(
            f"cannot load KPIMON_WEB_TLS_CERTFILE {security.tls_certfile} with KPIMON_WEB_TLS_KEYFILE "
            f"{security.tls_keyfile}: {getattr(exc, 'strerror', None) or getattr(exc, 'reason', None) or exc}"
        ) from None
    return context
