"""Kafka security (streams.worker.kafka_access) on the client libraries: Faust's credentials, and why a broker refused.

``explain_kafka_failure`` turns a failed connection into a sentence that says which setting
to fix; aiokafka's clients only say "Unable to bootstrap".
"""

from __future__ import annotations

import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from streams.worker.kafka_access import KafkaSecurity, kafka_client_options, kafka_ssl_context

PROBE_TIMEOUT_MS = 10_000


def faust_credentials(security: KafkaSecurity) -> CredentialsT | None:
    """The same options as Faust's ``broker_credentials`` (None: PLAINTEXT)."""
    context = kafka_ssl_context(security)
    if security.uses_sasl:
        return SASLCredentials(
            username=security.sasl_username,
            password=security.password(),
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    return SSLCredentials(context) if context is not None else None


async def explain_kafka_failure(bootstrap_servers: str, security: KafkaSecurity) -> str | None:
    """Why the first broker refuses kpimon, as a sentence naming the setting to fix; None if it lets it in.

    aiokafka's clients only say "Unable to bootstrap"; this connects once more
    with the same options and reads the reason (a refused login, an untrusted
    certificate, a mechanism the broker does not enable).
    """
    server = bootstrap_servers.split(",", maxsplit=1)[0].strip()
    host, _, port = server.rpartition(":")
    where = f"Kafka at {server} with {security.describe()}"
    try:
        connection = await create_conn(
            host, int(port), request_timeout_ms=PROBE_TIMEOUT_MS, **kafka_client_options(security)
        )
    except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
        return (
            f"{where} refused the login ({exc}): "
            "check KPIMON_KAFKA_SASL_USERNAME, KPIMON_KAFKA_SASL_PASSWORD (or _FILE) and that "
            "KPIMON_KAFKA_SASL_MECHANISM is the one the user was created for"
        )
    except UnsupportedSaslMechanismError as exc:
        return f"{where}: {exc}; set KPIMON_KAFKA_SASL_MECHANISM to one of them"
    except ssl.SSLCertVerificationError as exc:
        fix = (
            "set KPIMON_KAFKA_SSL_CHECK_HOSTNAME=false only if the certificate cannot name the host"
            if "hostname" in str(exc.verify_message).lower() or "ip address" in str(exc.verify_message).lower()
            else "set KPIMON_KAFKA_SSL_CAFILE to the CA that signed the broker's certificate"
        )
        return f"{where}: the broker's certificate is not trusted ({exc.verify_message}): {fix}"
    except ssl.SSLError as exc:
        return (
            f"{where}: the TLS handshake failed ({exc.reason}): does the listener speak TLS, "
            "and does it require a client certificate (KPIMON_KAFKA_SSL_CERTFILE)?"
        )
    except (KafkaError, OSError, TimeoutError, ValueError):
        return None
    connection.close()
    return None
