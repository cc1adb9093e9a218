"""streams.worker.kafka_access and kafka_clients: the options of each protocol, the checks, no password shown."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol
from pydantic import ValidationError

from streams.worker.kafka_access import KafkaAccessError, KafkaSecurity, kafka_client_options, kafka_ssl_context
from streams.worker.kafka_clients import explain_kafka_failure, faust_credentials
from tests.certificates import Pki, make_pki

PASSWORD = "pw-9f2c"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_plaintext_by_default() -> None:
    security = KafkaSecurity()
    assert kafka_client_options(security) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(security) is None


def test_sasl_ssl_with_scram(pki: Pki) -> None:
    security = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="kpimon",
        sasl_password=PASSWORD,
        ssl_cafile=pki.ca,
    )
    options = kafka_client_options(security)
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-512", "kpimon")
    assert options["sasl_plain_password"] == PASSWORD
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    credentials = faust_credentials(security)
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_SSL and credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("kpimon", PASSWORD)
    assert PASSWORD not in repr(security) and PASSWORD not in repr(credentials)


def test_sasl_plaintext_has_no_tls() -> None:
    security = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password=PASSWORD
    )
    assert "ssl_context" not in kafka_client_options(security)
    credentials = faust_credentials(security)
    assert isinstance(credentials, SASLCredentials) and credentials.protocol == AuthProtocol.SASL_PLAINTEXT


def test_tls_with_a_client_certificate_and_no_hostname_check(pki: Pki) -> None:
    security = KafkaSecurity(
        security_protocol="SSL",
        ssl_cafile=pki.ca,
        ssl_certfile=pki.client_cert,
        ssl_keyfile=pki.client_key,
        ssl_check_hostname=False,
    )
    options = kafka_client_options(security)
    assert set(options) == {"security_protocol", "ssl_context"}
    assert not options["ssl_context"].check_hostname
    assert isinstance(faust_credentials(security), SSLCredentials)


def test_the_password_file_is_read_without_its_line_break(tmp_path: Path) -> None:
    (tmp_path / "password").write_text(PASSWORD + "\n")
    security = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="u",
        sasl_password_file=tmp_path / "password",
    )
    assert kafka_client_options(security)["sasl_plain_password"] == PASSWORD
    missing = security.model_copy(update={"sasl_password_file": tmp_path / "none"})
    with pytest.raises(KafkaAccessError, match=f"cannot read KPIMON_KAFKA_SASL_PASSWORD_FILE {tmp_path}/none"):
        kafka_client_options(missing)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "KPIMON_KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}, "KPIMON_KAFKA_SASL_USERNAME must be set"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "set one of KPIMON_KAFKA_SASL_PASSWORD and KPIMON_KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"ssl_cafile": "/ca.pem"}, "need KPIMON_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL"),
        ({"security_protocol": "SSL", "ssl_keyfile": "/k.pem"}, "KPIMON_KAFKA_SSL_KEYFILE needs"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_inconsistent_settings_say_what_to_set(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecurity(**settings)  # type: ignore[arg-type]


def test_unloadable_files_are_named(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(KafkaAccessError, match=f"cannot load KPIMON_KAFKA_SSL_CAFILE {tmp_path}/none"):
        kafka_ssl_context(KafkaSecurity(security_protocol="SSL", ssl_cafile=tmp_path / "none"))
    wrong_key = KafkaSecurity(
        security_protocol="SSL", ssl_cafile=pki.ca, ssl_certfile=pki.client_cert, ssl_keyfile=pki.server_key
    )
    with pytest.raises(KafkaAccessError, match="cannot load the client certificate KPIMON_KAFKA_SSL_CERTFILE"):
        kafka_ssl_context(wrong_key)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SASL_MECHANISM": "SCRAM-SHA-512",
        "SASL_USERNAME": "kpimon",
        "SASL_PASSWORD": PASSWORD,
    }.items():
        monkeypatch.setenv(f"KPIMON_KAFKA_{name}", value)
    assert kafka_client_options(KafkaSecurity())["sasl_plain_password"] == PASSWORD


async def test_nothing_listening_is_not_explained_as_a_refused_login() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert await explain_kafka_failure(f"127.0.0.1:{port}", KafkaSecurity()) is None
