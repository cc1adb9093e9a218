"""The sources the gateway serves, built from the settings: their routes, credentials and answers."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from streams.gateway.app import Answer, Authenticate, Enrich, ReadRecords, Source
from streams.gateway.bodies import read_records
from streams.gateway.hubspot_api import HubSpotObjects
from streams.gateway.mapping import GatewayMapping, PayloadMapper, load_gateway_mapping
from streams.gateway.payloads import SourceRecord
from streams.gateway.rate_limit import TokenBucket
from streams.gateway.salesforce_soap import ACKNOWLEDGEMENT, parse_outbound_message, same_organization
from streams.gateway.settings import GatewaySettings
from streams.gateway.signatures import SignedRequest, basic_auth_matches, check_hubspot, same_secret, write_key_of
from streams.gateway.translate import Translation

SEGMENT_CALLS = ("track", "page", "identify", "batch")


class SourceSetupError(ValueError):
    """A source whose credentials are set but that cannot be served (its mapping missing or of another format)."""


def _empty_ok(_: Translation) -> web.Response:
    return web.Response(status=200)


def _segment_ok(_: Translation) -> web.Response:
    return web.json_response({"success": True})


def _salesforce_ack(_: Translation) -> web.Response:
    return web.Response(text=ACKNOWLEDGEMENT, content_type="text/xml")


def organization_authenticate(allowed: list[str]) -> Authenticate:
    """Salesforce signs no outbound message: the sending organization must be one of ``allowed``."""

    def authenticate(_: web.Request, body: bytes, __: float) -> str | None:
        organization = parse_outbound_message(body)[0]
        if organization is None:
            return "not_an_outbound_message"
        return None if any(same_organization(organization, known) for known in allowed) else "unknown_organization"

    return authenticate


def hubspot_authenticate(secret: str, public_url: str | None) -> Authenticate:
    def authenticate(request: web.Request, body: bytes, now: float) -> str | None:
        url = public_url.rstrip("/") + request.path_qs if public_url else str(request.url)
        signed = SignedRequest(
            method=request.method,
            url=url,
            body=body,
            signature_v3=request.headers.get("X-HubSpot-Signature-v3"),
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp"),
            signature=request.headers.get("X-HubSpot-Signature"),
            version=request.headers.get("X-HubSpot-Signature-Version"),
        )
        verdict = check_hubspot(signed, secret, now)
        return None if verdict == "ok" else verdict

    return authenticate


def basic_authenticate(user: str, password: str) -> Authenticate:
    def authenticate(request: web.Request, _: bytes, __: float) -> str | None:
        return None if basic_auth_matches(request.headers.get("Authorization"), user, password) else "bad_credentials"

    return authenticate


def _body_write_key(body: bytes) -> str | None:
    """The ``writeKey`` field some Segment libraries send in the body instead of basic auth."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    key = payload.get("writeKey") if isinstance(payload, dict) else None
    return key if isinstance(key, str) and key else None


def write_key_authenticate(keys: list[str]) -> Authenticate:
    def authenticate(request: web.Request, body: bytes, __: float) -> str | None:
        given = write_key_of(request.headers.get("Authorization")) or _body_write_key(body)
        accepted = given is not None and any(
            [same_secret(given, key) for key in keys]
        )  # a list: every key compared, in constant time
        return None if accepted else "bad_credentials"

    return authenticate


def _mapping(settings: GatewaySettings, name: str) -> GatewayMapping:
    path = settings.mappings_dir / f"{name}.yaml"
    if not path.is_file():
        raise SourceSetupError(
            f"{name}'s credentials are set but its mapping {path} does not exist: write it "
            f"(deploy/gateway/mappings/ has examples) or set KPIMON_GATEWAY_MAPPINGS_DIR"
        )
    mapping = load_gateway_mapping(path)
    if mapping.format != name:
        raise SourceSetupError(f"{path} is a mapping of format {mapping.format!r}, not {name!r}")
    return mapping


def build_sources(
    settings: GatewaySettings, hubspot_objects: Callable[[], HubSpotObjects] | None = None
) -> list[tuple[str, Source]]:
    """(path, source) of every source whose credentials are set."""

    def bucket() -> TokenBucket:
        return TokenBucket(settings.rate_per_second, settings.rate_burst)

    def source(name: str, authenticate: Authenticate, read: ReadRecords, answer: Answer) -> Source:
        return Source(name, PayloadMapper(_mapping(settings, name)), authenticate, read, answer, bucket())

    routes: list[tuple[str, Source]] = []
    if settings.hubspot_client_secret is not None:
        secret = settings.hubspot_client_secret.get_secret_value()
        hubspot = source(
            "hubspot", hubspot_authenticate(secret, settings.public_url), _records_of("hubspot"), _empty_ok
        )
        if hubspot.mapper.mapping.fetch:
            if hubspot_objects is None:
                raise SourceSetupError(
                    "the hubspot mapping reads objects from HubSpot's CRM API (fetch): set "
                    "KPIMON_GATEWAY_HUBSPOT_ACCESS_TOKEN to the app's access token"
                )
            hubspot.enrich = _enricher(hubspot_objects, hubspot.mapper.mapping)
        routes.append(("/webhooks/hubspot", hubspot))
    if settings.segment_write_keys is not None:
        keys = [key.strip() for key in settings.segment_write_keys.get_secret_value().split(",") if key.strip()]
        segment = source("segment", write_key_authenticate(keys), _records_of("segment"), _segment_ok)
        routes += [(f"/v1/{call}", segment) for call in SEGMENT_CALLS]
    if settings.pipedrive_user is not None and settings.pipedrive_password is not None:
        authenticate = basic_authenticate(
            settings.pipedrive_user.get_secret_value(), settings.pipedrive_password.get_secret_value()
        )
        routes.append(("/webhooks/pipedrive", source("pipedrive", authenticate, _records_of("pipedrive"), _empty_ok)))
    if settings.salesforce_organization_ids is not None:
        allowed = [known.strip() for known in settings.salesforce_organization_ids.split(",") if known.strip()]
        authenticate = organization_authenticate(allowed)
        routes.append(
            ("/webhooks/salesforce", source("salesforce", authenticate, _records_of("salesforce"), _salesforce_ack))
        )
    if settings.salesforce_relay_user is not None and settings.salesforce_relay_password is not None:
        authenticate = basic_authenticate(
            settings.salesforce_relay_user.get_secret_value(), settings.salesforce_relay_password.get_secret_value()
        )
        relay = source("salesforce_relay", authenticate, _records_of("salesforce_relay"), _empty_ok)
        routes.append(("/webhooks/salesforce-relay", relay))
    return routes


def _records_of(source_format: str) -> ReadRecords:
    return lambda request, body: read_records(source_format, request.path, body)


def _enricher(objects: Callable[[], HubSpotObjects], mapping: GatewayMapping) -> Enrich:
    async def enrich(records: list[SourceRecord]) -> list[SourceRecord]:
        return await objects().enrich(records, mapping.fetch)

    return enrich
