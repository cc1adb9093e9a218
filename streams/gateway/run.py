"""Run the gateway: Kafka producer, HubSpot API client, HTTP server; SIGTERM drains in-flight requests."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
from aiohttp import web

from schemas.config import KpimonConfig
from streams.gateway.app import Gateway, Topics, build_app
from streams.gateway.hubspot_api import HubSpotObjects
from streams.gateway.producer import EventProducer
from streams.gateway.settings import GatewaySettings
from streams.gateway.sources import SourceSetupError, build_sources
from streams.worker.acceptance import Acceptance
from streams.worker.settings import Settings
from streams.worker.topics import ensure_topics
from streams.worker.web_access import web_credentials

log = logging.getLogger(__name__)


async def run_gateway(settings: Settings, gateway_settings: GatewaySettings, config: KpimonConfig) -> None:
    """Serve until SIGTERM or SIGINT, then refuse new requests (503), finish the in-flight ones and stop."""
    session = aiohttp.ClientSession()
    hubspot_objects: HubSpotObjects | None = None
    if gateway_settings.hubspot_access_token is not None:
        hubspot_objects = HubSpotObjects(
            session,
            gateway_settings.hubspot_api_url,
            gateway_settings.hubspot_access_token.get_secret_value(),
            gateway_settings.crm_timeout_seconds,
        )
    try:
        routes = build_sources(gateway_settings, (lambda: hubspot_objects) if hubspot_objects else None)
        if not routes:
            raise SourceSetupError(
                "no source has credentials: set KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET, "
                "KPIMON_GATEWAY_SEGMENT_WRITE_KEYS or KPIMON_GATEWAY_PIPEDRIVE_USER and _PASSWORD (docs/connectors.md)"
            )
        topics = Topics(settings.crm_topic, settings.marketing_topic, settings.deadletter_topic)
        producer = EventProducer(settings.bootstrap_servers, gateway_settings.kafka_timeout_seconds, settings.kafka)
        gateway = Gateway(producer, topics, Acceptance.of(settings, config))
        app = build_app(gateway, routes, gateway_settings.max_body_bytes, web_credentials(settings.web))
        await _serve(app, gateway, settings, gateway_settings, [path for path, _ in routes])
    finally:
        await session.close()


async def _serve(
    app: web.Application, gateway: Gateway, settings: Settings, gateway_settings: GatewaySettings, paths: list[str]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await ensure_topics(
            settings.bootstrap_servers,
            [settings.crm_topic, settings.marketing_topic],
            settings.partitions,
            settings.replication_factor,
            outputs=[settings.deadletter_topic],
            security=settings.kafka,
        )
    except Exception as exc:  # Kafka down at start: the producer keeps trying, requests get 503 meanwhile
        log.warning("gateway: could not check the topics (%r); producing once Kafka answers", exc)
    gateway.producer.start()
    runner = web.AppRunner(app, shutdown_timeout=gateway_settings.shutdown_timeout_seconds, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, gateway_settings.host, gateway_settings.port)
    await site.start()
    log.info(
        "gateway: listening on http://%s:%d (%s; /metrics, /healthz, /readyz)",
        gateway_settings.host,
        gateway_settings.port,
        ", ".join(paths),
    )
    await stop.wait()
    log.info(
        "gateway: stopping: new requests get 503, in-flight ones finish (up to %.0f s)",
        gateway_settings.shutdown_timeout_seconds,
    )
    gateway.stopping = True
    try:
        await runner.cleanup()
    finally:
        await gateway.producer.stop()
    log.info("gateway: stopped")
