"""The ``kpimon`` command line: worker, simulate, replay, rebuild, board, schema, check, gateway, docs, dashboards."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import orjson
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from schemas.catalog import Catalog, load_catalog
from schemas.config import KpimonConfig, load_config
from schemas.events import event_json_schema
from schemas.yaml_source import ConfigFileError
from streams.tools.gateway_command import add_gateway_parser
from streams.tools.simulation.history import DEFAULT_HISTORY_CALLS
from streams.worker.kafka_access import KafkaAccessError
from streams.worker.kafka_clients import explain_kafka_failure
from streams.worker.settings import Settings
from streams.worker.topics import TopicLayoutError
from streams.worker.web_access import WebAccessError

SIMULATE_DESCRIPTION = (
    "\n\n".join(
        textwrap.fill(paragraph, 88)
        for paragraph in (
            "Produce a realistic, deterministic stream of CRM and marketing events in real time: reps working their "
            "teams' business hours, a lead -> MQL -> opportunity -> won/lost funnel, campaigns and web sessions. "
            "Progress every 5 s.",
            "With --history, first produce the past period's events as fast as the broker takes them, with their real "
            "event times and a realistic volume (--history-calls per rep and working day, the other kinds in "
            "proportion: about 1,300 events a day for 12 reps), so that every KPI has values from the first minute: "
            "leads from past weeks convert, deals opened weeks ago close in the last days and today, campaigns have "
            "spend and returns. Then go on live from now; that world's deals keep closing when they are due.",
            "Running it twice counts nothing twice. The history is a pure function of the seed and the time: every run "
            "makes the same events with the same ids. The worker remembers event ids for 8 days of event time only, "
            "so a second run does not produce again what the topics already hold: it reads the newest event of its "
            "seed on the topics and produces the history from just after it ('history already produced up to ...'). "
            "Live events carry the moment their run started in their ids.",
        )
    )
    + "\n\nExamples: kpimon simulate --rate 200 --duration 60\n          kpimon simulate --history 35d"
)

EPILOG = """\
Settings come from KPIMON_* environment variables (KPIMON_BOOTSTRAP_SERVERS,
KPIMON_PARTITIONS, KPIMON_WEB_PORT, ...); the flags below override them.
Kafka SASL/TLS: KPIMON_KAFKA_SECURITY_PROTOCOL, KPIMON_KAFKA_SASL_*, KPIMON_KAFKA_SSL_*;
the worker's web server: KPIMON_WEB_HOST, KPIMON_WEB_AUTH_*, KPIMON_WEB_TLS_* (docs/security.md).
Docs: README.md, docs/metrics.md, docs/architecture.md, docs/security.md.
"""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: value
        for name, value in (
            ("config_file", getattr(args, "config", None)),
            ("catalog_file", getattr(args, "catalog", None)),
            ("rules_file", getattr(args, "rules", None)),
            ("web_port", getattr(args, "web_port", None)),
            ("bootstrap_servers", getattr(args, "bootstrap_servers", None)),
        )
        if value is not None
    }
    return Settings(**overrides)


def _load(settings: Settings) -> tuple[KpimonConfig, Catalog]:
    catalog = load_catalog(settings.catalog_file)
    config = load_config(settings.config_file, catalog) if settings.config_file else KpimonConfig()
    return config, catalog


def _worker(args: argparse.Namespace) -> int:
    from alerts.rules import load_rules
    from streams.worker.run import DataDirInUse, run_worker

    settings = _settings(args)
    config, catalog = _load(settings)
    rules = load_rules(settings.rules_file, catalog, config) if settings.rules_file else None
    try:
        run_worker(settings, config, catalog, args.loglevel, rules)
    except DataDirInUse as exc:
        print(f"kpimon: {exc}", file=sys.stderr)
        return 3
    return 0


def _duration(text: str) -> float:
    """An argparse type: ``35d``, ``12h``, ``90m``, ``30s`` or seconds, as in rules files."""
    from alerts.durations import DurationError, parse_duration

    try:
        return parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return value


def _simulate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config, _ = _load(settings)
    try:
        produced = _run_simulation(settings, config, args)
    except TimeoutError as exc:
        print(f"kpimon: {exc}: is Kafka overloaded? see its log (deploy/local/kpimon-local logs)", file=sys.stderr)
        return 3
    print(f"simulate: done, {produced:,} events produced", flush=True)
    return 0


def _run_simulation(settings: Settings, config: KpimonConfig, args: argparse.Namespace) -> int:
    from streams.tools.simulation.producer import run_simulation

    return asyncio.run(
        run_simulation(
            settings,
            config,
            rate=args.rate,
            seed=args.seed,
            duration=args.duration,
            total=args.total,
            progress=lambda line: print(line, flush=True),
            history_seconds=args.history,
            history_calls=args.history_calls,
        )
    )


def _replay(args: argparse.Namespace) -> int:
    from streams.tools.replay import run_replay
    from streams.tools.replay_source import ReplayInputError

    settings = _settings(args)
    config, _ = _load(settings)
    try:
        summary = asyncio.run(
            run_replay(
                settings,
                config,
                args.file,
                args.mapping,
                rate=args.rate,
                progress=lambda line: print(line, flush=True),
                dry_run=args.dry_run,
            )
        )
    except ReplayInputError as exc:
        print(f"kpimon: {exc}", file=sys.stderr)
        return 2
    return 1 if summary.bad_rows else 0


def _rebuild(args: argparse.Namespace) -> int:
    from streams.tools.rebuild import RebuildRefused, rebuild
    from streams.worker.run import DataDirInUse

    settings = _settings(args)
    try:
        asyncio.run(
            rebuild(settings, confirmed=args.yes, local_only=args.local_only, say=lambda line: print(line, flush=True))
        )
    except (RebuildRefused, DataDirInUse) as exc:
        print(f"kpimon rebuild: {exc}", file=sys.stderr)
        return 2
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = orjson.dumps(event_json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"schema: wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _check(args: argparse.Namespace) -> int:
    from alerts.rules import load_rules

    catalog = load_catalog(Path(args.catalog) if args.catalog else None)
    config = load_config(Path(args.file), catalog)
    print(
        f"{args.file}: ok ({len(config.teams)} teams, {len(config.reps)} reps, {len(config.goals)} goals, "
        f"KPI sets {', '.join(config.all_kpi_sets())}; "
        f"catalog of {len(catalog.kpis)} KPIs over {len(catalog.counters)} counters)"
    )
    _print_label_bounds(config, catalog, _settings(args).partitions)
    if args.rules:
        rules = load_rules(Path(args.rules), catalog, config)
        print(f"{args.rules}: ok ({len(rules.rules)} rules, {len(rules.routes)} routes, {len(rules.digests)} digests)")
    return 0


def _print_label_bounds(config: KpimonConfig, catalog: Catalog, partitions: int) -> None:
    """The most label values and KPI series the config allows (docs/architecture.md, "Label values")."""
    from streams.core.labels import LabelPolicy, most_scopes, most_values

    policy = LabelPolicy.from_config(config)
    scopes = most_scopes(policy, partitions)
    per_scope = {kind: sum(len(kpi.windows) for kpi in catalog.kpis if kind in kpi.scopes) for kind in scopes}
    series = sum(scopes[kind] * per_scope[kind] for kind in scopes)
    reasons = most_values(policy, "lost_reason", partitions)
    stages = most_values(policy, "stage", partitions)
    print(
        f"labels with {partitions} partitions (KPIMON_PARTITIONS), at most: {scopes['team']:,} teams, "
        f"{scopes['rep']:,} rep scopes, {scopes['channel']:,} channels, {scopes['campaign']:,} campaigns, "
        f"{reasons:,} loss reasons, {stages:,} deal stages; {series:,} KPI series on /metrics at worst"
    )


def _docs(args: argparse.Namespace) -> int:
    from streams.tools.reference_docs import reference_docs

    stale = []
    for path, text in reference_docs(load_catalog()).items():
        target = Path(args.root) / path
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"docs: wrote {path}")
    if stale:
        print(f"docs: stale, run `kpimon docs`: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


def _dashboards(args: argparse.Namespace) -> int:
    from streams.tools.dashboards import write_dashboards

    paths = write_dashboards(Path(args.root), load_catalog(), check=args.check)
    if args.check:
        if paths:
            print(f"dashboards: stale, run `kpimon dashboards`: {', '.join(map(str, paths))}", file=sys.stderr)
        return 1 if paths else 0
    for path in paths:
        print(f"dashboards: wrote {path}")
    return 0


BOARD_DESCRIPTION = (
    "Serve the live wallboard: today's activity per rep, the funnel, revenue this month, deals won as they "
    "close and marketing, on http://HOST:PORT/board (all teams) and /board/<team> (one team, in its time "
    "zone). It reads the sums across all workers from Prometheus' HTTP API and pushes every change to the "
    "page within a scrape interval. Read-only. For a TV: full screen, screens rotate (?rotate=SECONDS, 0 to "
    "stop; ?screen=funnel to pin one of activity, funnel, revenue, ticker, marketing). With KPIMON_BOARD_TOKEN "
    "set (or --token-file), every URL needs ?token=<token>."
)


def _board(args: argparse.Namespace) -> int:
    import os

    from streams.board.server import BoardOptions, run_board

    settings = _settings(args)
    config, catalog = _load(settings)
    token = args.token_file.read_text(encoding="utf-8").strip() if args.token_file else None
    token = token or os.environ.get("KPIMON_BOARD_TOKEN") or None
    options = BoardOptions(
        prometheus_url=args.prometheus_url,
        job=args.job,
        rotate_seconds=args.rotate,
        stale_after_seconds=args.stale_after,
        token=token,
    )
    teams = ", ".join(f"/board/{team}" for team in config.teams) or "no teams in the config"
    print(f"board: http://{args.host}:{args.port}/board (teams: {teams}); reading {args.prometheus_url}", flush=True)
    run_board(config, catalog, options, args.host, args.port)
    return 0


def _add_board_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    board = commands.add_parser(
        "board",
        help="serve the live wallboard (reads Prometheus)",
        description=textwrap.fill(BOARD_DESCRIPTION, 88),
        epilog="Example: kpimon board --config deploy/examples/kpimon.yaml --prometheus-url http://127.0.0.1:9090\n"
        "Docs: docs/board.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    board.add_argument("--config", type=Path, help="teams/reps YAML file (default: KPIMON_CONFIG_FILE)")
    board.add_argument(
        "--prometheus-url",
        default="http://127.0.0.1:9090",
        help="Prometheus that scrapes the workers (default %(default)s)",
    )
    board.add_argument("--job", default="kpimon", help="Prometheus job of the workers (default %(default)s)")
    board.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s; 0.0.0.0 for a LAN)"
    )
    board.add_argument("--port", type=int, default=6070, help="HTTP port (default %(default)s)")
    board.add_argument("--rotate", type=_duration, default=15.0, help="seconds per screen on a TV (default 15s)")
    board.add_argument(
        "--stale-after", type=_duration, default=10.0, help="a tile older than this shows as stale (default 10s)"
    )
    board.add_argument("--token-file", type=Path, help="file holding the token TVs put in the URL (?token=...)")
    board.set_defaults(run=_board)


def _add_rebuild_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rebuild = commands.add_parser(
        "rebuild",
        help="count every retained event again, after the state was lost (the worker says when)",
        description="A worker refuses to run when its consumer group has committed offsets past what its tables "
        "hold: the changelog topics were deleted or truncated, or an upgrade started new tables (STATE_VERSION). "
        "With every worker of the app (KPIMON_APP_ID) stopped, rebuild reports what the source topics still hold "
        "and, with --yes, deletes the group's committed offsets, the changelog and re-keyed topics and the local "
        "tables (KPIMON_DATA_DIR), so that the workers, started again, count every retained event from the "
        "earliest offset. Events already deleted by the topics' retention cannot be counted again; rebuild lists "
        "them. Example: kpimon rebuild (a dry run), then kpimon rebuild --yes",
    )
    rebuild.add_argument("--yes", action="store_true", help="do it (default: only report what would be done)")
    rebuild.add_argument(
        "--local-only",
        action="store_true",
        help="only delete this machine's local tables (on every other worker's machine, after a rebuild)",
    )
    rebuild.add_argument("--bootstrap-servers", help="Kafka host:port (default 127.0.0.1:9092)")
    rebuild.set_defaults(run=_rebuild)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpimon",
        description="Real-time sales and marketing KPIs from Kafka events, on Prometheus /metrics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser(
        "worker",
        help="run a stream worker (consumes events, serves /metrics)",
        description="Consume the CRM and marketing topics, keep the KPIs of the partitions this worker owns and "
        "serve them on http://HOST:PORT/metrics. Start more workers with the same KPIMON_APP_ID to share the "
        "partitions. Example: kpimon worker --config deploy/examples/kpimon.yaml",
    )
    worker.add_argument("--config", type=Path, help="teams/reps YAML file (default: KPIMON_CONFIG_FILE)")
    worker.add_argument("--catalog", type=Path, help="YAML file extending the KPI catalog")
    worker.add_argument(
        "--rules", type=Path, help="alert rules YAML file (default: KPIMON_RULES_FILE; none: no alerts)"
    )
    worker.add_argument("--web-port", type=int, help="HTTP port of /metrics (default 6066)")
    worker.add_argument("--bootstrap-servers", help="Kafka host:port (default 127.0.0.1:9092)")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(run=_worker)

    simulate = commands.add_parser(
        "simulate",
        help="produce realistic demo events to Kafka (--history 35d: weeks of the past first)",
        description=SIMULATE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--config", type=Path, help="teams/reps YAML file (default: a built-in demo roster)")
    simulate.add_argument("--rate", type=_positive, default=50.0, help="live events per second (default 50)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed; equal seeds give equal events")
    simulate.add_argument(
        "--history",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="first produce this much of the past (35d, 12h, 90m, or seconds; default 0: none), resuming after "
        "what the topics already hold of it",
    )
    simulate.add_argument(
        "--history-calls",
        type=_positive,
        default=DEFAULT_HISTORY_CALLS,
        metavar="N",
        help=f"volume of the history: calls per rep and working day; emails, meetings, leads, web sessions and "
        f"campaigns scale with it (default {DEFAULT_HISTORY_CALLS:g})",
    )
    simulate.add_argument(
        "--duration",
        type=_duration,
        metavar="DURATION",
        help="stop after this long live (60, 90s, 2h; default: run until Ctrl-C)",
    )
    simulate.add_argument("--total", type=int, help="stop after this many events (history included)")
    simulate.add_argument("--bootstrap-servers", help="Kafka host:port (default 127.0.0.1:9092)")
    simulate.set_defaults(run=_simulate)

    replay = commands.add_parser(
        "replay",
        help="backfill events from a JSONL file or a CSV export (with a mapping)",
        description="Produce events from a JSONL file of contract events, or from a CSV export with a YAML column "
        "mapping (deploy/mappings/), in event-time order with stable event ids: replaying twice is harmless. Bad "
        "rows are reported by line and skipped; the exit status is 1 when there were any. Example: kpimon replay "
        "../shared/datasets/crm-sales-opportunities/sales_pipeline.csv --mapping "
        "deploy/mappings/crm-sales-opportunities.yaml",
    )
    replay.add_argument("file", type=Path, help="a JSONL file of events, or a CSV file (needs --mapping)")
    replay.add_argument("--mapping", type=Path, help="YAML column mapping for a CSV file")
    replay.add_argument(
        "--config", type=Path, help="config YAML with the currency rates (default: KPIMON_CONFIG_FILE; USD only)"
    )
    replay.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    replay.add_argument("--dry-run", action="store_true", help="read and check only; report bad rows, produce nothing")
    replay.add_argument("--bootstrap-servers", help="Kafka host:port (default 127.0.0.1:9092)")
    replay.set_defaults(run=_replay)

    _add_rebuild_parser(commands)
    _add_board_parser(commands)

    schema = commands.add_parser("schema", help="print the JSON Schema of the event contract")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")
    schema.set_defaults(run=_schema)

    check = commands.add_parser(
        "check",
        help="validate a config file (and a catalog extension and alert rules)",
        description="Validate the config file (its teams, reps, currencies, goals and KPI sets, the goals and sets "
        "against the KPI catalog), and the catalog extension and alert rules when given, as a worker does at "
        "start: every problem is reported as file:line:column. Exit status 2 when any file is invalid. "
        "Example: kpimon check deploy/examples/kpimon.yaml --rules deploy/examples/alerts.yaml",
    )
    check.add_argument("file", help="the YAML config file (teams, reps, currency rates, goals)")
    check.add_argument("--catalog", help="a YAML file extending the KPI catalog")
    check.add_argument("--rules", help="an alert rules YAML file, checked against the catalog and the config")
    check.set_defaults(run=_check)
    add_gateway_parser(commands)
    docs = commands.add_parser("docs", help="regenerate docs/kpis.md and docs/metrics.md from the catalog")
    docs.add_argument("--check", action="store_true", help="only check that the files are current (exit 1 if not)")
    docs.add_argument("--root", default=".", help="the repository root (default: the current directory)")
    docs.set_defaults(run=_docs)
    dashboards = commands.add_parser("dashboards", help="regenerate deploy/grafana/dashboards/*.json from the catalog")
    dashboards.add_argument("--check", action="store_true", help="only check the files are current (exit 1 if not)")
    dashboards.add_argument("--root", default=".", help="the repository root (default: the current directory)")
    dashboards.set_defaults(run=_dashboards)
    return parser


def settings_problems(exc: ValidationError) -> str:
    """One line per invalid setting, without the values given (they may be passwords)."""
    prefix = {"KafkaSecurity": "KPIMON_KAFKA_", "WebSecurity": "KPIMON_WEB_"}.get(exc.title, "KPIMON_")
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        where = "_".join(str(step) for step in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {f'{prefix}{where}: ' if where else ''}{message}")
    return "\n".join(lines)


def _kafka_unreachable(exc: KafkaConnectionError, args: argparse.Namespace) -> str:
    """Why Kafka refused us when we can tell (a login, a certificate), else where to point kpimon."""
    try:
        settings = _settings(args)
        reason = asyncio.run(explain_kafka_failure(settings.bootstrap_servers, settings.kafka))
    except (ValidationError, KafkaAccessError):
        reason = None
    if reason is not None:
        return f"kpimon: cannot connect to {reason}"
    return (
        f"kpimon: cannot reach Kafka ({exc}): start it with `deploy/local/kpimon-local up` "
        "or point KPIMON_BOOTSTRAP_SERVERS at your brokers (and KPIMON_KAFKA_SECURITY_PROTOCOL at their listener)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigFileError as exc:
        print(f"kpimon: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"kpimon: invalid settings:\n{settings_problems(exc)}", file=sys.stderr)
        return 2
    except (KafkaAccessError, WebAccessError) as exc:
        print(f"kpimon: {exc}", file=sys.stderr)
        return 2
    except KafkaConnectionError as exc:
        print(_kafka_unreachable(exc, args), file=sys.stderr)
        return 3
    except TopicLayoutError as exc:
        print(f"kpimon: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
