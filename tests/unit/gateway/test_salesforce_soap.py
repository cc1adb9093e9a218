"""Salesforce outbound messages parsed safely: notifications as records, hostile XML refused."""

from __future__ import annotations

from pathlib import Path

import orjson

from streams.gateway.salesforce_soap import ACKNOWLEDGEMENT, parse_outbound_message, same_organization

SAMPLE = Path(__file__).resolve().parents[3] / "deploy/gateway/samples/salesforce/opportunities-closed.json"


def test_notifications_become_records_with_the_organization() -> None:
    body = orjson.loads(SAMPLE.read_bytes())["body"].encode()
    organization, records = parse_outbound_message(body)
    assert organization == "00D000000000062EAA"
    assert [record.cells["NotificationId"] for record in records if record.cells] == [
        "04l000000000001AAA",
        "04l000000000002AAA",
    ]
    first = records[0].cells or {}
    assert first["sObject.type"] == "Opportunity"
    assert (first["sObject.Amount"], first["sObject.IsWon"], first["ActionId"]) == (
        "15000.0",
        "true",
        "04k000000000001AAA",
    )
    assert b"04l000000000001AAA" in records[0].raw and b"04l000000000002AAA" not in records[0].raw


def test_hostile_or_foreign_xml_is_one_unreadable_record() -> None:
    billion_laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<notifications>&lol2;</notifications>"
    )
    external = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    for body in (billion_laughs, external, b"not xml", b"<soap><Body/></soap>"):
        organization, records = parse_outbound_message(body)
        assert organization is None
        assert len(records) == 1 and records[0].cells is None and records[0].raw == body


def test_organization_ids_compare_by_their_15_characters() -> None:
    assert same_organization("00D000000000062EAA", "00D000000000062")
    assert same_organization("00D000000000062", "00D000000000062EAA")
    assert not same_organization("00d000000000062EAA", "00D000000000062EAA")  # 15-character ids are case-sensitive
    assert not same_organization("00D000000000063EAA", "00D000000000062EAA")
    assert not same_organization("", "00D000000000062")


def test_the_acknowledgement_is_the_one_the_wsdl_defines() -> None:
    assert '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>' in ACKNOWLEDGEMENT
