"""A real ``kpimon gateway`` process, a local stand-in for HubSpot's CRM API, and signed webhook requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.integration.support import REPO, WorkerProcess

HUBSPOT_SECRET = "test-client-secret-7f3a"
HUBSPOT_TOKEN = "test-access-token-51bd"
SAMPLES = REPO / "deploy" / "gateway" / "samples"


@dataclass
class GatewayProcess(WorkerProcess):
    """``kpimon gateway`` in its own process; ``kill()`` (SIGKILL) and ``stop()`` as for a worker."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, ready: bool = True) -> None:
        env = {**os.environ, **self.env, "KPIMON_GATEWAY_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.tools.cli", "gateway"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}; see {self.log_path}")
            status, _, _ = request("GET", f"{self.url}/readyz" if ready else f"{self.url}/healthz")
            if status == 200:
                return
            time.sleep(0.3)
        raise TimeoutError(f"gateway not ready within {timeout} s; see {self.log_path}")


def request(
    method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); status 0 when nothing answers."""
    prepared = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, {}, b""


def hubspot_v3_headers(url: str, body: bytes, secret: str = HUBSPOT_SECRET, at_ms: int | None = None) -> dict[str, str]:
    """Headers HubSpot sends, signed as its docs say: base64(HMAC-SHA256(secret, method + URI + body + timestamp))."""
    timestamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
    source = b"POST" + url.encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp,
    }


def post_hubspot(gateway: GatewayProcess, body: bytes, **signing: Any) -> tuple[int, dict[str, str], bytes]:
    url = f"{gateway.url}/webhooks/hubspot"
    return request("POST", url, body, hubspot_v3_headers(url, body, **signing))


def load_samples(source: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((SAMPLES / source).glob("*.json"))]
