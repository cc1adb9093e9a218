"""docker-compose.yml stays consistent with the local runner, the settings and the Prometheus config."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.config import load_config
from streams.gateway.settings import GatewaySettings
from streams.worker.kafka_access import KafkaSecurity
from streams.worker.settings import Settings
from streams.worker.web_access import WebSecurity

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
LOCAL_RUNNER = REPO / "deploy/local/kpimon-local"
PROMETHEUS = REPO / "deploy/prometheus/prometheus.yml"
PROMETHEUS_LOCAL = REPO / "deploy/prometheus/prometheus.local.yml"
GRAFANA_PROVISIONING = REPO / "deploy/grafana/provisioning"
WORKER_JOB = "kpimon"
# ${NAME:-default} (or ${NAME-default}) in a compose value: the default applies when NAME is unset.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")
# ${NAME:?message}: compose refuses to start while NAME is unset or empty, and prints the message.
REQUIRED = re.compile(r"^\$\{(?P<name>\w+):\?(?P<message>[^}]+)\}$")
# The settings objects and the prefix of their variables (nested ones first: KPIMON_WEB_PORT is Settings').
SETTINGS_PREFIXES = (
    ("KPIMON_KAFKA_", KafkaSecurity),
    ("KPIMON_WEB_", WebSecurity),
    ("KPIMON_GATEWAY_", GatewaySettings),
    ("KPIMON_", Settings),
)


@pytest.fixture(autouse=True)
def _no_kpimon_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are computed from the compose file only, not from this shell's KPIMON_* variables."""
    for name in list(os.environ):
        if name.startswith("KPIMON_"):
            monkeypatch.delenv(name)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)  # type: ignore[no-any-return]


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command") or []
    return value.split() if isinstance(value, str) else [str(part) for part in value]


def is_kpimon(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("kpimon:")


def worker_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services(compose).items()
        if is_kpimon(service) and command(service)[:1] == ["worker"]
    }


def setting_names() -> set[str]:
    """Every KPIMON_* variable kpimon reads: Settings' fields and those of its nested security settings."""
    return {f"{prefix}{name.upper()}" for prefix, model in SETTINGS_PREFIXES for name in model.model_fields}


def settings_of(service: dict[str, Any]) -> Settings:
    """The Settings a kpimon container starts with: its KPIMON_* variables over the defaults."""
    fields: dict[type, dict[str, str]] = {}
    for key, value in environment(service).items():
        for prefix, model in SETTINGS_PREFIXES:
            name = key.removeprefix(prefix).lower()
            if key.startswith(prefix) and name in model.model_fields:
                fields.setdefault(model, {})[name] = value
                break
    kafka = KafkaSecurity(**fields.get(KafkaSecurity, {}))  # type: ignore[arg-type]
    web = WebSecurity(**fields.get(WebSecurity, {}))  # type: ignore[arg-type]
    return Settings(**fields.get(Settings, {}), kafka=kafka, web=web)  # type: ignore[arg-type]


def interpolate(value: str) -> str:
    def default(match: re.Match[str]) -> str:
        if match["default"] is None:
            raise AssertionError(f"{value!r}: ${{{match['name']}}} has no default; the file must work as it is")
        return match["default"]

    return INTERPOLATION.sub(default, value)


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[Path, str]]:
    """(host path in the repository, container path) of each bind mount; named volumes are skipped."""
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume["target"]
            if volume.get("type") != "bind":
                continue
        else:
            source, target = volume.split(":")[:2]
        source = interpolate(source)
        if source.startswith((".", "/")):
            yield (REPO / source).resolve(), target


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file or folder a container path comes from, through the service's bind mounts."""
    for source, target in bind_mounts(service):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    return None


def scrape_targets(config: dict[str, Any], job: str) -> list[str]:
    (scrape,) = [scrape for scrape in config["scrape_configs"] if scrape["job_name"] == job]
    return [target for static in scrape["static_configs"] for target in static["targets"]]


def local_kafka_version() -> str:
    match = re.search(r"^readonly DEFAULT_KAFKA_VERSION=(\S+)$", LOCAL_RUNNER.read_text(encoding="utf-8"), re.M)
    assert match, f"DEFAULT_KAFKA_VERSION not found in {LOCAL_RUNNER}"
    return match.group(1)


def test_kafka_is_the_apache_image_of_the_local_runners_version_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = services(compose)["kafka"]
    assert kafka["image"] == f"apache/kafka:{local_kafka_version()}"
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "ZOOKEEPER" not in " ".join(env), "KRaft only"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "a KRaft cluster id is 16 bytes in base64"


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        image = str(service["image"])
        tag = image.rpartition(":")[2] if ":" in image.rsplit("/", maxsplit=1)[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: pin {image!r} to a release tag"


def test_every_kpimon_variable_is_a_setting(compose: dict[str, Any]) -> None:
    names = setting_names()
    used = {key for service in services(compose).values() for key in environment(service) if key.startswith("KPIMON_")}
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    used |= set(re.findall(r"\b(KPIMON_[A-Z_]+)=", dockerfile))
    assert used, "docker-compose.yml and the Dockerfile configure kpimon through KPIMON_* variables"
    assert used <= names, f"not settings of streams/worker/settings.py: {sorted(used - names)}"
    for service in services(compose).values():
        if is_kpimon(service):
            settings_of(service)  # every value is valid for its setting


def test_two_workers_share_one_consumer_group(compose: dict[str, Any]) -> None:
    workers = worker_services(compose)
    assert len(workers) >= 2, "two workers show how partitions are shared"
    settings = [settings_of(service) for service in workers.values()]
    assert len({s.app_id for s in settings}) == 1, "one app id: one consumer group"
    assert len({(s.crm_topic, s.marketing_topic, s.partitions) for s in settings}) == 1


def test_kpimon_containers_reach_kafka_on_its_listener(compose: dict[str, Any]) -> None:
    kafka_env = environment(services(compose)["kafka"])
    advertised = dict(
        reversed(listener.split("://", 1)) for listener in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    default_port = Settings().bootstrap_servers.rsplit(":", 1)[1]
    for name, service in services(compose).items():
        if is_kpimon(service):
            server = settings_of(service).bootstrap_servers
            assert server in advertised, f"{name}: {server} is not an advertised listener of kafka"
            assert server == f"kafka:{default_port}", f"{name}: Kafka's port differs from the settings' default"
            assert service["depends_on"]["kafka"]["condition"] == "service_healthy", name


def test_workers_serve_metrics_where_prometheus_scrapes(compose: dict[str, Any]) -> None:
    workers = worker_services(compose)
    expected = []
    for name, service in workers.items():
        settings = settings_of(service)
        assert settings.web_port == Settings().web_port, f"{name}: keep the default web port"
        assert settings.web_host == "0.0.0.0", f"{name}: /metrics must be reachable from the other containers"
        assert "ports" not in service, f"{name}: Prometheus scrapes inside the compose network; publish nothing"
        healthcheck = " ".join(service["healthcheck"]["test"])
        assert f"'http://127.0.0.1:{settings.web_port}/'" in healthcheck, f"{name}: the open health check, '/'"
        expected.append(f"{name}:{settings.web_port}")
    assert sorted(scrape_targets(load_yaml(PROMETHEUS), WORKER_JOB)) == sorted(expected)


def test_prometheus_sends_the_token_the_workers_require(compose: dict[str, Any]) -> None:
    (job,) = [scrape for scrape in load_yaml(PROMETHEUS)["scrape_configs"] if scrape["job_name"] == WORKER_JOB]
    assert job["authorization"]["type"] == "Bearer"
    secret = compose["secrets"]["kpimon_metrics_token"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/kpimon_metrics_token"
    assert "kpimon_metrics_token" in services(compose)["prometheus"]["secrets"]
    for name, service in worker_services(compose).items():
        required = REQUIRED.match(environment(service)["KPIMON_WEB_AUTH_TOKEN"])
        assert required, f"{name}: the token has no default: compose refuses to start without it"
        assert required["name"] == secret["environment"] == "KPIMON_METRICS_TOKEN", name
        assert ".env" in required["message"], name


def test_grafana_has_no_anonymous_access_and_no_default_password(compose: dict[str, Any]) -> None:
    env = environment(services(compose)["grafana"])
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    required = REQUIRED.match(env["GF_SECURITY_ADMIN_PASSWORD"])
    assert required and required["name"] == "GRAFANA_ADMIN_PASSWORD" and ".env" in required["message"]
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    for variable in ("GRAFANA_ADMIN_PASSWORD", "KPIMON_METRICS_TOKEN"):
        assert re.search(rf"^{variable}=$", example, re.M), f".env.example names {variable}, without a value"


def test_every_published_port_is_on_127_0_0_1(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} would be reachable from other machines"


def test_the_local_prometheus_config_is_the_compose_one_on_localhost() -> None:
    compose_config, local = load_yaml(PROMETHEUS), load_yaml(PROMETHEUS_LOCAL)
    assert local["rule_files"] == compose_config["rule_files"]
    assert local["global"] == compose_config["global"]
    jobs = {scrape["job_name"]: scrape for scrape in compose_config["scrape_configs"]}
    local_jobs = {scrape["job_name"]: scrape for scrape in local["scrape_configs"]}
    assert jobs.keys() == local_jobs.keys()
    local_only = {"static_configs", "authorization"}  # `make demo`'s worker has no token (docs/security.md)
    for job, scrape in jobs.items():
        assert {k: v for k, v in scrape.items() if k not in local_only} == {
            k: v for k, v in local_jobs[job].items() if k not in local_only
        }, job
    assert scrape_targets(local, WORKER_JOB) == [f"127.0.0.1:{Settings().web_port}"]


def test_prometheus_sends_alerts_to_the_alertmanager_service(compose: dict[str, Any]) -> None:
    alertmanager = services(compose)["alertmanager"]
    (target,) = [
        target
        for alerting in load_yaml(PROMETHEUS)["alerting"]["alertmanagers"]
        for static in alerting["static_configs"]
        for target in static["targets"]
    ]
    assert target == "alertmanager:9093"
    config = next(arg for arg in command(alertmanager) if arg.startswith("--config.file="))
    path = host_path(alertmanager, config.split("=", 1)[1])
    assert path == REPO / "deploy/alertmanager/alertmanager.yml"
    secret_path = load_yaml(path)["global"]["slack_api_url_file"]
    assert secret_path == "/run/secrets/slack_webhook_url"
    assert "slack_webhook_url" in alertmanager["secrets"]
    assert (REPO / interpolate(compose["secrets"]["slack_webhook_url"]["file"])).is_file()


def test_prometheus_loads_this_repositorys_config_and_rules(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    config = next(arg for arg in command(prometheus) if arg.startswith("--config.file="))
    assert host_path(prometheus, config.split("=", 1)[1]) == PROMETHEUS
    for pattern in load_yaml(PROMETHEUS)["rule_files"]:
        container_dir = Path("/etc/prometheus") / Path(pattern).parent
        host_dir = host_path(prometheus, str(container_dir))
        assert host_dir is not None and list(host_dir.glob(Path(pattern).name)), pattern


def test_bind_mounts_and_config_files_exist_in_the_repository(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for source, target in bind_mounts(service):
            assert source.exists(), f"{name}: {source} (mounted at {target}) is not in the repository"
            assert REPO in source.parents, f"{name}: {source} is outside the repository"
        if is_kpimon(service):
            config_file = settings_of(service).config_file
            assert config_file is not None, f"{name}: KPIMON_CONFIG_FILE"
            path = host_path(service, str(config_file))
            assert path is not None and path.is_file(), f"{name}: {config_file} is not mounted from the repository"
            load_config(path)  # a valid teams/reps file


def test_grafana_is_provisioned_from_the_repository(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    provisioning = host_path(grafana, environment(grafana)["GF_PATHS_PROVISIONING"])
    assert provisioning == GRAFANA_PROVISIONING
    datasources = load_yaml(GRAFANA_PROVISIONING / "datasources/kpimon.yml")["datasources"]
    (prometheus,) = [source for source in datasources if source["type"] == "prometheus"]
    assert prometheus["url"] == "http://prometheus:9090" and prometheus["isDefault"]
    (provider,) = load_yaml(GRAFANA_PROVISIONING / "dashboards/kpimon.yml")["providers"]
    assert host_path(grafana, provider["options"]["path"]) == REPO / "deploy/grafana/dashboards"


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name, service in all_services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, condition in depends_on.items():
            assert dependency in all_services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] in {"service_healthy", "service_started"}, name
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in all_services[dependency], f"{dependency} has no health check"
        if "profiles" not in service:
            assert "healthcheck" in service, f"{name}: every long-running service has a health check"


def test_the_simulator_runs_only_in_the_demo_profile_and_the_gateway_in_its_own(compose: dict[str, Any]) -> None:
    simulator, gateway = services(compose)["simulator"], services(compose)["gateway"]
    assert simulator["profiles"] == ["demo"]
    assert command(simulator)[0] == "simulate"
    assert gateway["profiles"] == ["gateway"] and command(gateway)[0] == "gateway"
    others = [service for name, service in services(compose).items() if name not in ("simulator", "gateway")]
    assert all("profiles" not in service for service in others)


def test_the_gateway_serves_its_mappings_and_takes_secrets_from_the_host(compose: dict[str, Any]) -> None:
    gateway = services(compose)["gateway"]
    env = environment(gateway)
    settings = GatewaySettings(
        **{  # type: ignore[arg-type]
            key.removeprefix("KPIMON_GATEWAY_").lower(): interpolate(value)
            for key, value in env.items()
            if key.startswith("KPIMON_GATEWAY_") and interpolate(value)
        }
    )
    assert settings.host == "0.0.0.0" and f"127.0.0.1:{settings.port}:{settings.port}" in gateway["ports"]
    mappings = host_path(gateway, str(settings.mappings_dir))
    assert mappings is not None and (mappings / "hubspot.yaml").is_file()
    secrets = [key for key in env if key.endswith(("_SECRET", "_TOKEN", "_KEYS", "_PASSWORD", "_USER"))]
    assert secrets and all(interpolate(env[key]) == "" for key in secrets), "no secret has a default in the file"


def test_the_image_runs_kpimon_as_an_unprivileged_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert bases and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", bases[0]), bases
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["kpimon"\]$', dockerfile, re.M)
    assert "pip install --no-cache-dir ." in dockerfile
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore is an allowlist: ignore everything, then name what the build needs"
    for needed in ("pyproject.toml", "README.md", "schemas/", "streams/", "alerts/"):
        assert f"!{needed}" in patterns, needed
