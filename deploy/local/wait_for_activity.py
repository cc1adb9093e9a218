"""Wait until a kpimon worker has counted the demo's history and shows today's activity per rep; print both.

Used by `make demo`; also handy by hand:
    python deploy/local/wait_for_activity.py --port 6066 --timeout 180

The history (`kpimon simulate --history 35d`) is produced in event-time order per partition, so
once every source partition's watermark (its newest event time) has reached the moment this
script started, the worker has counted everything the simulator produced before it: the
summary then shows finished values, not a history half counted.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from alerts.slack import format_value
from schemas.catalog import load_catalog
from schemas.config import load_config

Sample = tuple[str, dict[str, str], float]

# (label, KPI id, window): headline values across the funnel, for scope "all"
HEADLINES = (
    ("MQLs this week", "mqls", "week"),
    ("win rate, last 30 days", "win_rate", "30d"),
    ("revenue this month", "revenue", "month"),
    ("pipeline velocity, 30 days", "pipeline_velocity", "30d"),
    ("ROMI, last 30 days", "romi", "30d"),
    ("MRR now", "mrr", "month"),
    ("NPS, last 30 days", "nps", "30d"),
)
CATALOG = load_catalog()


def samples(port: int) -> Iterator[Sample]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, sample.labels, sample.value


@dataclass
class Readout:
    """What the summary needs from one scrape."""

    calls_today: dict[str, float]
    watermarks: dict[str, float]  # source partition -> newest event time counted
    partitions: set[str]  # the source partitions the worker reads (from its consumer lag)
    counted: float
    headlines: dict[str, float]

    @classmethod
    def scrape(cls, port: int) -> Readout:
        readout = cls({}, {}, set(), 0.0, {})
        wanted = {(CATALOG.kpi(kpi).metric, window) for _, kpi, window in HEADLINES}
        for name, labels, value in samples(port):
            if name == "kpimon_calls" and labels.get("scope") == "rep" and labels.get("window") == "today":
                readout.calls_today[labels["rep"]] = value
            elif name == "kpimon_watermark_timestamp_seconds":
                readout.watermarks[labels["partition"]] = value
            elif name == "kpimon_faust_consumer_lag_messages":
                readout.partitions.add(labels["partition"])
            elif name == "kpimon_events_total":
                readout.counted += value
            elif labels.get("scope") == "all" and (name, labels.get("window")) in wanted:
                readout.headlines[name] = value
        return readout

    def caught_up(self, since: float) -> bool:
        """Every source partition has counted events from ``since`` on, and reps show activity today."""
        partitions = self.partitions or set(self.watermarks)
        return (
            bool(partitions)
            and all(self.watermarks.get(partition, 0.0) >= since for partition in partitions)
            and any(self.calls_today.values())
        )

    def counted_up_to(self) -> str:
        if not self.watermarks:
            return "nothing yet"
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(min(self.watermarks.values())))


def formatted(value: float | None, unit: str, currency: str) -> str:
    """As in Slack messages (``alerts.slack.format_value``), with the reporting currency after amounts."""
    text = "n/a (no data yet)" if value is None else format_value(value, unit)
    if value is not None and unit == "currency":
        return f"{text} {currency}"
    if value is not None and unit == "currency_per_day":
        return f"{text.removesuffix('/day')} {currency}/day"
    return text


def summary(readout: Readout, elapsed: float, currency: str) -> list[str]:
    lines = [f"history counted and activity per rep on /metrics after {elapsed:.0f} s; calls today:"]
    lines += [f"  {rep:<14} {value:>5.0f}" for rep, value in sorted(readout.calls_today.items())]
    lines += ["", f"headline values, all teams ({readout.counted:,.0f} events counted):"]
    for label, kpi_id, _ in HEADLINES:
        kpi = CATALOG.kpi(kpi_id)
        lines.append(f"  {label:<28} {formatted(readout.headlines.get(kpi.metric), kpi.unit, currency):>20}")
    return lines


def reporting_currency(config: str | None) -> str:
    return load_config(Path(config)).reporting_currency if config else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=6066, help="the worker's web port (default 6066)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait (default 180)")
    parser.add_argument("--config", help="the worker's config file, for the reporting currency")
    args = parser.parse_args(argv)
    currency = reporting_currency(args.config)
    since, started = time.time(), time.monotonic()
    readout: Readout | None = None
    while (elapsed := time.monotonic() - started) < args.timeout:
        try:
            readout = Readout.scrape(args.port)
        except OSError:
            print(f"waiting for the worker to serve /metrics ({elapsed:.0f} s)...", flush=True)
            time.sleep(3)
            continue
        if readout.caught_up(since):
            print("\n".join(summary(readout, elapsed, currency)))
            return 0
        if readout.watermarks:
            doing = f"count the history: {readout.counted:,.0f} events counted, up to {readout.counted_up_to()}"
        else:  # a worker that counted before restores its state from Kafka first
            doing = "restore its state and count its first events"
        print(f"waiting for the worker to {doing} ({elapsed:.0f} s)...", flush=True)
        time.sleep(3)
    where = f"counted up to {readout.counted_up_to()}" if readout is not None else "no /metrics"
    print(
        f"the worker has not caught up with the simulator after {args.timeout:.0f} s ({where}); it goes on "
        f"counting: see .local-stack/logs/worker.log and simulator.log",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
