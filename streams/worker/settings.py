"""Runtime settings from ``KPIMON_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.worker.kafka_access import KafkaSecurity
from streams.worker.web_access import WebSecurity


class Settings(BaseSettings):
    """Every setting can be given as ``KPIMON_<NAME>``, e.g. ``KPIMON_BOOTSTRAP_SERVERS``."""

    model_config = SettingsConfigDict(env_prefix="KPIMON_", frozen=True)

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]")
    app_id: str = Field("kpimon", description="Faust app id: consumer group and prefix of internal topics")
    config_file: Path | None = Field(None, description="YAML file with teams, time zones and reps")
    catalog_file: Path | None = Field(None, description="YAML file extending the built-in KPI catalog")
    rules_file: Path | None = Field(
        None, description="YAML file with alert rules, routes and digests (none: no alerts)"
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis for unique visitors, alert states, the outbox and shared sums: redis:// or rediss:// "
        "(TLS), with user:password@ for AUTH (a secret: never shown)",
    )
    alerts_topic: str = Field("kpimon.alerts", description="Audit trail: every alert state transition")
    alert_interval_seconds: float = Field(10, gt=0, description="How often alert rules are evaluated")
    delivery_interval_seconds: float = Field(0.5, gt=0, description="How often the outbox is checked for due messages")
    alert_max_age_seconds: float = Field(
        86_400,
        gt=0,
        description="A notification still failing (5xx, 429, no answer) this long after it was queued "
        'is given up (the failed list, kpimon_alert_notifications_total{outcome="expired"})',
    )
    crm_topic: str = "crm.events"
    marketing_topic: str = "marketing.events"
    deadletter_topic: str = "kpimon.deadletter"
    partitions: int = Field(6, ge=1, description="Partitions of the source and internal topics")
    replication_factor: int = Field(1, ge=1, description="Replication factor of topics kpimon creates")
    session_timeout_seconds: float = Field(
        30, gt=3, description="How long a silent worker keeps its partitions before the group moves them"
    )
    shutdown_timeout_seconds: float = Field(
        10, gt=0, description="A stopping worker that has not exited after this long exits at once"
    )
    web_host: str = Field(
        "127.0.0.1", description="Address the worker's HTTP server binds (0.0.0.0: every interface, deliberately)"
    )
    web_port: int = Field(6066, description="Port of the worker's HTTP server (/metrics)")
    web: WebSecurity = Field(default_factory=WebSecurity, description="KPIMON_WEB_AUTH_*, KPIMON_WEB_TLS_*")
    kafka: KafkaSecurity = Field(
        default_factory=KafkaSecurity,
        description="KPIMON_KAFKA_SECURITY_PROTOCOL, KPIMON_KAFKA_SASL_*, _SSL_*",
    )
    data_dir: Path = Field(Path(".kpimon-data"), description="Faust's local data directory")
    batch_size: int = Field(
        50_000,
        ge=1,
        le=100_000,
        description="Most messages folded in one batch: a backlog comes in batches this big, a live stream as it comes",
    )
    max_event_bytes: int = Field(65536, ge=256, description="Larger messages are dead-lettered")
    future_tolerance_seconds: float = Field(300, ge=0, description="How far ahead of the clock occurred_at may be")
    past_horizon_days: float = Field(
        7300, gt=0, description="How far behind the clock event times may be (older: dead-lettered as too_old)"
    )

    @property
    def broker_url(self) -> str:
        return ";".join(f"kafka://{server.strip()}" for server in self.bootstrap_servers.split(","))

    @property
    def rekeyed_topic(self) -> str:
        """Internal topic for events produced to a partition other than their event_id's."""
        return f"{self.app_id}-ingest-rekeyed"

    @property
    def source_topics(self) -> tuple[str, str, str]:
        return (self.crm_topic, self.marketing_topic, self.rekeyed_topic)
