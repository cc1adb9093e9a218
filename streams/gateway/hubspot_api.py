"""HubSpot's CRM API at the gateway's edge: the objects a webhook names, read for the mapping's ``fetch``.

``GET {api}/crm/v3/objects/{type}s/{objectId}?properties=a,b&associations=contacts`` with the
app's access token (HubSpot's "CRM objects" API); the answer is flattened under ``object``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from streams.gateway.mapping import Fetch
from streams.gateway.payloads import SourceRecord, wanted_objects, with_objects

PLURALS = {"company": "companies"}
MAX_ANSWER_BYTES = 1_048_576
CONCURRENT_READS = 10  # per request: HubSpot's API allows about 10 calls a second per app on its lowest tier


class CrmUnavailable(RuntimeError):
    """The CRM API did not answer usably: the request is answered 503 and HubSpot retries."""


def object_path(object_type: str, object_id: str) -> str:
    return f"/crm/v3/objects/{PLURALS.get(object_type, object_type + 's')}/{object_id}"


class HubSpotObjects:
    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str, timeout_seconds: float) -> None:
        self._session = session
        self._api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def read(self, object_type: str, object_id: str, fetch: Fetch) -> dict[str, Any] | None:
        """The object as the API returns it, None when it does not exist (any more). Raises CrmUnavailable."""
        params = {"properties": ",".join(fetch.properties)}
        if fetch.associations:
            params["associations"] = ",".join(fetch.associations)
        url = self._api_url + object_path(object_type, object_id)
        try:
            async with self._session.get(url, params=params, headers=self._headers, timeout=self._timeout) as answer:
                if answer.status == 404:
                    return None
                if answer.status != 200:
                    raise CrmUnavailable(f"HubSpot's CRM API answered {answer.status} for a {object_type}")
                body = await answer.content.read(MAX_ANSWER_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CrmUnavailable(f"HubSpot's CRM API did not answer: {exc!r}") from exc
        if len(body) > MAX_ANSWER_BYTES:
            raise CrmUnavailable(f"HubSpot's CRM API answered over {MAX_ANSWER_BYTES} bytes for a {object_type}")
        try:
            found = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise CrmUnavailable(f"HubSpot's CRM API answered no JSON: {exc}") from exc
        return found if isinstance(found, dict) else None

    async def enrich(self, records: Sequence[SourceRecord], fetches: dict[str, Fetch]) -> list[SourceRecord]:
        """The records with the objects they name (``payloads.with_objects``), each read once a request,
        at most CONCURRENT_READS at a time."""
        wanted = wanted_objects(records, fetches)
        slots = asyncio.Semaphore(CONCURRENT_READS)

        async def read(kind: str, number: str, fetch: Fetch) -> dict[str, Any] | None:
            async with slots:
                return await self.read(kind, number, fetch)

        found = await asyncio.gather(*(read(kind, number, fetch) for (kind, number), fetch in wanted.items()))
        return with_objects(records, fetches, dict(zip(wanted, found, strict=True)))
