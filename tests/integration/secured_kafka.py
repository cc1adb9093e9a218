"""A second, separate Kafka broker for security tests: SASL over TLS (SCRAM-SHA-512/256, PLAIN), client certificates.

Same jars as deploy/local (``kpimon-local classpath``), its own data dir and ports, one
KRaft node. The SASL_SSL listener asks for a client certificate signed by the test CA; the
SCRAM users are created when the storage is formatted (``--add-scram``), the PLAIN user in
the listener's JAAS line. Inter-broker traffic stays on a PLAINTEXT listener of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from streams.worker.kafka_access import KafkaSecurity, kafka_client_options
from tests.certificates import Pki, make_pki
from tests.integration.kafka_broker import kafka_classpath
from tests.integration.support import free_port

KEYSTORE_PASSWORD = "keystore-pw"
SCRAM_USER, SCRAM_PASSWORD = "kpimon", "scram-pw-5c1a"
SCRAM256_USER, SCRAM256_PASSWORD = "kpimon256", "scram256-pw-0e7d"
PLAIN_USER, PLAIN_PASSWORD = "kpimon-plain", "plain-pw-83b2"


@dataclass(frozen=True)
class SecuredKafka:
    bootstrap: str
    pki: Pki
    directory: Path

    def security(self, **overrides: object) -> KafkaSecurity:
        """SASL_SSL with SCRAM-SHA-512, the test CA and the client certificate (``overrides`` change any)."""
        settings: dict[str, object] = {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": SCRAM_USER,
            "sasl_password": SCRAM_PASSWORD,
            "ssl_cafile": self.pki.ca,
            "ssl_certfile": self.pki.client_cert,
            "ssl_keyfile": self.pki.client_key,
        }
        return KafkaSecurity.model_validate({**settings, **overrides})

    def env(self, password_file: Path) -> dict[str, str]:
        """The KPIMON_* variables of ``security()``, the password from a file."""
        password_file.write_text(SCRAM_PASSWORD + "\n")
        return {
            "KPIMON_BOOTSTRAP_SERVERS": self.bootstrap,
            "KPIMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KPIMON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KPIMON_KAFKA_SASL_USERNAME": SCRAM_USER,
            "KPIMON_KAFKA_SASL_PASSWORD_FILE": str(password_file),
            "KPIMON_KAFKA_SSL_CAFILE": str(self.pki.ca),
            "KPIMON_KAFKA_SSL_CERTFILE": str(self.pki.client_cert),
            "KPIMON_KAFKA_SSL_KEYFILE": str(self.pki.client_key),
        }


def _server_properties(directory: Path, pki: Pki, port: int, controller: int, internal: int) -> str:
    jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    jaas_plain = (
        f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{PLAIN_USER}="{PLAIN_PASSWORD}";'
    )
    return f"""
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},INTERNAL://127.0.0.1:{internal}
advertised.listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal}
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas_scram}
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={jaas_scram}
listener.name.sasl_ssl.plain.sasl.jaas.config={jaas_plain}
ssl.keystore.type=PKCS12
ssl.keystore.location={directory / "server.p12"}
ssl.keystore.password={KEYSTORE_PASSWORD}
ssl.truststore.type=PEM
ssl.truststore.location={pki.ca}
listener.name.sasl_ssl.ssl.client.auth=required
log.dirs={directory / "data"}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
"""


def _log4j(directory: Path) -> Path:
    path = directory / "log4j.properties"
    path.write_text(
        "log4j.rootLogger=INFO, file\n"
        "log4j.appender.file=org.apache.log4j.FileAppender\n"
        f"log4j.appender.file.File={directory / 'kafka.log'}\n"
        "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
    )
    return path


async def logs_in(bootstrap: str, security: KafkaSecurity) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **kafka_client_options(security))
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


@contextmanager
def secured_kafka(directory: Path, timeout: float = 120.0) -> Iterator[SecuredKafka]:
    """Start the broker, wait until a SCRAM login over TLS lists topics, stop it (SIGTERM, then SIGKILL) after."""
    pki = make_pki(directory / "pki")
    subprocess.run(
        ["openssl", "pkcs12", "-export", "-in", str(pki.server_cert), "-inkey", str(pki.server_key),
         "-out", str(directory / "server.p12"), "-passout", f"pass:{KEYSTORE_PASSWORD}", "-name", "kafka"],
        check=True, capture_output=True,
    )  # fmt: skip
    port, controller, internal = free_port(), free_port(), free_port()
    properties = directory / "server.properties"
    properties.write_text(_server_properties(directory, pki, port, controller, internal))
    java = ["java", "-Xms128m", "-Xmx384m", f"-Dlog4j.configuration=file:{_log4j(directory)}", "-cp", kafka_classpath()]
    cluster_id = subprocess.run(
        [*java, "kafka.tools.StorageTool", "random-uuid"], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties),
         "--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]",
         "--add-scram", f"SCRAM-SHA-256=[name={SCRAM256_USER},password={SCRAM256_PASSWORD}]"],
        check=True, capture_output=True,
    )  # fmt: skip
    out = (directory / "kafka.out").open("ab")
    broker = subprocess.Popen([*java, "kafka.Kafka", str(properties)], stdout=out, stderr=subprocess.STDOUT)
    kafka = SecuredKafka(f"127.0.0.1:{port}", pki, directory)
    try:
        deadline = time.monotonic() + timeout
        while not asyncio.run(logs_in(kafka.bootstrap, kafka.security())):
            if broker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the secured Kafka did not start; see {directory}/kafka.log and kafka.out")
            time.sleep(1)
        yield kafka
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(broker.pid, signal.SIGKILL)
            broker.wait()
        out.close()
