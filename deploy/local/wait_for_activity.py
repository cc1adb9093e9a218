"""Wait until a kpimon worker's /metrics shows today's activity per rep, and print it.

Used by `make demo`; also handy by hand:
    python deploy/local/wait_for_activity.py --port 6066 --timeout 60
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def rep_calls_today(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.labels["rep"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "kpimon_calls"
        for sample in family.samples
        if sample.labels.get("scope") == "rep" and sample.labels.get("window") == "today"
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=6066, help="the worker's web port (default 6066)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait (default 60)")
    args = parser.parse_args()
    started = time.monotonic()
    while time.monotonic() - started < args.timeout:
        try:
            calls = rep_calls_today(args.port)
        except OSError:
            calls = {}
        if calls and any(calls.values()):
            elapsed = time.monotonic() - started
            print(f"activity per rep on /metrics after {elapsed:.0f} s; calls today:")
            for rep, value in sorted(calls.items()):
                print(f"  {rep:<14} {value:>5.0f}")
            return 0
        print(f"waiting for the worker and the first events ({time.monotonic() - started:.0f} s)...", flush=True)
        time.sleep(3)
    print(f"no per-rep activity on /metrics after {args.timeout:.0f} s: see .local-stack/logs/", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
