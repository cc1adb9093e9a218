"""The Faust app: tables, topics, the ingest agent and the /metrics page."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property, partial, wraps
from typing import Any, NoReturn, TypeVar, cast

import faust
import orjson
from aiohttp.web import BaseRequest, Response
from faust import web
from faust.tables.manager import TableManager
from faust.types import TP
from prometheus_client import CollectorRegistry
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from alerts.rules import RulesFile
from schemas.catalog import Catalog
from schemas.config import KpimonConfig
from streams.core.continuity import PartitionTail
from streams.core.records import Position
from streams.core.table_keys import key_partition
from streams.metrics.alert_collector import AlertCollector
from streams.metrics.faust_collector import FaustCollector
from streams.metrics.kpi_collector import KpiFamilyNames, ProgressCollector
from streams.metrics.loop_lag import LoopLagCollector, LoopLagProbe
from streams.metrics.retry_collector import RetryCollector
from streams.metrics.store_collector import StoreCacheCollector
from streams.metrics.visitor_freshness import VisitorsCountedCollector, VisitorWritesCollector
from streams.readout.kpis import monthly_report, monthly_totals
from streams.worker.alerting import AlertService
from streams.worker.batch_consumer import BatchApp, BatchConsumer, CommitOffsets, RawRecord
from streams.worker.changelog_batches import ChangelogBatches
from streams.worker.collector_pacing import CollectorPacer
from streams.worker.entity_store import EntityRocksStore
from streams.worker.kafka_clients import faust_credentials
from streams.worker.metrics_page import MetricsPage
from streams.worker.pipeline import IngestPipeline, SourceConsumer, StateBehindCommits, Tables
from streams.worker.retries import BatchAbandoned
from streams.worker.seen_store import SeenRocksStore
from streams.worker.settings import Settings
from streams.worker.store import STORE_CACHE_BYTES, RocksStore, shared_cache_usage
from streams.worker.visitor_store import VisitorCounter, VisitorRecorder
from streams.worker.web_access import WebCredentials, authorized, web_credentials, web_ssl_context

log = logging.getLogger(__name__)
T = TypeVar("T")
PRODUCER_BUFFER_MESSAGES = 10_000
# Kafka record batches of up to this many bytes (Faust's default is 16 KiB): a backlog's batch sends megabytes of
# changelog records (streams.worker.changelog_batches), well under the broker's 1 MiB limit per batch.
PRODUCER_BATCH_BYTES = 256 * 1024
# The most bytes a fetch takes from one partition (Faust's default is 1 MiB, about 3,000 events): with 6
# partitions a backlog's fetch then holds up to 24 MiB, enough for a whole batch (KPIMON_BATCH_SIZE).
# aiokafka's fetch_max_bytes (50 MiB) bounds a fetch of many partitions.
FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024
TAIL_CHECK_SECONDS = 5.0
VISITOR_RETRY_SECONDS = 5.0
# Bump when the key or value layout, or the order of writes, changes: new tables start empty, and the worker
# refuses to run on them until `kpimon rebuild` (the group's committed offsets are past their empty state).
# v6: a deal's outcome counts per stage it closed from (won_stage:, lost_stage:), so stored deals' counters differ.
STATE_VERSION = "v6"
TABLE_NAMES = ("seen", "buckets", "progress", "entities")
EXIT_STATE_BEHIND_COMMITS = 4  # 2: bad input, 3: Kafka unreachable, topics or data dir unusable
EXIT_BATCH_ABANDONED = 5
# The tables' stores on disk, by URL scheme (streams.worker.store): under data_dir, restored from the changelog if lost.
ROCKS_STORE, CACHED_STORE, SEEN_STORE = "kpimon-rocksdb://", "kpimon-cached://", "kpimon-seen://"
ENTITY_STORE = "kpimon-entities://"
faust.stores.STORES.aliases.update(
    {
        "kpimon-rocksdb": "streams.worker.store:RocksStore",
        "kpimon-cached": "streams.worker.store:CachedRocksStore",
        "kpimon-seen": "streams.worker.seen_store:SeenRocksStore",
        "kpimon-entities": "streams.worker.entity_store:EntityRocksStore",
    }
)


PageHandler = Callable[[web.View, web.Request], Awaitable[web.Response]]


def guarded(credentials: WebCredentials) -> Callable[[PageHandler], PageHandler]:
    """A page that answers a bare 401 unless the request carries the credentials (streams.worker.web_access)."""

    def decorate(handler: PageHandler) -> PageHandler:
        @wraps(handler)
        async def page(self: web.View, request: web.Request) -> web.Response:
            if not authorized(request.headers.get("Authorization"), credentials):
                refusal = Response(
                    status=401, text="401 Unauthorized\n", headers={"WWW-Authenticate": credentials.challenge}
                )
                return cast(web.Response, refusal)
            return await handler(self, request)

        return page

    return decorate


class PartitionKeyedTable(faust.Table[str, Any]):
    """A table whose keys start with ``"<partition>|"``: that partition holds the key.

    Faust normally takes the changelog partition from the event being
    processed, which does not exist on the batch path (no Faust event). The
    partition in the key is the source partition the value was folded from,
    so changelog partition p is restored on the worker that owns source
    partition p (Faust co-assigns topics with equal partition counts).
    """

    store_url = ROCKS_STORE  # which store on disk (streams.worker.store)

    def partition_for_key(self, key: Any) -> int:
        return key_partition(str(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        """Write ``key``: its changelog record and the store take the same bytes, encoded once.

        Faust encodes a written key and value twice, for the changelog record and for the
        store, each through its serializer registry; a batch writes thousands of bucket groups.
        The record waits in ``changelog_batches`` until the pipeline sends them (``Tables.send_changelogs``).
        What else Faust does on a write is a sensor call (no TTL: these tables have no windows).
        """
        store = cast(RocksStore, self.data)
        raw_key, raw_value = store.encode(key, value)
        self.changelog_batches.add(self.partition_for_key(key), raw_key, raw_value)
        self._sensor_on_set(self, key, value)
        store.set_encoded(key, value, raw_key, raw_value)

    def __delitem__(self, key: Any) -> None:
        """Delete ``key``: its changelog record (no value) waits in ``changelog_batches`` as a write's does."""
        store = cast(RocksStore, self.data)
        self.changelog_batches.add(self.partition_for_key(key), store.encode_key(key), None)
        self._sensor_on_del(self, key)
        del store[key]

    @cached_property
    def changelog_batches(self) -> ChangelogBatches:
        return ChangelogBatches(
            self.changelog_topic.get_topic_name,
            lambda: cast(Any, self.app.producer)._ensure_producer(),  # Faust's aiokafka driver: its AIOKafkaProducer
            self._changelog_acknowledged,
        )

    def _changelog_acknowledged(self, tp: TP, offset: int, records: int) -> None:
        self.data.set_persisted_offset(tp, offset)
        self.app.monitor.messages_sent += records  # as Faust's monitor counts each message it sends

    def _new_store(self) -> Any:
        # (Faust would take the app's store for a URL without a path, as these are.)
        return self._new_store_by_url(self.store_url)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Forget the keys of partitions this worker no longer owns.

        The memory store only drops keys it restored from the changelog; keys
        this worker wrote itself would outlive a rebalance that moved their
        partition away, and be exported twice (here and by the new owner).
        With the RocksDB store this finds nothing: each partition is a database
        of its own, closed when the partition is revoked, and only the
        databases of the partitions held are read.
        """
        changelog = self.changelog_topic.get_topic_name()
        owned = {tp.partition for tp in active_tps if tp.topic == changelog}
        for key in [key for key in self.data if self.partition_for_key(key) not in owned]:
            self.data.pop(key, None)
        await super().on_recovery_completed(active_tps, standby_tps)


def changelog_topics(app_id: str) -> list[str]:
    """The changelog topics of the tables of this ``STATE_VERSION`` (Faust names them ``<app>-<table>-changelog``)."""
    return [f"{app_id}-{name}-{STATE_VERSION}-changelog" for name in TABLE_NAMES]


def stop_process(message: str, status: int) -> NoReturn:
    """Stop the process at once, with ``message`` on stderr and in the log: nothing after it is written or committed."""
    log.critical("%s", message)
    print(message, file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(status)


async def _or_stop(work: Awaitable[T]) -> T:
    """``work``'s result; the process stops when the state cannot be trusted to go on (see ``stop_process``)."""
    try:
        return await work
    except StateBehindCommits as exc:
        stop_process(f"kpimon worker refuses to run: {exc}", EXIT_STATE_BEHIND_COMMITS)
    except BatchAbandoned as exc:  # its writes may be in the local store without Kafka's acknowledgement
        stop_process(
            f"kpimon worker stops: {exc}; a restart reads the state from its checkpoint and the changelogs",
            EXIT_BATCH_ABANDONED,
        )


def _table(
    app: faust.App, name: str, settings: Settings, store: str, value_type: type | None = None
) -> PartitionKeyedTable:
    table = PartitionKeyedTable(
        app,
        name=f"{name}-{STATE_VERSION}",
        default=None,
        partitions=settings.partitions,
        key_type=str,  # JSON-encoded keys and values (orjson when installed; raw for value_type bytes)
        value_type=value_type,
        beacon=app.tables.beacon,
        help=f"kpimon {name} state",
    )
    table.store_url = store
    app.tables.add(table)
    return table


def create_app(
    settings: Settings,
    config: KpimonConfig,
    catalog: Catalog,
    clock: Callable[[], float] = time.time,
    rules: RulesFile | None = None,
) -> faust.App:
    app = BatchApp(
        settings.app_id,
        broker=settings.broker_url,
        store=ROCKS_STORE,
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_ssl_context=web_ssl_context(settings.web),
        # Faust's own pages are off: /table reads any stored state, /router shows the cluster,
        # the statistics pages the internals. "/" answers {"status": "OK"} (the health check).
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        broker_credentials=faust_credentials(settings.kafka),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        # No standbys: the store of a standby partition is the same dict the
        # collector and eviction read; a moved partition is restored from its
        # changelog instead.
        table_standby_replicas=0,
        producer_linger=0.005,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        broker_max_poll_records=settings.batch_size,  # the most records per fetch: one batch
        consumer_max_fetch_size=FETCH_BYTES_PER_PARTITION,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_rebalance_timeout=settings.session_timeout_seconds,
    )

    async def rewind(to: Position) -> None:
        tp = TP(to.topic, to.partition)
        if tp in app.consumer.assignment():
            app.log.warning("Re-reading %s[%d] from %d: messages were skipped", to.topic, to.partition, to.offset)
            await app.consumer.seek(tp, to.offset)

    async def tails() -> list[PartitionTail]:
        consumer = app.consumer
        sources = set(settings.source_topics)
        result = []
        for tp in sorted(tp for tp in consumer.assignment() if tp.topic in sources):
            position = await consumer.position(tp)
            if position is not None:
                result.append(PartitionTail(tp.topic, tp.partition, consumer.highwater(tp), position))
        return result

    def committed(topic: str, partition: int) -> int | None:
        return cast(BatchConsumer, app.consumer).committed_offset(TP(topic, partition))

    seen = _table(app, "seen", settings, SEEN_STORE, value_type=bytes)
    buckets = _table(app, "buckets", settings, CACHED_STORE)
    progress = _table(app, "progress", settings, CACHED_STORE)
    entities = _table(app, "entities", settings, ENTITY_STORE)
    tables_written = (seen, buckets, progress, entities)
    stores = [cast(RocksStore, table.data) for table in tables_written]

    def checkpoint() -> None:
        for store in stores:
            store.checkpoint()

    async def send_changelogs() -> None:
        await asyncio.gather(*(table.changelog_batches.send() for table in tables_written if table.changelog_batches))

    tables = Tables(
        seen=seen,
        buckets=buckets,
        progress=progress,
        local_seen=cast(SeenRocksStore, seen.data),
        local_buckets=buckets.data,
        local_progress=progress.data,
        entities=entities,
        local_entities=entities.data,
        checkpoint=checkpoint,
        send_changelogs=send_changelogs,
        entity_scan=cast(RocksStore, entities.data).scan,
    )
    visitors = VisitorRecorder(_redis(settings, connect_timeout=2, timeout=5))
    guard = guarded(web_credentials(settings.web))
    page = _metrics_page(app, settings, config, catalog, clock, tables, guard)
    page.registry.register(VisitorWritesCollector(lambda: visitors.pending, lambda: visitors.dropped))
    app.task(CollectorPacer().run)
    pipeline = IngestPipeline(
        settings,
        config,
        tables,
        deadletter=app.topic(settings.deadletter_topic),
        rekeyed=app.topic(settings.rekeyed_topic),
        producer=lambda: app.producer,
        consumer=SourceConsumer(
            generation=lambda: app.consumer_generation_id, rewind=rewind, tails=tails, committed=committed
        ),
        clock=clock,
        visitors=visitors,
        observer=page,
    )
    app.timer(VISITOR_RETRY_SECONDS)(visitors.retry)

    @app.on_before_shutdown.connect
    async def close_visitors(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await visitors.close()

    async def ingest(records: Sequence[RawRecord]) -> CommitOffsets:
        # Faust pauses consumption while more than this many produced messages
        # wait for the Kafka client; a batch writes a few hundred changelog
        # records at once, far above Faust's default of 100.
        app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES
        return await _or_stop(pipeline.ingest(records))

    # Each fetch of the source topics reaches the pipeline as one batch of raw records (no Faust events).
    app.batches(app.topic(*settings.source_topics), ingest)

    async def check_tails() -> None:
        if not app.rebalancing and cast(TableManager, app.tables).actives_ready:  # the state of this rebalance restored
            await _or_stop(pipeline.check_tails())

    app.timer(TAIL_CHECK_SECONDS)(check_tails)

    page.registry.register(FaustCollector(lambda: app.monitor, lambda: app.rebalancing_count, pipeline.continuity))
    page.registry.register(RetryCollector(lambda: pipeline.retries.counts))
    page.registry.register(StoreCacheCollector(shared_cache_usage, STORE_CACHE_BYTES))

    if rules is not None:
        service = _alert_service(app, settings, config, catalog, rules, buckets, clock)
        page.registry.register(AlertCollector(lambda: service.metrics))

    @app.page("/kpis/months")
    @guard
    async def months(self: web.View, request: web.Request) -> web.Response:
        """Counters and KPIs per scope and calendar month, for history and replays of old data."""
        report = monthly_report(catalog, monthly_totals(list(buckets.data.items()), config))
        return cast(web.Response, Response(body=orjson.dumps(report), content_type="application/json"))

    return app


def _redis(settings: Settings, *, connect_timeout: float, timeout: float) -> Redis:
    """An asyncio client of KPIMON_REDIS_URL (redis:// or rediss://, with user and password if it has them)."""
    url = settings.redis_url.get_secret_value()
    return Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=timeout)


def tables_recovered(app: faust.App) -> bool:
    """Whether the tables' recovery is complete (Faust sets it after every table's recovery callbacks)."""
    return bool(cast(Any, app.tables).recovery.completed.is_set())  # read when asked: it exists once the app runs


def _metrics_page(
    app: faust.App,
    settings: Settings,
    config: KpimonConfig,
    catalog: Catalog,
    clock: Callable[[], float],
    tables: Tables,
    guard: Callable[[PageHandler], PageHandler],
) -> MetricsPage:
    """/metrics (see streams.worker.metrics_page), its totals reconciled after every recovery of their tables."""
    registry, probe = CollectorRegistry(), LoopLagProbe()
    registry.register(KpiFamilyNames(catalog))  # their samples come from the page's text; this keeps the name check
    registry.register(LoopLagCollector(probe))
    counter = VisitorCounter(
        SyncRedis.from_url(settings.redis_url.get_secret_value(), socket_connect_timeout=0.5, socket_timeout=1),
        settings.app_id,
        config,
        async_redis=_redis(settings, connect_timeout=0.5, timeout=1),
    )
    page = MetricsPage(
        catalog,
        config,
        registry,
        probe,
        clock=clock,
        visitors=counter,
        app_id=settings.app_id,
        recovered=partial(tables_recovered, app),
    )
    registry.register(ProgressCollector(lambda: list(page.progress.items())))
    registry.register(VisitorsCountedCollector(lambda: page.visitors_counted_at))
    buckets, entities = cast(PartitionKeyedTable, tables.buckets), cast(PartitionKeyedTable, tables.entities)

    @cast(PartitionKeyedTable, tables.progress).on_recover
    async def reconcile_ingest_counters() -> None:
        page.reconcile_progress(list(tables.local_progress.items()))

    @buckets.on_recover
    async def reconcile_window_totals() -> None:
        await page.reconcile_groups(lambda: list(tables.local_buckets.items()))

    @entities.on_recover
    async def reconcile_open_deals() -> None:  # the store's index of open deals: all the page reads of the entities
        await page.reconcile_entities(cast(EntityRocksStore, tables.local_entities).open_deal_items)

    app.task(probe.run)
    app.task(page.refresh_forever)

    @app.page("/metrics")
    @guard
    async def metrics(self: web.View, request: web.Request) -> web.Response:
        return cast(web.Response, await page.respond(cast(BaseRequest, request)))  # aiohttp's request

    return page


def _alert_service(
    app: faust.App,
    settings: Settings,
    config: KpimonConfig,
    catalog: Catalog,
    rules: RulesFile,
    buckets: PartitionKeyedTable,
    clock: Callable[[], float],
) -> AlertService:
    """The alert engine on this worker's timers: evaluation, digests and delivery (see streams.worker.alerting)."""
    alerts_topic = app.topic(settings.alerts_topic)

    async def audit(key: str, record: bytes) -> None:
        await alerts_topic.send(key=key.encode(), value=record)

    def owned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.crm_topic}

    def ready() -> bool:
        return not app.rebalancing and tables_recovered(app)

    service = AlertService(
        settings,
        config,
        catalog,
        rules,
        _redis(settings, connect_timeout=2, timeout=5),
        buckets=lambda: list(buckets.data.items()),
        owned=owned,
        ready=ready,
        audit=audit,
        clock=clock,
        env=os.environ,
    )
    app.timer(settings.alert_interval_seconds)(service.evaluate)
    app.timer(settings.delivery_interval_seconds)(service.deliver)

    @app.on_before_shutdown.connect
    async def close_alerts(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await service.close()

    return service
