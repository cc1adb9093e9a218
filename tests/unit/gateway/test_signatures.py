"""HubSpot's signatures and basic auth, against vectors computed here with hashlib/hmac from the published procedure."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from streams.gateway.signatures import (
    SignedRequest,
    basic_auth_matches,
    basic_credentials,
    check_hubspot,
    hubspot_v1_signature,
    hubspot_v2_signature,
    hubspot_v3_signature,
    write_key_of,
)

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"  # the placeholder client secret of HubSpot's examples
BODY = b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1796000000000}]'
URL = "https://kpimon.example.com/webhooks/hubspot?app=kpimon%20demo"
NOW = 1_796_000_000.0
TIMESTAMP = "1796000000000"


def _v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The published v3 procedure, written out: UTF-8 of method+URI+body+timestamp, HMAC-SHA256, base64."""
    source = f"{method}{uri}{body.decode()}{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()).decode()


def _request(**changes: str | None) -> SignedRequest:
    fields: dict[str, str | None] = {
        "signature_v3": _v3(
            SECRET, "POST", "https://kpimon.example.com/webhooks/hubspot?app=kpimon demo", BODY, TIMESTAMP
        ),
        "timestamp": TIMESTAMP,
        "signature": None,
        "version": None,
    }
    fields.update(changes)
    return SignedRequest("POST", URL, BODY, **fields)  # type: ignore[arg-type]


def test_v3_matches_the_published_procedure_with_the_uri_decoded() -> None:
    assert check_hubspot(_request(), SECRET, NOW) == "ok"
    decoded = "https://kpimon.example.com/webhooks/hubspot?app=kpimon demo"
    assert hubspot_v3_signature(SECRET, "POST", decoded, BODY, TIMESTAMP) == _v3(
        SECRET, "POST", decoded, BODY, TIMESTAMP
    )


def test_v3_known_vector() -> None:
    # printf 'POSThttps://example.com/hook[]1700000000000' | openssl dgst -sha256 -hmac secret -binary | base64
    expected = "0/4DF+YUcmbqY3ggukl+oIJILQ/DMu3iavl4482uHT4="
    assert hubspot_v3_signature("secret", "POST", "https://example.com/hook", b"[]", "1700000000000") == expected


@pytest.mark.parametrize(
    ("changes", "now", "verdict"),
    [
        ({}, NOW + 299, "ok"),
        ({}, NOW + 301, "stale_timestamp"),  # older than 5 minutes
        ({}, NOW - 301, "stale_timestamp"),  # far ahead of our clock
        ({"timestamp": "not-a-number"}, NOW, "stale_timestamp"),
        ({"timestamp": None}, NOW, "stale_timestamp"),
        ({"signature_v3": "AAAA"}, NOW, "bad_signature"),
        ({"timestamp": "1796000000001"}, NOW, "bad_signature"),  # the timestamp is signed
        ({"signature_v3": None}, NOW, "missing_signature"),
    ],
)
def test_v3_refusals(changes: dict[str, str | None], now: float, verdict: str) -> None:
    assert check_hubspot(_request(**changes), SECRET, now) == verdict


def test_v3_refuses_another_secret_and_another_body() -> None:
    assert check_hubspot(_request(), "another-secret", NOW) == "bad_signature"
    tampered = SignedRequest("POST", URL, BODY + b" ", _request().signature_v3, TIMESTAMP, None, None)
    assert check_hubspot(tampered, SECRET, NOW) == "bad_signature"


# HubSpot's own examples ("Validating the v1/v2 request signature", legacydocs.hubspot.com/docs/faq/...):
HUBSPOT_V1_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":'
    b'"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)


def test_hubspots_published_examples() -> None:
    assert hubspot_v1_signature(SECRET, HUBSPOT_V1_BODY) == (
        "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    )
    uri = "https://www.example.com/webhook_uri"
    assert hubspot_v2_signature(SECRET, "POST", uri, b'{"example_field":"example_value"}') == (
        "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    )
    assert hubspot_v2_signature(SECRET, "GET", uri, b"") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )


def test_v1_and_v2() -> None:
    v1 = hashlib.sha256((SECRET + BODY.decode()).encode()).hexdigest()
    v2 = hashlib.sha256((SECRET + "POST" + URL + BODY.decode()).encode()).hexdigest()
    assert hubspot_v1_signature(SECRET, BODY) == v1
    assert hubspot_v2_signature(SECRET, "POST", URL, BODY) == v2
    assert check_hubspot(_request(signature_v3=None, signature=v1, version="v1"), SECRET, NOW) == "ok"
    assert check_hubspot(_request(signature_v3=None, signature=v1.upper(), version=None), SECRET, NOW) == "ok"
    assert check_hubspot(_request(signature_v3=None, signature=v2, version="v2"), SECRET, NOW) == "ok"
    assert check_hubspot(_request(signature_v3=None, signature=v1, version="v2"), SECRET, NOW) == "bad_signature"
    assert check_hubspot(_request(signature_v3=None, signature=v1, version="v9"), SECRET, NOW) == "bad_signature"


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_credentials() -> None:
    assert basic_credentials(_basic("kpimon:s3cr:et")) == ("kpimon", "s3cr:et")
    assert basic_credentials(None) is None
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials(_basic("no-colon")) is None
    assert basic_auth_matches(_basic("kpimon:pw"), "kpimon", "pw")
    assert not basic_auth_matches(_basic("kpimon:pw2"), "kpimon", "pw")
    assert not basic_auth_matches(_basic("other:pw"), "kpimon", "pw")


def test_segment_write_key_is_the_user_name() -> None:
    assert write_key_of(_basic("wk_123:")) == "wk_123"
    assert write_key_of(_basic(":")) is None
    assert write_key_of(None) is None
