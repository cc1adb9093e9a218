"""Helpers shipped with the package: HubSpot's CRM API stand-in, and a sender of signed sample webhooks.

``HubSpotApiStandIn`` answers ``GET /crm/v3/objects/{type}s/{id}`` (bearer token checked) from
the ``crm_objects`` of sample files (``deploy/gateway/samples/hubspot``), as HubSpot's CRM objects
API would: the object, or 404. ``send_samples`` posts each sample to a gateway signed like
HubSpot (signature v3), its events moved to the present, while the stand-in serves its objects.
As a process (used by ``make demo``)::

    python -m streams.gateway.testing --gateway http://127.0.0.1:8088 --api-port 8097 \\
        --samples deploy/gateway/samples/hubspot

with the gateway's KPIMON_GATEWAY_HUBSPOT_API_URL at ``http://127.0.0.1:8097`` and both sides given
the same KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET and KPIMON_GATEWAY_HUBSPOT_ACCESS_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from streams.gateway.hubspot_api import object_path
from streams.gateway.signatures import hubspot_v3_signature


class HubSpotApiStandIn:
    """A local HTTP server on 127.0.0.1 answering HubSpot's CRM objects API from ``objects``."""

    def __init__(self, token: str, port: int = 0) -> None:
        self.objects: dict[str, Any] = {}  # "/crm/v3/objects/deals/9001" -> the API's answer
        self.requests: list[str] = []
        self.delay_seconds = 0.0  # how long each answer takes (a slow CRM API)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                time.sleep(stand_in.delay_seconds)
                path = self.path.partition("?")[0]
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self._answer(401, {"status": "error", "category": "INVALID_AUTHENTICATION"})
                elif path in stand_in.objects:
                    self._answer(200, stand_in.objects[path])
                else:
                    self._answer(404, {"status": "error", "category": "OBJECT_NOT_FOUND"})

            def _answer(self, status: int, body: object) -> None:
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                """Quiet: the requests are kept in ``requests``."""

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def serve(self, sample: Mapping[str, Any]) -> None:
        """Answer with a sample's ``crm_objects`` (``"deal/9001": answer``) from now on."""
        self.objects = {
            object_path(kind, number): answer
            for name, answer in sample.get("crm_objects", {}).items()
            for kind, _, number in [name.partition("/")]
        }

    def __enter__(self) -> HubSpotApiStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def signed_hubspot_request(url: str, body: bytes, secret: str, now: float) -> urllib.request.Request:
    timestamp = str(int(now * 1000))
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": hubspot_v3_signature(secret, "POST", url, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
    }
    return urllib.request.Request(url, data=body, method="POST", headers=headers)


def send_samples(gateway_url: str, files: list[Path], api: HubSpotApiStandIn, secret: str) -> list[tuple[str, int]]:
    """Post each HubSpot sample, its events at the present (a second apart, in order); (file name, status)."""
    url = gateway_url.rstrip("/") + "/webhooks/hubspot"
    results = []
    for index, file in enumerate(files):
        sample = orjson.loads(file.read_bytes())
        now = time.time()
        occurred = int(now * 1000) - (len(files) - index) * 1000
        body = orjson.dumps([{**event, "occurredAt": occurred} for event in sample["body"]])
        api.serve(sample)
        try:
            with urllib.request.urlopen(signed_hubspot_request(url, body, secret, now), timeout=30) as answer:
                results.append((file.name, answer.status))
        except urllib.error.HTTPError as error:
            results.append((file.name, error.code))
    return results


def wait_until_ready(gateway_url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(gateway_url.rstrip("/") + "/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.gateway.testing",
        description="Send the HubSpot sample webhooks to a gateway, signed, with HubSpot's CRM API stood in "
        "for meanwhile. The secret and token come from KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET and "
        "KPIMON_GATEWAY_HUBSPOT_ACCESS_TOKEN, as the gateway's do.",
    )
    parser.add_argument("--gateway", default="http://127.0.0.1:8088", help="the gateway's base URL")
    parser.add_argument("--api-port", type=int, default=8097, help="port of the CRM API stand-in (127.0.0.1)")
    parser.add_argument("--samples", type=Path, default=Path("deploy/gateway/samples/hubspot"))
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the gateway's /readyz")
    args = parser.parse_args(argv)
    secret = os.environ.get("KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET")
    token = os.environ.get("KPIMON_GATEWAY_HUBSPOT_ACCESS_TOKEN")
    if not secret or not token:
        print("set KPIMON_GATEWAY_HUBSPOT_CLIENT_SECRET and _ACCESS_TOKEN as for the gateway", file=sys.stderr)
        return 2
    if not wait_until_ready(args.gateway, args.wait):
        print(f"the gateway at {args.gateway} was not ready within {args.wait:.0f} s", file=sys.stderr)
        return 1
    with HubSpotApiStandIn(token, args.api_port) as api:
        results = send_samples(args.gateway, sorted(args.samples.glob("*.json")), api, secret)
    for name, status in results:
        print(f"sent {name}: HTTP {status}")
    return 0 if all(status == 200 for _, status in results) else 1


if __name__ == "__main__":
    sys.exit(main())
