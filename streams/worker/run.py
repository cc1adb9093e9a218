"""Run one kpimon worker process: create topics, start Faust, stop within a bounded time."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path
from typing import IO

import faust

from alerts.rules import RulesFile
from schemas.catalog import Catalog
from schemas.config import KpimonConfig
from streams.worker.app import create_app
from streams.worker.settings import Settings
from streams.worker.topics import ensure_topics

log = logging.getLogger(__name__)
# A batch's plan runs in a thread (streams.worker.pipeline): the event loop asks for the interpreter
# lock back after this long, not Python's default 5 ms, so a scrape's slices and the fetches wait
# at most this long for it each time.
SWITCH_INTERVAL_SECONDS = 0.001


class BoundedShutdownWorker(faust.Worker):
    """A Faust worker whose shutdown on SIGTERM/SIGINT ends within ``shutdown_timeout`` seconds.

    A graceful stop finishes the batch in flight and commits it, and takes about
    a second. If anything keeps it waiting (a broker that does not answer a
    flush; services on another event loop used to, see ``run_worker``), kpimon's
    counts do not depend on a clean stop (state is exact across SIGKILL), so
    after the timeout the process exits.
    """

    def __init__(
        self, app: faust.App, *, loglevel: str, loop: asyncio.AbstractEventLoop, shutdown_timeout: float
    ) -> None:
        super().__init__(app, loglevel=loglevel, loop=loop)
        self._shutdown_timeout = shutdown_timeout

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if not self._signal_stop_time:
            self.loop.call_later(self._shutdown_timeout, self._exit_now)
        super()._schedule_shutdown(signum)

    def _exit_now(self) -> None:
        log.warning("kpimon worker: shutdown took over %.0f s, exiting now (state is safe)", self._shutdown_timeout)
        logging.shutdown()
        os._exit(0)


class DataDirInUse(RuntimeError):
    pass


def lock_data_dir(data_dir: Path) -> IO[bytes]:
    """Hold the data dir for this process (released when it exits): two workers cannot share a local store."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "kpimon.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(
            f"{data_dir} (KPIMON_DATA_DIR) is in use by another kpimon worker: give each worker its own"
        ) from None
    return handle


def run_worker(
    settings: Settings, config: KpimonConfig, catalog: Catalog, loglevel: str, rules: RulesFile | None = None
) -> None:
    data_dir_lock = lock_data_dir(settings.data_dir)  # noqa: F841  (held until the process exits)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # before the app: Faust's services take the current loop when created
    app = create_app(settings, config, catalog, rules=rules)
    loop.run_until_complete(
        ensure_topics(
            settings.bootstrap_servers,
            [*settings.source_topics, settings.deadletter_topic],
            settings.partitions,
            settings.replication_factor,
            outputs=[settings.alerts_topic] if rules is not None else [],
            security=settings.kafka,
        )
    )
    scheme = "https" if settings.web.uses_tls else "http"
    print(f"kpimon worker: metrics on {scheme}://{settings.web_host}:{settings.web_port}/metrics", flush=True)
    worker = BoundedShutdownWorker(
        app, loglevel=loglevel, loop=loop, shutdown_timeout=settings.shutdown_timeout_seconds
    )
    worker.execute_from_commandline()
