"""The worker's web server on a real worker: HTTPS, /metrics and /kpis behind a token or basic auth, no Faust views.

One worker with KPIMON_WEB_AUTH_TOKEN_FILE, basic auth and KPIMON_WEB_TLS_* (certificates
made by the test): "/" (the health check) is open, the data pages answer a bare 401 without
the credentials, Faust's /table and /router views are 404 even with them, the server
listens on 127.0.0.1 only, and neither secret reaches the worker's log.
"""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.certificates import make_pki
from tests.integration.support import WorkerProcess

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

    for path in ("/table/", "/table/seen-v5/", "/router/", "/router/seen-v5/get/", "/graph/", "/assignment/"):
        assert get(base + path, client, bearer)[0] == 404, path

    with pytest.raises((urllib.error.URLError, ConnectionError)):  # HTTPS only
        urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/", timeout=5)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{base}/", timeout=5, context=ssl.create_default_context())

    assert listening_addresses(worker.port) == {"0100007F"}  # 127.0.0.1, nothing else
    log = worker.log_path.read_text()
    assert TOKEN not in log and PASSWORD not in log
