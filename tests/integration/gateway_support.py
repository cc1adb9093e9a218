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
from pathlib import Path
from typing import Any

import yaml

from tests.integration.support import REPO, WorkerProcess

HUBSPOT_SECRET = "test-client-secret-7f3a"
HUBSPOT_TOKEN = "test-access-token-51bd"
SEGMENT_WRITE_KEY = "test-write-key-93c1"
SAMPLES = REPO / "deploy" / "gateway" / "samples"
MAPPINGS = REPO / "deploy" / "gateway" / "mappings"


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


def post_segment(gateway: GatewayProcess, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """A Segment call with the write key as basic-auth user name and an empty password, as Segment's API takes it."""
    authorization = "Basic " + base64.b64encode(f"{SEGMENT_WRITE_KEY}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": authorization}
    return request("POST", f"{gateway.url}{path}", body, headers)


def load_samples(source: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((SAMPLES / source).glob("*.json"))]


def mappings_without_crm_reads(directory: Path) -> Path:
    """The shipped HubSpot and Segment mappings in ``directory``, HubSpot's without its CRM API reads (``fetch``):
    contact creations, which need none, map as they are, with no CRM API to stand in for."""
    directory.mkdir(parents=True, exist_ok=True)
    hubspot = yaml.safe_load((MAPPINGS / "hubspot.yaml").read_text())
    del hubspot["fetch"]
    (directory / "hubspot.yaml").write_text(yaml.safe_dump(hubspot))
    (directory / "segment.yaml").write_text((MAPPINGS / "segment.yaml").read_text())
    return directory


def hubspot_contact_batch(first: int, count: int, occurred_ms: int) -> bytes:
    """A HubSpot delivery of ``count`` contact creations (event and object ids from ``first`` on)."""
    return json.dumps(
        [
            {
                "eventId": first + index,
                "subscriptionId": 2101,
                "portalId": 62515,
                "appId": 1160452,
                "occurredAt": occurred_ms,
                "subscriptionType": "contact.creation",
                "attemptNumber": 0,
                "objectId": 100_000 + first + index,
                "changeFlag": "CREATED",
                "changeSource": "CRM",
            }
            for index in range(count)
        ]
    ).encode()


def segment_email_batch(prefix: str, first: int, count: int, timestamp: str) -> bytes:
    """A Segment ``/v1/batch`` of ``count`` ``Email Opened`` tracks (message ids ``prefix-first`` on)."""
    calls = [
        {
            "type": "track",
            "event": "Email Opened",
            "userId": f"contact-{first + index}",
            "messageId": f"{prefix}-{first + index}",
            "timestamp": timestamp,
            "properties": {"campaign_id": "winter-2026"},
        }
        for index in range(count)
    ]
    return json.dumps({"batch": calls, "sentAt": timestamp}).encode()
