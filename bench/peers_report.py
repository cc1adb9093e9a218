"""The report of a peers run (bench/peers.py): the table, kpimon against each peer, the checks; and of a sweep.

Each consumer's figures come as a ``Phase`` (bench/throughput.py); these functions only format them.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from bench.throughput import OTHER_TOTALS, Phase, ratio

SWEEP_TARGET = 0.20  # issue 12: the rate with 1,000 reps within 20% of the rate with 10
COUNT_BY = {"commits": "its committed offsets", "metrics": "scrapes of /metrics"}
BASE_NAMES = {"bare": "the bare loop", "quix": "Quix Streams", "faust": "the Faust agent"}
ROW_NAMES = {
    "bare": "bare aiokafka getmany + orjson + count per (rep, type)",
    "quix": "Quix Streams {quixstreams}, 1-minute tumbling count per rep",
    "faust": "Faust {faust} agent, take_events(2000) + orjson + count (no tables)",
    "kpimon": "kpimon worker (all KPIs)",
}
CONSUMERS = tuple(ROW_NAMES)  # in the order they run and appear
QUIX_PACKAGES = ("quixstreams", "confluent-kafka")  # from Quix Streams' own venv
HARNESS_PACKAGES = ("faust-streaming", "aiokafka", "orjson")


def versions(quix: dict[str, str] | None) -> dict[str, str | None]:
    """The consumers' packages: Quix Streams' as its venv reported them (``quix``), the others from this one."""
    found: dict[str, str | None] = {name: (quix or {}).get(name) for name in QUIX_PACKAGES}
    for name in HARNESS_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def load_text(result: dict[str, Any]) -> str:
    return " ".join(f"{value:.2f}" for value in result["load_average_start"])


def rate_ratio(part: Phase | None, whole: Phase | None) -> float | None:
    """``part``'s rate over ``whole``'s; None where either did not run or ``whole`` has no rate."""
    return None if part is None or whole is None or not whole.sustained_rate else ratio(part, whole)


def ratios(phases: dict[str, Phase]) -> dict[str, float | None]:
    consumers = [kind for kind in CONSUMERS if kind in phases]
    return {
        f"{kind}_to_{base}": rate_ratio(phases[kind], phases.get(base))
        for kind in consumers
        for base in BASE_NAMES
        if kind != base
    }


def share_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def times_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}x"


def row(name: str, phase: Phase, to_bare: float | None, to_quix: float | None) -> str:
    x, cpu_us = phase.extra, cpu_per_event_us(phase)
    return (
        f"| {name:<68} | {phase.sustained_rate:>9,.0f} | {share_text(to_bare):>13} | {times_text(to_quix):>9} "
        f"| {phase.sustained_seconds:>7.1f} | {cpu_us:>12,.1f} | {x['peak_rss_bytes'] / 2**20:>8,.0f} |"
    )


def peers_table(phases: dict[str, Phase], names: dict[str, str]) -> list[str]:
    lines = [
        f"| {'consumer of the same events':<68} |  events/s | share of bare | x Quix    | seconds "
        "| CPU us/event | RSS MiB  |",
        f"|{'-' * 70}|{'-' * 10}:|{'-' * 14}:|{'-' * 10}:|{'-' * 8}:|{'-' * 13}:|{'-' * 9}:|",
    ]
    for kind in CONSUMERS:
        if (phase := phases.get(kind)) is not None:
            to_bare = 1.0 if kind == "bare" else rate_ratio(phase, phases.get("bare"))
            to_quix = 1.0 if kind == "quix" else rate_ratio(phase, phases.get("quix"))
            lines.append(row(names[kind], phase, to_bare, to_quix))
    return lines


def one_in(value: float | None) -> str:
    return "-" if not value else f"1 : {1 / value:,.0f}"


def kpimon_summary(phases: dict[str, Phase], ratios: dict[str, float | None]) -> list[str]:
    """kpimon's rate against each peer that ran, as a share and as 1 : n; and its CPU time per event."""
    peers = [(base, name) for base, name in BASE_NAMES.items() if base in phases]
    if "kpimon" not in phases or not peers:
        return []
    kpimon_cpu = cpu_per_event_us(phases["kpimon"])
    rates = [
        f"{share_text(ratios[f'kpimon_to_{base}'])} of {name} ({one_in(ratios[f'kpimon_to_{base}'])})"
        for base, name in peers
    ]
    cpu = [f"{kpimon_cpu / cpu_per_event_us(phases[base]):,.1f}x {name}" for base, name in peers]
    return ["kpimon's rate = " + ", ".join(rates), "kpimon's CPU time per event = " + ", ".join(cpu)]


def passes_line(phases: dict[str, Phase]) -> list[str]:
    runs = {kind: phase.extra.get("passes_sustained_events_per_second") for kind, phase in phases.items()}
    parts = [f"{kind} " + ", ".join(f"{rate:,.0f}" for rate in rates) for kind, rates in runs.items() if rates]
    return ["passes (events/s, the median counts): " + "; ".join(parts)] if parts else []


def checks(phases: dict[str, Phase], events: int) -> list[str]:
    """What each consumer counted: all N events, and nothing lost on the way."""
    lines = []
    for kind in ("bare", "faust"):
        if (phase := phases.get(kind)) is not None:
            x = phase.extra
            lines.append(f"{kind}: counted {x['counted']:,} of {events:,} events in {x['keys']:,} (rep, type) keys")
    if (quix := phases.get("quix")) is not None:
        lines.append(f"quix: {quix.events:,} events through the window, {quix.extra['late']:,} of them late (dropped)")
    if (kpimon := phases.get("kpimon")) is not None:
        totals = kpimon.extra["metrics"]["totals"]
        counters = ", ".join(f"{name} {totals[name]:,.0f}" for name in ("kpimon_events_total", *OTHER_TOTALS))
        lines.append(f"kpimon (followed by {COUNT_BY[kpimon.extra['counted_by']]}): {counters}")
    return lines


def report(result: dict[str, Any], phases: dict[str, Phase]) -> str:
    m, found, r = result["machine"], result["versions"], result["ratios"]
    names = {
        kind: name.format(quixstreams=found["quixstreams"], faust=found["faust-streaming"])
        for kind, name in ROW_NAMES.items()
    }
    lines = [
        f"kpimon against its peers: {result['events']:,} activity events of {result['reps']:,} reps in "
        f"{result['teams']} teams, {result['partitions']} partitions, one process each, run {result['run_id']}",
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, Kafka {m['kafka']}, "
        f"load average {load_text(result)} at start",
        "",
        *peers_table(phases, names),
        "",
    ]
    lines += kpimon_summary(phases, r)
    lines += passes_line(phases)
    produce = phases.get("produce")
    if produce is not None:
        lines.append(
            f"produce: {produce.events:,} events in {produce.seconds:.1f} s ({produce.overall_rate:,.0f} events/s)"
        )
    return "\n".join([*lines, *checks(phases, result["events"])])


# -- the two modes -----------------------------------------------------------------------------------------------------


def cpu_per_event_us(phase: Phase) -> float:
    return 1e6 * float(phase.extra["cpu_seconds"]) / phase.events


def sweep_table(runs: dict[int, Phase]) -> list[str]:
    first = next(iter(runs.values()))
    lines = [
        "| reps | events/s | rate / first | CPU us/event | CPU / first | RSS MiB | /metrics series |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for reps, phase in runs.items():
        rate, cpu = rate_ratio(phase, first), cpu_per_event_us(phase) / cpu_per_event_us(first)
        rss, series = phase.extra["peak_rss_bytes"] / 2**20, phase.extra["metrics"]["series"]
        lines.append(
            f"| {reps:,} | {phase.sustained_rate:,.0f} | {share_text(rate)} | {cpu_per_event_us(phase):,.1f} | "
            f"{cpu:.2f}x | {rss:,.0f} | {series:,} |"
        )
    return lines


def sweep_verdict(runs: dict[int, Phase], sizes: list[int]) -> str:
    """The largest roster's rate against the smallest's, and the issue's target."""
    smallest, largest = runs[sizes[0]], runs[sizes[-1]]
    if (ratio := rate_ratio(largest, smallest)) is None:
        return "the smallest roster's run was too short to measure a rate"
    change = ratio - 1
    verdict = "within" if abs(change) <= SWEEP_TARGET else "NOT within"
    cpu = cpu_per_event_us(largest) / cpu_per_event_us(smallest)
    return (
        f"rate with {sizes[-1]:,} reps = {1 + change:.1%} of the rate with {sizes[0]:,} reps ({change:+.1%}): "
        f"{verdict} the issue's {SWEEP_TARGET:.0%}; CPU per event {cpu:.2f}x"
    )


def sweep_report(result: dict[str, Any], runs: dict[int, Phase]) -> str:
    """The sweep's header, its table and the verdict."""
    sizes = list(runs)
    return "\n".join(
        [
            f"kpimon worker by roster size: {result['events']:,} activity events each, {result['teams']} teams, "
            f"{result['partitions']} partitions, run {result['run_id']}, load average {load_text(result)} at start",
            "",
            *sweep_table(runs),
            "",
            sweep_verdict(runs, sizes),
        ]
    )


# -- scale-out ---------------------------------------------------------------------------------------------------------


def scale_out_report(result: dict[str, Any], one: Phase, many: Phase, counted: list[int]) -> str:
    """One worker against several in one group, on the same events: the rates, CPU and the exact totals."""
    workers, events = int(many.extra["workers"]), result["events"]
    speedup = many.sustained_rate / one.sustained_rate if one.sustained_rate else 0.0
    exact = "exact" if sum(counted) == events else f"NOT exact (expected {events:,})"
    lines = [
        f"kpimon scale-out: {events:,} activity events of {result['reps']} reps, {result['partitions']} partitions, "
        f"run {result['run_id']}, load average {load_text(result)} at start",
        "",
        "| workers | events/s | CPU us/event | machine busy |",
        "|---:|---:|---:|---:|",
    ]
    for count, phase in ((1, one), (workers, many)):
        busy = phase.extra["machine_cpu"]["busy_percent"]
        lines.append(f"| {count} | {phase.sustained_rate:,.0f} | {cpu_per_event_us(phase):,.1f} | {busy:.0f}% |")
    return "\n".join(
        [
            *lines,
            "",
            f"{workers} workers: {speedup:.2f}x one worker's rate (target 1.6x where the machine has the cores); "
            f"kpimon_events_total per worker {' + '.join(f'{n:,}' for n in counted)} = {sum(counted):,}: {exact}",
        ]
    )
