"""A request body of any source format as its records. Pure."""

from __future__ import annotations

from streams.gateway.payloads import (
    SourceRecord,
    hubspot_records,
    pipedrive_records,
    salesforce_relay_records,
    segment_records,
)
from streams.gateway.salesforce_soap import parse_outbound_message


def read_records(source_format: str, path: str, body: bytes) -> list[SourceRecord]:
    """The records of a request to ``path`` of a source of ``source_format`` (a mapping's ``format``)."""
    if source_format == "hubspot":
        return hubspot_records(body)
    if source_format == "segment":
        return segment_records(body, path.rstrip("/").rsplit("/", 1)[-1])
    if source_format == "pipedrive":
        return pipedrive_records(body)
    if source_format == "salesforce":
        return parse_outbound_message(body)[1]
    if source_format == "salesforce_relay":
        return salesforce_relay_records(body)
    raise ValueError(f"no reader for source format {source_format!r}")
