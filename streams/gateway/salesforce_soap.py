"""Salesforce Outbound Messages: the SOAP ``notifications`` call as records, and the acknowledgement. Pure.

As the outbound messaging WSDL defines it (Salesforce's SOAP API guide, "Outbound Messaging"):
``notifications`` holds ``OrganizationId``, ``ActionId``, ``SessionId``, ``EnterpriseUrl``,
``PartnerUrl`` and up to 100 ``Notification`` elements, each an ``Id`` (the notification's own
id: a redelivered message repeats it) and an ``sObject`` whose children are the fields chosen for
the message. Each notification becomes a record with the cells ``OrganizationId``, ``ActionId``,
``NotificationId``, ``sObject.type`` (``Opportunity``) and ``sObject.<Field>``.

Salesforce retries a message until it gets ``ACKNOWLEDGEMENT`` back. The XML is parsed by
defusedxml: no DTDs, no entity expansion, no external references.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from streams.gateway.mapping import MAX_CELL_CHARS, Cells
from streams.gateway.payloads import MAX_RECORDS, SourceRecord

OUTBOUND_NS = "{http://soap.sforce.com/2005/09/outbound}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
ACKNOWLEDGEMENT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    '<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    "<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _text(element: Element | None) -> str:
    if element is None or element.get(XSI_NIL) == "true":
        return ""
    return (element.text or "").strip()[:MAX_CELL_CHARS]


def _fields(element: Element, prefix: str, cells: Cells) -> None:
    for child in element:
        name = f"{prefix}.{_local(child.tag)}"
        if len(child):
            _fields(child, name, cells)  # a related record (Owner, Account): its fields under its name
        else:
            cells[name] = _text(child)


def parse_outbound_message(body: bytes) -> tuple[str | None, list[SourceRecord]]:
    """(the sending organization's id, its notifications as records); (None, [one unreadable record]) when
    the body is no outbound message."""
    try:
        root = fromstring(body)
    except (ParseError, DefusedXmlException) as exc:
        return None, [SourceRecord(body, problem=f"the body is not usable XML: {exc}")]
    notifications = root.find(f".//{OUTBOUND_NS}notifications")
    if notifications is None:
        return None, [SourceRecord(body, problem="no notifications element: not a Salesforce outbound message")]
    organization = _text(notifications.find(f"{OUTBOUND_NS}OrganizationId"))
    action = _text(notifications.find(f"{OUTBOUND_NS}ActionId"))
    items = notifications.findall(f"{OUTBOUND_NS}Notification")
    if len(items) > MAX_RECORDS:
        return organization, [SourceRecord(body, problem=f"{len(items)} notifications, over {MAX_RECORDS}")]
    records = []
    for item in items:
        cells: Cells = {"OrganizationId": organization, "ActionId": action}
        cells["NotificationId"] = _text(item.find(f"{OUTBOUND_NS}Id"))
        sobject = item.find(f"{OUTBOUND_NS}sObject")
        if sobject is not None:
            cells["sObject.type"] = _local(sobject.get(XSI_TYPE, "").rpartition(":")[2])
            _fields(sobject, "sObject", cells)
        records.append(SourceRecord(tostring(item, encoding="utf-8"), cells=cells))
    return organization, records


def same_organization(given: str, allowed: str) -> bool:
    """Salesforce ids come in 15 (case-sensitive) and 18 characters (with a checksum suffix): compare the 15."""
    return len(given) in (15, 18) and len(allowed) in (15, 18) and given[:15] == allowed[:15]
