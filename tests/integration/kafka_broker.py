"""A Kafka broker of a test's own (KRaft, one node, its own ports and data), for tests that stop and start it.

Never the shared broker of deploy/local: a test that takes Kafka away would take it from every other
test running. The jars are the ones ``deploy/local/kpimon-local classpath`` resolves (and caches).
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.support import REPO, free_port

STARTED_LINE = b"Kafka Server started"  # logged by kafka.server.KafkaRaftServer once the broker serves
HEAP = ["-Xms128m", "-Xmx256m"]  # a small broker: the machine is shared


def kafka_classpath() -> str:
    result = subprocess.run(
        [str(REPO / "deploy" / "local" / "kpimon-local"), "classpath"], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


@dataclass
class KafkaBroker:
    """``start()`` formats its storage the first time; ``stop()`` then ``start()`` keeps its data (a broker restart)."""

    directory: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def out_path(self) -> Path:
        return self.directory / "kafka.out"

    def start(self, timeout: float = 120.0) -> None:
        classpath = kafka_classpath()
        properties = self._write_config()
        if not (self.directory / "data" / "meta.properties").exists():
            subprocess.run(
                ["java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", properties],
                check=True,
                capture_output=True,
            )
        log4j = f"-Dlog4j.configuration=file:{self.directory / 'log4j.properties'}"
        with self.out_path.open("wb") as out:  # a fresh file per start: an old "started" line is not readiness
            self.process = subprocess.Popen(
                ["java", *HEAP, "-Djava.awt.headless=true", log4j, "-cp", classpath, "kafka.Kafka", properties],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test's Kafka exited with {self.process.returncode}; see {self.out_path}")
            if STARTED_LINE in self.out_path.read_bytes():
                return
            time.sleep(0.3)
        raise TimeoutError(f"the test's Kafka did not start within {timeout} s; see {self.out_path}")

    def stop(self) -> None:
        """SIGTERM (a controlled shutdown), SIGKILL if it takes longer than 60 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _write_config(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={self.directory / 'data'}",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
        ]
        (self.directory / "server.properties").write_text("\n".join(lines) + "\n")
        (self.directory / "log4j.properties").write_text(
            "\n".join(
                [
                    "log4j.rootLogger=WARN, stdout",
                    "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
                    "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
                    "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
                    "log4j.logger.kafka.server.KafkaRaftServer=INFO",
                ]
            )
            + "\n"
        )
        return str(self.directory / "server.properties")


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
