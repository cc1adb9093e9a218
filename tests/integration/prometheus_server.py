"""A real Prometheus (Debian's binary, `make tools`) for integration tests, and its HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.support import free_port


def binary(*names: str) -> str:
    """The first of ``names`` on PATH; skipped without it, except under CI, where it must be there."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    if os.environ.get("CI", "").lower() not in {"", "0", "false"}:
        pytest.fail(f"{names[0]} is not installed, and CI must run this test: `make tools` installs it")
    pytest.skip(f"{names[0]} is not installed: `make tools` installs Debian's prometheus and prometheus-alertmanager")


def prometheus_binary() -> str:
    return binary("prometheus")


class Prometheus:
    def __init__(self, tmp_path: Path, config_for: Callable[[int], dict[str, Any]]) -> None:
        """Prometheus on a free port of 127.0.0.1, with the config ``config_for(port)``."""
        self.port = free_port()
        config = tmp_path / f"prometheus-{self.port}.yml"
        config.write_text(yaml.safe_dump(config_for(self.port)), encoding="utf-8")
        self.log_path = tmp_path / f"prometheus-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / f'prometheus-data-{self.port}'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"GET {path} {params}: {exc.code} {exc.read().decode(errors='replace')}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] in {"scalar", "string"}:
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]  # type: ignore[no-any-return]

    def targets(self) -> list[tuple[str, str, str]]:
        """(scrape URL, health, last error) of each target, for failure messages."""
        active = self.get("/api/v1/targets")["activeTargets"]
        return [(target["scrapeUrl"], target["health"], target["lastError"]) for target in active]

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
