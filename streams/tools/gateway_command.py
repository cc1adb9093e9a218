"""``kpimon gateway`` (serve webhooks) and ``kpimon gateway check MAPPING SAMPLES``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson

from schemas.config import KpimonConfig, load_config
from streams.gateway.mapping import PayloadMapper, load_gateway_mapping
from streams.gateway.run import run_gateway
from streams.gateway.samples import SampleError, load_sample, map_sample, sample_files
from streams.gateway.settings import GatewaySettings
from streams.gateway.sources import SourceSetupError
from streams.worker.acceptance import Acceptance
from streams.worker.settings import Settings

GATEWAY_DESCRIPTION = """\
Receive webhooks from HubSpot, Pipedrive, Salesforce (outbound messages) and Segment-compatible
trackers, map them to
kpimon events (deploy/gateway/mappings/<source>.yaml) and produce them to Kafka. A request
is answered 2xx only after Kafka acknowledged all its events; ids come from the source's own
ids, so a retried delivery is counted once. Unmappable records go to the dead-letter topic.

Routes: POST /webhooks/hubspot, /webhooks/pipedrive, /webhooks/salesforce, /webhooks/salesforce-relay,
/v1/track|page|identify|batch (Segment);
GET /metrics, /healthz, /readyz. A source is served when its credentials are set:
  KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET (and _HUBSPOT_ACCESS_TOKEN for the mapping's fetch)
  KPIMON_GATEWAY_SEGMENT_WRITE_KEYS   (comma-separated)
  KPIMON_GATEWAY_PIPEDRIVE_USER, KPIMON_GATEWAY_PIPEDRIVE_PASSWORD
  KPIMON_GATEWAY_SALESFORCE_ORGANIZATION_IDS (comma-separated)
  KPIMON_GATEWAY_SALESFORCE_RELAY_USER, KPIMON_GATEWAY_SALESFORCE_RELAY_PASSWORD (change events)
Other settings: KPIMON_GATEWAY_HOST (127.0.0.1), _PORT (8088), _MAPPINGS_DIR, _MAX_BODY_BYTES,
_RATE_PER_SECOND, _RATE_BURST, _PUBLIC_URL; Kafka and topics from KPIMON_*. See docs/gateway.md.

Examples: kpimon gateway --config deploy/examples/kpimon.yaml
          kpimon gateway check deploy/gateway/mappings/hubspot.yaml deploy/gateway/samples/hubspot
"""


def add_gateway_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gateway = commands.add_parser(
        "gateway",
        help="receive CRM and tracking webhooks and produce them as events (check: test a mapping)",
        description=GATEWAY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gateway.add_argument("--config", type=Path, help="config YAML with currency rates (default: KPIMON_CONFIG_FILE)")
    gateway.add_argument("--port", type=int, help="HTTP port (default: KPIMON_GATEWAY_PORT or 8088)")
    gateway.add_argument("--host", help="address to listen on (default: KPIMON_GATEWAY_HOST or 127.0.0.1)")
    gateway.add_argument("--bootstrap-servers", help="Kafka host:port (default 127.0.0.1:9092)")
    gateway.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    gateway.set_defaults(run=serve)
    actions = gateway.add_subparsers(dest="gateway_command", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="map recorded sample requests with a mapping and compare with their expected events",
        description="Check a gateway mapping and map each sample request (a JSON file: path, body, crm_objects, "
        "expect; see deploy/gateway/samples/) as the gateway would, without Kafka or network. Prints each "
        "sample's events and dead letters; exit status 1 when a sample's events differ from its expect or a "
        "record is dead-lettered unexpectedly, 2 when the mapping is invalid. Example: kpimon gateway check "
        "deploy/gateway/mappings/hubspot.yaml deploy/gateway/samples/hubspot",
    )
    check.add_argument("mapping", type=Path, help="the mapping YAML file")
    check.add_argument("samples", type=Path, help="a sample JSON file, or a folder of them")
    check.add_argument("--config", type=Path, help="config YAML with the currency rates (default: any currency)")
    check.add_argument("--quiet", "-q", action="store_true", help="print only the summary lines and the problems")
    check.set_defaults(run=check_samples)


def _config(path: Path | None) -> KpimonConfig:
    return load_config(path) if path else KpimonConfig()


def _settings(args: argparse.Namespace) -> Settings:
    """The worker's settings (Kafka, topics, event checks), with the flags given."""
    overrides = {"bootstrap_servers": getattr(args, "bootstrap_servers", None), "config_file": args.config}
    return Settings(**{name: value for name, value in overrides.items() if value is not None})


def serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    gateway_overrides = {"port": args.port, "host": args.host}
    gateway_settings = GatewaySettings(**{name: value for name, value in gateway_overrides.items() if value})
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    config = _config(settings.config_file)
    try:
        asyncio.run(run_gateway(settings, gateway_settings, config))
    except SourceSetupError as exc:
        print(f"kpimon: {exc}", file=sys.stderr)
        return 2
    return 0


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def check_samples(args: argparse.Namespace) -> int:
    mapping = load_gateway_mapping(args.mapping)
    print(f"{args.mapping}: ok ({mapping.format} mapping, {len(mapping.events)} event specs)")
    checks = Acceptance.of(_settings(args), _config(args.config))
    if args.config is None:
        checks = replace(checks, known_currencies=None)
    mapper = PayloadMapper(mapping)
    failed = 0
    try:
        files = sample_files(args.samples)
        for file in files:
            outcome = map_sample(mapper, load_sample(file), checks, time.time())
            types = Counter(event["type"] for event in outcome.events)
            reasons = Counter(letter.reason for letter in outcome.translation.dead_letters)
            print(
                f"{file.name}: {'ok' if not outcome.problems else 'FAILED'}: {_count(len(outcome.events), 'event')}"
                f"{' (' + ', '.join(f'{kind} {count}' for kind, count in types.items()) + ')' if types else ''}, "
                f"{outcome.translation.skipped} ignored, {_count(len(outcome.translation.dead_letters), 'dead letter')}"
                f"{' (' + ', '.join(f'{kind} {count}' for kind, count in reasons.items()) + ')' if reasons else ''}"
            )
            if not args.quiet:
                for event in outcome.events:
                    print(f"  {orjson.dumps(event).decode()}")
            for problem in outcome.problems:
                print(f"  problem: {problem}")
            failed += bool(outcome.problems)
    except SampleError as exc:
        print(f"kpimon: {exc}", file=sys.stderr)
        return 2
    print(f"checked {_count(len(files), 'sample')}: {len(files) - failed} ok, {failed} failed")
    return 1 if failed else 0
