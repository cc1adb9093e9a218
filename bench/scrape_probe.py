"""The loop-lag probe of bench/scrape.py: injected into the worker's process, and what its log says.

The probe is the worker's ``sitecustomize`` (Python imports it before anything else runs). On the
main thread's event loop it runs a 1 ms timer and logs how late it fires (``lag``), logs every
callback that holds the loop for more than 2 ms with its task and the thread's CPU time in it
(``step``), every garbage collection pause (``gc``) and, with ``--stacks``, where the main thread is
while a callback holds the loop long (``stack``). Faust's consumer runs in a thread with a loop of
its own: it is left alone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from bench.throughput import start_worker

PROBE_TIMER_SECONDS = 0.001
PROBE_LOGGED_SECONDS = 0.002  # lags and callbacks shorter than this are not logged
TARGET_STALL_SECONDS = 0.01
Span = tuple[float, float]  # wall-clock start and end

# The worker's sitecustomize (Python imports it at start): the probe, on the main thread's event loop.
PROBE = r"""
import asyncio, gc, os, sys, threading, time, traceback
out = open(os.environ["KPIMON_BENCH_PROBE_FILE"], "a", buffering=1)
TIMER, LOGGED = float(os.environ["KPIMON_BENCH_TIMER"]), float(os.environ["KPIMON_BENCH_LOGGED"])
STACKS = float(os.environ.get("KPIMON_BENCH_STACKS") or 0)
MAIN = threading.main_thread().ident
running = [0.0, 0]  # when the main loop's current callback started; how many stacks logged for it

def install(loop):
    due = [loop.time() + TIMER]
    def tick():
        now = loop.time()
        if now - due[0] > LOGGED:
            out.write(f"lag {time.time():.4f} {now - due[0]:.6f}\n")
        due[0] = now + TIMER
        loop.call_at(due[0], tick)
    loop.call_at(due[0], tick)
    run = asyncio.events.Handle._run
    def timed(handle):
        if threading.get_ident() != MAIN:
            return run(handle)
        started, cpu = running[0], _ = time.perf_counter(), time.thread_time()
        running[1] = 0
        try:
            run(handle)
        finally:
            running[0] = 0.0
        spent = time.perf_counter() - started
        if spent > LOGGED:
            cpu = time.thread_time() - cpu
            task = getattr(handle._callback, "__self__", None)
            coro = task.get_coro() if isinstance(task, asyncio.Task) else None
            name = getattr(coro, "__qualname__", None) or getattr(handle._callback, "__qualname__", "?")
            out.write(f"step {time.time():.4f} {spent:.6f} {cpu:.6f} {name}\n")
    asyncio.events.Handle._run = timed

collecting = [0.0]
def collections(phase, info):
    if threading.get_ident() != MAIN:
        return
    if phase == "start":
        collecting[0] = time.perf_counter()
    elif time.perf_counter() - collecting[0] > LOGGED:
        out.write(f"gc {time.time():.4f} {time.perf_counter() - collecting[0]:.6f} {info['generation']}\n")
gc.callbacks.append(collections)

def watchdog():  # where the main thread is while one callback holds the loop for long (--stacks)
    while True:
        time.sleep(STACKS / 4)
        started = running[0]
        if started and time.perf_counter() - started > STACKS and running[1] < 3:
            running[1] += 1
            frames = traceback.extract_stack(sys._current_frames()[MAIN])[-12:]
            where = " <- ".join(f"{f.name}:{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(frames))
            out.write(f"stack {time.time():.4f} {time.perf_counter() - started:.6f} {where}\n")
if STACKS:
    threading.Thread(target=watchdog, daemon=True).start()

run_forever = asyncio.base_events.BaseEventLoop.run_forever
def probed(self):
    if threading.get_ident() == MAIN and not getattr(self, "_bench_probed", False):
        self._bench_probed = True
        install(self)
    return run_forever(self)
asyncio.base_events.BaseEventLoop.run_forever = probed
"""
HTTP_TASKS = ("RequestHandler.start", "RequestHandler._handle_request")  # aiohttp's task of a request


def start_probed_worker(
    code: Path, env: dict[str, str], port: int, scratch: Path, stacks: float | None
) -> subprocess.Popen[bytes]:
    """``kpimon worker`` of ``code`` with the probe, loaded as ``sitecustomize`` before anything else runs."""
    probe_dir = scratch / "probe"
    probe_dir.mkdir()
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    probe_env = {
        "KPIMON_BENCH_PROBE_FILE": str(scratch / "probe.log"),
        "KPIMON_BENCH_TIMER": str(PROBE_TIMER_SECONDS),
        "KPIMON_BENCH_LOGGED": str(PROBE_LOGGED_SECONDS),
        "KPIMON_BENCH_STACKS": str(stacks or ""),
        "PYTHONPATH": os.pathsep.join([str(probe_dir), str(code)]),
    }
    return start_worker({**env, **probe_env}, port, "info", scratch / "worker.log")


def probe_figures(probe: Path, quiet: Span, spans: list[Span]) -> dict[str, Any]:
    """The loop's stalls without scrapes and overlapping them, and the longest steps of /metrics requests.

    A step is one callback holding the loop: its wall time, and the worker thread's CPU time in it
    (on a busy machine the wall time also counts the time the thread waited for a CPU or the GIL).
    Python's garbage collector stops everything while it runs, inside whatever callback allocated at
    that moment: its pauses are logged, and every figure is also given with them taken out.
    """
    phase = (spans[0][0], spans[-1][1]) if spans else (0.0, 0.0)
    records = [line.split(" ", 4) for line in probe.read_text().splitlines()]
    pauses = [(float(r[1]) - float(r[2]), float(r[1]), int(r[3])) for r in records if r[0] == "gc"]

    def overlaps(start: float, end: float, windows: list[tuple[float, float]]) -> bool:
        return any(start < w_end and end > w_start for w_start, w_end in windows)

    def collecting(start: float, end: float) -> float:
        return sum(max(0.0, min(end, g_end) - max(start, g_start)) for g_start, g_end, _ in pauses)

    figures: dict[str, Any] = {
        where: {"lag_max_s": 0.0, "lag_max_without_gc_s": 0.0, "stalls_over_10ms": 0, "steps": []}
        for where in ("quiet", "scrapes", "http")
    }
    for kind, at, seconds, *rest in records:
        end, spent = float(at), float(seconds)
        start = end - spent
        where = "quiet" if overlaps(start, end, [quiet]) else "scrapes" if overlaps(start, end, spans) else ""
        if kind == "lag" and where:
            found = figures[where]
            found["lag_max_s"] = max(found["lag_max_s"], spent)
            found["lag_max_without_gc_s"] = max(found["lag_max_without_gc_s"], spent - collecting(start, end))
            found["stalls_over_10ms"] += spent > TARGET_STALL_SECONDS
        elif kind == "step" and (where or overlaps(start, end, [phase])):
            cpu, task = float(rest[0]), rest[1] if len(rest) > 1 else "?"
            bucket = "http" if task in HTTP_TASKS else where or "scrapes"
            figures[bucket]["steps"].append((spent, cpu, max(0.0, cpu - collecting(start, end)), task))
    for found in figures.values():
        steps = found.pop("steps")
        for index, name in enumerate(("step_max_s", "step_max_cpu_s", "step_max_cpu_without_gc_s")):
            found[name] = max((step[index] for step in steps), default=0.0)
        found["longest_steps"] = [(*(round(v, 4) for v in step[:3]), step[3]) for step in sorted(steps)[-5:][::-1]]
    figures["gc"] = {
        "pauses_over_2ms": len(pauses),
        "max_s": max((end - start for start, end, _ in pauses), default=0.0),
        "full_collections": sum(1 for *_, generation in pauses if generation == 2),
    }
    return figures
