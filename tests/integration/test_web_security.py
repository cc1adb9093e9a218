"""The worker's web server on a real worker: HTTPS, /metrics and /kpis behind a token or basic auth, no Faust views.

One worker with KPIMON_WEB_AUTH_TOKEN_FILE, basic auth and KPIMON_WEB_TLS_* (certificates
made by the test): "/" (the health check) is open, the data pages answer a bare 401 without
the credentials, Faust's /table and /router views are 404 even with them, the server
listens on 127.0.0.1 only, and neither secret reaches the worker's log. A real Prometheus
with the kpimon job of deploy/prometheus/prometheus.yml (its token file, plus HTTPS) scrapes
it; the same job with another token is refused.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import yaml

from streams.worker.app import STATE_VERSION
from tests.certificates import make_pki
from tests.integration.support import REPO, WorkerProcess, free_port, wait_until
from tests.integration.test_prometheus_scrape import prometheus_binary

TOKEN = "tok-7d1e0c5a9b"
USER, PASSWORD = "prometheus", "pw-4b8f21"


def get(url: str, context: ssl.SSLContext, authorization: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture
def secured_worker(tmp_path: Path, make_worker: Callable[..., WorkerProcess]) -> tuple[WorkerProcess, ssl.SSLContext]:
    pki = make_pki(tmp_path / "pki")
    (tmp_path / "ca.pem").write_bytes(pki.ca.read_bytes())
    (tmp_path / "token").write_text(TOKEN + "\n")
    client = ssl.create_default_context(cafile=str(pki.ca))
    worker = make_worker(
        tls=client,
        KPIMON_WEB_AUTH_TOKEN_FILE=str(tmp_path / "token"),
        KPIMON_WEB_AUTH_USERNAME=USER,
        KPIMON_WEB_AUTH_PASSWORD=PASSWORD,
        KPIMON_WEB_TLS_CERTFILE=str(pki.server_cert),
        KPIMON_WEB_TLS_KEYFILE=str(pki.server_key),
    )
    worker.start()
    return worker, client


def test_data_pages_need_the_credentials_and_faust_views_are_gone(
    secured_worker: tuple[WorkerProcess, ssl.SSLContext],
) -> None:
    worker, client = secured_worker
    base = f"https://127.0.0.1:{worker.port}"
    bearer = f"Bearer {TOKEN}"
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    status, _, body = get(f"{base}/", client)
    assert (status, orjson.loads(body)) == (200, {"status": "OK"})  # the health check stays open
    wait_until(
        lambda: get(f"{base}/metrics", client, bearer)[0] != 503,  # 503 until the tables are restored
        timeout=60,
        message="/metrics served once the worker's tables are restored",
    )

    for path in ("/metrics", "/kpis/months"):
        for refused in (None, f"Bearer {TOKEN}-", "Basic " + base64.b64encode(f"{USER}:x".encode()).decode()):
            status, headers, body = get(base + path, client, refused)
            assert (status, body) == (401, b"401 Unauthorized\n"), (path, refused)
            assert headers["WWW-Authenticate"] == 'Basic realm="kpimon"'
        for accepted in (bearer, basic):
            status, headers, body = get(base + path, client, accepted)
            assert status == 200, (path, accepted)
    assert b"kpimon_events_total" in get(f"{base}/metrics", client, bearer)[2]
    assert isinstance(orjson.loads(get(f"{base}/kpis/months", client, basic)[2]), dict | list)

    seen = f"seen-{STATE_VERSION}"  # the dedup table's name
    for path in ("/table/", f"/table/{seen}/", "/router/", f"/router/{seen}/get/", "/graph/", "/assignment/"):
        assert get(base + path, client, bearer)[0] == 404, path

    with pytest.raises((urllib.error.URLError, ConnectionError)):  # HTTPS only
        urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/", timeout=5)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{base}/", timeout=5, context=ssl.create_default_context())

    assert listening_addresses(worker.port) == {"0100007F"}  # 127.0.0.1, nothing else
    log = worker.log_path.read_text()
    assert TOKEN not in log and PASSWORD not in log


def prometheus_scraping(tmp_path: Path, worker_port: int, port: int) -> Path:
    """The kpimon job of deploy/prometheus/prometheus.yml (its token from a file), over HTTPS, and the same job with
    another token; every second, no rules."""
    deployed = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    (job,) = [scrape for scrape in deployed["scrape_configs"] if scrape["job_name"] == "kpimon"]
    (tmp_path / "kpimon_metrics_token").write_text(TOKEN + "\n")
    (tmp_path / "wrong_token").write_text("not-" + TOKEN + "\n")
    job["authorization"]["credentials_file"] = str(tmp_path / "kpimon_metrics_token")
    job |= {"scheme": "https", "tls_config": {"ca_file": str(tmp_path / "ca.pem")}, "scrape_interval": "1s"}
    job |= {"scrape_timeout": "1s", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]}
    wrong = {**job, "job_name": "kpimon-wrong-token"}
    wrong["authorization"] = {**job["authorization"], "credentials_file": str(tmp_path / "wrong_token")}
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job, wrong]}))
    return config


def test_prometheus_scrapes_with_the_deployed_job_and_is_refused_with_another_token(
    secured_worker: tuple[WorkerProcess, ssl.SSLContext], tmp_path: Path
) -> None:
    worker, _ = secured_worker
    port = free_port()
    config = prometheus_scraping(tmp_path, worker.port, port)
    with (tmp_path / "prometheus.log").open("wb") as log:
        prometheus = subprocess.Popen(
            [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def targets() -> dict[str, dict[str, str]]:
            url = f"http://127.0.0.1:{port}/api/v1/targets?" + urllib.parse.urlencode({"state": "active"})
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    active = json.load(response)["data"]["activeTargets"]
            except OSError:
                return {}
            return {target["labels"]["job"]: target for target in active if target["health"] != "unknown"}

        wait_until(lambda: len(targets()) == 2, timeout=30, message=lambda: f"both jobs scraped: {targets()}")
        time.sleep(1.5)
        scraped = targets()
        assert scraped["kpimon"]["health"] == "up", scraped["kpimon"]
        assert scraped["kpimon-wrong-token"]["health"] == "down"
        assert "401" in scraped["kpimon-wrong-token"]["lastError"]
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
