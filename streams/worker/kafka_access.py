"""How kpimon's Kafka clients log in: SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and TLS, from ``KPIMON_KAFKA_*``.

Every client kpimon makes takes its security options from here: the admin client that
creates topics, ``kpimon simulate``, ``kpimon replay`` and ``kpimon gateway`` (aiokafka,
``kafka_client_options``), and the worker (Faust, ``streams.worker.kafka_clients``)::

    security = KafkaSecurity()  # or settings.kafka
    producer = AIOKafkaProducer(bootstrap_servers=servers, **kafka_client_options(security))

Passwords are ``SecretStr`` (shown as ``**********``) or read from a file, and no message
of this module includes one. Free of Kafka libraries: the settings import it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaAccessError(ValueError):
    """A security setting that cannot be used (a file that cannot be read, a certificate that does not load)."""


class KafkaSecurity(BaseSettings):
    """Kafka security settings; each is ``KPIMON_KAFKA_<NAME>``, e.g. ``KPIMON_KAFKA_SECURITY_PROTOCOL=SASL_SSL``."""

    model_config = SettingsConfigDict(env_prefix="KPIMON_KAFKA_", frozen=True)

    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS)"
    )
    sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (required with SASL_*)"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = Field(
        default=None, description="A file holding the password (instead of the variable)"
    )
    ssl_cafile: Path | None = Field(default=None, description="PEM file of the CA(s) to trust (default: the system's)")
    ssl_certfile: Path | None = Field(default=None, description="PEM client certificate, for brokers that require one")
    ssl_keyfile: Path | None = Field(default=None, description="PEM private key of the client certificate")
    ssl_check_hostname: bool = Field(default=True, description="Check that the broker's certificate names its host")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if self.uses_sasl:
            if self.sasl_mechanism is None:
                problems.append("KPIMON_KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
            if not self.sasl_username:
                problems.append("KPIMON_KAFKA_SASL_USERNAME must be set")
            if (self.sasl_password is None) == (self.sasl_password_file is None):
                problems.append("set one of KPIMON_KAFKA_SASL_PASSWORD and KPIMON_KAFKA_SASL_PASSWORD_FILE")
        if not self.uses_tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile):
            problems.append("KPIMON_KAFKA_SSL_* files need KPIMON_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL")
        if self.ssl_keyfile and not self.ssl_certfile:
            problems.append("KPIMON_KAFKA_SSL_KEYFILE needs KPIMON_KAFKA_SSL_CERTFILE")
        if problems:
            raise ValueError(f"with KPIMON_KAFKA_SECURITY_PROTOCOL={self.security_protocol}: " + "; ".join(problems))
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def describe(self) -> str:
        """The protocol, mechanism and user, for messages (never the password)."""
        if self.uses_sasl:
            return f"{self.security_protocol} ({self.sasl_mechanism}, user {self.sasl_username!r})"
        return self.security_protocol

    def password(self) -> str:
        """The SASL password, from the variable or the file (its last line break dropped)."""
        if self.sasl_password is not None:
            return self.sasl_password.get_secret_value()
        assert self.sasl_password_file is not None
        try:
            return self.sasl_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise KafkaAccessError(
                f"cannot read KPIMON_KAFKA_SASL_PASSWORD_FILE {self.sasl_password_file}: {_reason(exc)}"
            ) from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def kafka_ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (None otherwise): the CA file (or the system's), the client certificate."""
    if not security.uses_tls:
        return None
    cafile = security.ssl_cafile
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaAccessError(f"cannot load KPIMON_KAFKA_SSL_CAFILE {cafile}: {_reason(exc)}") from None
    context.check_hostname = security.ssl_check_hostname
    if security.ssl_certfile is not None:
        keyfile = security.ssl_keyfile
        try:
            context.load_cert_chain(str(security.ssl_certfile), str(keyfile) if keyfile else None)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaAccessError(
                f"cannot load the client certificate KPIMON_KAFKA_SSL_CERTFILE {security.ssl_certfile}"
                f"{f' with KPIMON_KAFKA_SSL_KEYFILE {keyfile}' if keyfile else ''}: {_reason(exc)}"
            ) from None
    return context


def kafka_client_options(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for aiokafka's ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``."""
    options: dict[str, Any] = {"security_protocol": security.security_protocol}
    context = kafka_ssl_context(security)
    if context is not None:
        options["ssl_context"] = context
    if security.uses_sasl:
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.password()
    return options
