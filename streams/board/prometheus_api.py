"""Prometheus' HTTP API, as the board reads it: instant queries and the scrape targets of a job."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from streams.board.queries import Query, split_samples
from streams.board.screens import Results, Sample

TIMEOUT = aiohttp.ClientTimeout(total=5)


class PrometheusUnavailable(Exception):
    """Prometheus did not answer, or answered with an error."""


@dataclass(frozen=True)
class Target:
    url: str
    healthy: bool
    last_scrape: float  # Unix time the last scrape started (Prometheus' lastScrape)
    error: str


class PrometheusApi:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            async with self._session.get(f"{self._base}{path}", params=params, timeout=TIMEOUT) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PrometheusUnavailable(f"{self._base}: {type(exc).__name__} {exc}".strip()) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", "no status") if isinstance(body, dict) else "not JSON"
            raise PrometheusUnavailable(f"{self._base}{path}: {error}")
        return body["data"]

    async def targets(self, job: str) -> list[Target]:
        """The active targets of ``job``, with their health and last scrape."""
        data = await self._get("/api/v1/targets", {"state": "active"})
        return [
            Target(
                url=target["scrapeUrl"],
                healthy=target["health"] == "up",
                last_scrape=datetime.fromisoformat(target["lastScrape"]).timestamp(),
                error=target.get("lastError", ""),
            )
            for target in data["activeTargets"]
            if target["labels"].get("job") == job
        ]

    async def query(self, expr: str) -> list[Sample]:
        data = await self._get("/api/v1/query", {"query": expr})
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    async def query_all(self, queries: Sequence[Query]) -> Results:
        """Every query at once; any failure fails the lot (a board never shows half a refresh)."""
        answers = await asyncio.gather(*(self.query(query.expr) for query in queries))
        results: dict[str, list[Sample]] = {}
        for query, samples in zip(queries, answers, strict=True):
            for key, split in split_samples(query.key, samples).items():
                results.setdefault(key, []).extend(split)
        return results
