"""The gateway's own Prometheus metrics, in a registry of their own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

KAFKA_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "kpimon_gateway_requests",
            "Webhook requests answered, by source and HTTP status.",
            ["source", "code"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "kpimon_gateway_rejected_requests",
            "Requests refused (nothing produced), by reason: bad_signature, stale_timestamp, missing_signature, "
            "bad_credentials, rate_limited, too_large, kafka_unavailable, crm_unavailable, stopping.",
            ["source", "reason"],
            registry=self.registry,
        )
        self.produced = Counter(
            "kpimon_gateway_events_produced",
            "Contract events Kafka acknowledged, by source and type.",
            ["source", "type"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "kpimon_gateway_dead_letters",
            "Records written to the dead-letter topic, by source and reason.",
            ["source", "reason"],
            registry=self.registry,
        )
        self.ignored = Counter(
            "kpimon_gateway_ignored_records",
            "Records the mapping ignores on purpose (its ignore list).",
            ["source"],
            registry=self.registry,
        )
        self.kafka_seconds = Histogram(
            "kpimon_gateway_kafka_seconds",
            "Time from a request's first send to Kafka's acknowledgement of all.",
            ["source"],
            buckets=KAFKA_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge("kpimon_gateway_in_flight_requests", "Requests being handled.", registry=self.registry)
