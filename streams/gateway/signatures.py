"""Who sent a webhook: HubSpot's request signatures (v1, v2, v3) and HTTP basic credentials. Pure.

HubSpot's procedures, as published in "Validating requests" (developers.hubspot.com,
docs/api/webhooks/validating-requests):

- v3 (``X-HubSpot-Signature-v3``, ``X-HubSpot-Request-Timestamp`` in epoch milliseconds):
  base64 of HMAC-SHA256, keyed with the app's client secret, over the UTF-8 string
  method + URI + body + timestamp; requests whose timestamp is older than 5 minutes are refused.
  The URI is the full URL HubSpot called, with its percent-encoded characters decoded.
- v2 (``X-HubSpot-Signature-Version: v2``): hex SHA-256 of secret + method + URI + body.
- v1 (``X-HubSpot-Signature-Version: v1``, CRM object webhooks): hex SHA-256 of secret + body.

Every comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

HUBSPOT_MAX_AGE_SECONDS = 300.0
HUBSPOT_MAX_AHEAD_SECONDS = 300.0  # a timestamp far in the future would make a captured request replayable for long

Verdict = Literal["ok", "bad_signature", "stale_timestamp", "missing_signature"]


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot sends for this request (``uri``: the full URL, percent-decoded)."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_v2_signature(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def hubspot_v1_signature(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


@dataclass(frozen=True)
class SignedRequest:
    """What a HubSpot signature covers, and the headers that carry it (None: header absent)."""

    method: str
    url: str  # as received, percent-encoded
    body: bytes
    signature_v3: str | None
    timestamp: str | None
    signature: str | None
    version: str | None


def check_hubspot(request: SignedRequest, secret: str, now: float) -> Verdict:
    """Whether HubSpot, holding ``secret``, sent ``request``; v3 when present, else v2 or v1."""
    if request.signature_v3 is not None:
        try:
            sent_at = int(request.timestamp or "") / 1000
        except ValueError:
            return "stale_timestamp"
        if now - sent_at > HUBSPOT_MAX_AGE_SECONDS or sent_at - now > HUBSPOT_MAX_AHEAD_SECONDS:
            return "stale_timestamp"
        expected = hubspot_v3_signature(
            secret, request.method, unquote(request.url), request.body, request.timestamp or ""
        )
        return "ok" if hmac.compare_digest(expected.encode(), request.signature_v3.encode()) else "bad_signature"
    if request.signature is None:
        return "missing_signature"
    if request.version == "v2":
        expected = hubspot_v2_signature(secret, request.method, request.url, request.body)
    elif request.version in (None, "v1"):
        expected = hubspot_v1_signature(secret, request.body)
    else:
        return "bad_signature"
    return "ok" if hmac.compare_digest(expected.encode(), request.signature.lower().encode()) else "bad_signature"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` header, None when absent or malformed."""
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets."""
    return hmac.compare_digest(given.encode(), expected.encode())


def basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    """Whether the ``Authorization`` header carries exactly these credentials."""
    credentials = basic_credentials(header)
    if credentials is None:
        return False
    return same_secret(credentials[0], user) & same_secret(credentials[1], password)


def write_key_of(header: str | None) -> str | None:
    """A Segment write key sent as basic auth: the user name, the password empty (Segment's HTTP API)."""
    credentials = basic_credentials(header)
    return credentials[0] if credentials is not None and credentials[0] else None
