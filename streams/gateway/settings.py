"""The gateway's settings from ``KPIMON_GATEWAY_*`` environment variables; secrets never printed."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Every setting can be given as ``KPIMON_GATEWAY_<NAME>``, e.g. ``KPIMON_GATEWAY_PORT``.

    A source is served when its credentials are set (its mapping, ``<mappings_dir>/<source>.yaml``,
    must then exist). Kafka, the topics and the event checks come from the worker's ``KPIMON_*`` settings.
    """

    # An empty variable (as docker compose passes an unset ``${X:-}``) leaves the setting unset.
    model_config = SettingsConfigDict(env_prefix="KPIMON_GATEWAY_", frozen=True, env_ignore_empty=True)

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0: every interface)")
    port: int = Field(8088, ge=1, le=65535)
    public_url: str | None = Field(
        None,
        description="The URL senders call, e.g. https://kpimon.example.com, when a proxy is in front "
        "(HubSpot signs the URL it called); default: the request's own URL",
    )
    mappings_dir: Path = Field(Path("deploy/gateway/mappings"), description="Where <source>.yaml mappings are")
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576, description="Larger requests get 413")
    rate_per_second: float = Field(100, gt=0, description="Requests per second and source, on average")
    rate_burst: float = Field(500, ge=1, description="Requests a source may send at once above the rate")
    kafka_timeout_seconds: float = Field(15, gt=0, le=300, description="Longest wait for Kafka's acknowledgement")
    crm_timeout_seconds: float = Field(10, gt=0, le=120, description="Longest wait for a CRM API answer")
    shutdown_timeout_seconds: float = Field(30, gt=0, description="How long in-flight requests may finish at stop")
    hubspot_client_secret: SecretStr | None = None
    hubspot_access_token: SecretStr | None = Field(None, description="For the CRM API reads of `fetch`")
    hubspot_api_url: str = "https://api.hubapi.com"
    segment_write_keys: SecretStr | None = Field(None, description="Accepted write keys, comma-separated")
    pipedrive_user: SecretStr | None = None
    pipedrive_password: SecretStr | None = None
    salesforce_relay_user: SecretStr | None = Field(None, description="Basic auth of the change event relay")
    salesforce_relay_password: SecretStr | None = None
    salesforce_organization_ids: str | None = Field(
        None,
        description="Organizations whose outbound messages are accepted (15- or 18-character ids), comma-separated",
    )
