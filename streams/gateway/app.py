"""The gateway's HTTP app: each source's route authenticates, maps, produces, then answers.

A request is answered 2xx only after Kafka acknowledged every event and dead letter it
gave (``acks=all``): a crash before the answer makes the sender retry, and the retry's
events carry the same ids (derived from the source's own ids), so the worker counts them once.
401: wrong credentials or signature; 413: body over the limit; 429 + Retry-After: the
source's rate limit; 503: Kafka (or HubSpot's CRM API) did not answer, or the gateway is
stopping. Unmappable records are answered 2xx too (a retry would not map them either):
they go to the dead-letter topic with the reason and the record's raw JSON.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.gateway.hubspot_api import CrmUnavailable
from streams.gateway.mapping import PayloadMapper
from streams.gateway.metrics import GatewayMetrics
from streams.gateway.payloads import SourceRecord
from streams.gateway.producer import EventProducer, KafkaUnavailable, Message
from streams.gateway.rate_limit import TokenBucket
from streams.gateway.translate import Translation, translate
from streams.worker.acceptance import Acceptance
from streams.worker.web_access import WebCredentials, authorized

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Authenticate = Callable[[web.Request, bytes, float], str | None]  # None: accepted; else the reason refused
ReadRecords = Callable[[web.Request, bytes], list[SourceRecord]]
Enrich = Callable[[list[SourceRecord]], Awaitable[list[SourceRecord]]]
Answer = Callable[[Translation], web.Response]
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
MAX_DEAD_LETTER_BYTES = 512 * 1024  # well under Kafka's default 1 MiB message limit, headers included
MAX_DETAIL_CHARS = 2000


@dataclass
class Source:
    """One webhook source as served: how it authenticates, what its body holds, its mapping and its answer."""

    name: str
    mapper: PayloadMapper
    authenticate: Authenticate
    read_records: ReadRecords
    answer: Answer
    bucket: TokenBucket
    enrich: Enrich | None = None


@dataclass
class Topics:
    crm: str
    marketing: str
    deadletter: str


@dataclass
class Gateway:
    """The app's parts; ``stopping`` turns /readyz and new webhook requests to 503."""

    producer: EventProducer
    topics: Topics
    checks: Acceptance
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    clock: Clock = time.time
    stopping: bool = False

    def messages(self, source: Source, translation: Translation) -> list[Message]:
        topic = {"crm": self.topics.crm, "marketing": self.topics.marketing}
        messages = [Message(topic[event.topic], event.key, event.value) for event in translation.events]
        rejected_at = f"{self.clock():.3f}".encode()
        for letter in translation.dead_letters:
            headers = [
                ("kpimon-reason", letter.reason.encode()),
                ("kpimon-detail", letter.detail[:MAX_DETAIL_CHARS].encode()),
                ("kpimon-source", f"gateway:{source.name}".encode()),
                ("kpimon-rejected-at", rejected_at),
            ]
            if len(letter.raw) > MAX_DEAD_LETTER_BYTES:  # else Kafka would refuse it, and the sender retry for ever
                headers.append(("kpimon-truncated-from-bytes", str(len(letter.raw)).encode()))
            messages.append(Message(self.topics.deadletter, None, letter.raw[:MAX_DEAD_LETTER_BYTES], tuple(headers)))
        return messages

    def refuse(self, source: Source, status: int, reason: str, text: str, **headers: str) -> web.Response:
        self.metrics.rejected.labels(source.name, reason).inc()
        return web.json_response({"error": reason, "message": text}, status=status, headers=headers)

    async def handle(self, source: Source, request: web.Request) -> web.Response:
        if self.stopping:
            return self.refuse(source, 503, "stopping", "the gateway is stopping: retry", **{"Retry-After": "5"})
        wait = source.bucket.take(time.monotonic())
        if wait:
            text = f"over the rate limit of source {source.name}: retry in {wait} s"
            return self.refuse(source, 429, "rate_limited", text, **{"Retry-After": str(wait)})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            limit = request.app[MAX_BODY_BYTES]
            return self.refuse(source, 413, "too_large", f"the body is over the limit of {limit} bytes")
        refused = source.authenticate(request, body, self.clock())
        if refused is not None:
            return self.refuse(source, 401, refused, "the request's credentials or signature are not valid")
        records = source.read_records(request, body)
        try:
            if source.enrich is not None:
                records = await source.enrich(records)
        except CrmUnavailable as exc:
            log.warning("gateway: %s: %s", source.name, exc)
            return self.refuse(
                source, 503, "crm_unavailable", "the CRM API did not answer: retry", **{"Retry-After": "10"}
            )
        translation = translate(source.mapper, records, self.checks, self.clock())
        try:
            seconds = await self.producer.send_all(self.messages(source, translation))
        except KafkaUnavailable as exc:
            log.warning("gateway: %s: %s", source.name, exc)
            return self.refuse(
                source, 503, "kafka_unavailable", "Kafka is not available: retry", **{"Retry-After": "5"}
            )
        self.count(source, translation, seconds)
        return source.answer(translation)

    def count(self, source: Source, translation: Translation, seconds: float) -> None:
        self.metrics.kafka_seconds.labels(source.name).observe(seconds)
        for event in translation.events:
            self.metrics.produced.labels(source.name, event.type).inc()
        for letter in translation.dead_letters:
            self.metrics.dead_letters.labels(source.name, letter.reason).inc()
        if translation.skipped:
            self.metrics.ignored.labels(source.name).inc(translation.skipped)


def _route(gateway: Gateway, source: Source) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        gateway.metrics.in_flight.inc()
        try:
            response = await gateway.handle(source, request)
        finally:
            gateway.metrics.in_flight.dec()
        gateway.metrics.requests.labels(source.name, str(response.status)).inc()
        return response

    return handler


def build_app(
    gateway: Gateway,
    routes: Sequence[tuple[str, Source]],
    max_body_bytes: int,
    metrics_credentials: WebCredentials,
) -> web.Application:
    """The aiohttp app: ``routes`` (path, source) for POST, and /metrics, /healthz, /readyz.

    /metrics wants the worker's credentials when they are set (``KPIMON_WEB_AUTH_*``,
    streams.worker.web_access): a bare 401 without them. The health checks stay open.
    """
    app = web.Application(client_max_size=max_body_bytes)
    app[MAX_BODY_BYTES] = max_body_bytes

    async def metrics(request: web.Request) -> web.Response:
        if not authorized(request.headers.get("Authorization"), metrics_credentials):
            return web.Response(
                status=401, text="401 Unauthorized\n", headers={"WWW-Authenticate": metrics_credentials.challenge}
            )
        response = web.Response(body=generate_latest(gateway.metrics.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = gateway.producer.ready and not gateway.stopping
        state = "stopping" if gateway.stopping else "ready" if ready else "waiting for Kafka"
        return web.json_response({"status": state}, status=200 if ready else 503)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for path, source in routes:
        app.router.add_post(path, _route(gateway, source))
    return app
