"""The board in a real headless Chromium (Debian's chromium and chromium-driver, `make browser`), and its server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.integration.prometheus_server import binary
from tests.integration.support import REPO, free_port, wait_until

SCREENSHOTS = REPO / "tests/screenshots"
CONFIG_FILE = REPO / "deploy/examples/kpimon.yaml"
WIDTH, HEIGHT = 1920, 1080  # a full-HD TV

# Every element showing text: its colour against the first opaque background behind it (WCAG 2 contrast ratio).
CONTRAST_JS = """
function channel(c) { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }
function rgba(text) {
  const m = text.match(/[\\d.]+/g).map(Number);
  return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
}
function luminance(c) { return 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]); }
function background(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) return c;
  }
  return [255, 255, 255, 1];
}
const found = [];
for (const el of document.querySelectorAll("body *")) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const style = getComputedStyle(el);
  if (!own || style.display === "none" || style.visibility === "hidden" || el.closest("[hidden]")) continue;
  const fg = luminance(rgba(style.color)), bg = luminance(background(el));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  found.push([ratio, el.tagName + "." + el.className + ": " + el.textContent.trim().slice(0, 40)]);
}
return found;
"""
VALUES_JS = """
return Object.fromEntries([...document.querySelectorAll('#screen [data-key]')]
  .map((e) => [e.dataset.key, e.dataset.value === '' ? null : Number(e.dataset.value)]));
"""


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = binary("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    driver = webdriver.Chrome(service=Service(binary("chromedriver")), options=options)
    metrics = {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


@dataclass
class BoardProcess:
    """``kpimon board`` in its own process."""

    prometheus_url: str
    log_path: Path
    token: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **({"KPIMON_BOARD_TOKEN": self.token} if self.token else {})}
        arguments = ["--config", str(CONFIG_FILE), "--prometheus-url", self.prometheus_url, "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.tools.cli", "board", *arguments, "--stale-after", "3s"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._serving, timeout=30, message=f"the board serving on {self.port}; see {self.log_path}")

    def _serving(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/board/static/board.css", timeout=2):
                return True
        except OSError:
            return False

    def url(self, path: str = "/board", **params: str) -> str:
        query = {**params, **({"token": self.token} if self.token else {})}
        return f"http://127.0.0.1:{self.port}{path}?" + "&".join(f"{key}={value}" for key, value in query.items())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def shown_values(driver: webdriver.Chrome) -> dict[str, float | None]:
    """The raw value of every number on the screen shown, by key (``rep:kpi``, a stage, a step, a stat)."""
    return driver.execute_script(VALUES_JS)  # type: ignore[no-any-return]


def open_screen(driver: webdriver.Chrome, url: str, screen: str) -> None:
    driver.get(url)
    wait_until(
        lambda: driver.execute_script("return document.querySelectorAll('#screen .tile').length") > 0,
        timeout=20,
        message=f"the {screen} screen drawn",
        interval=0.1,
    )


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def stale_flags(driver: webdriver.Chrome) -> list[str]:
    return driver.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll('.tile')].map((t) => t.dataset.stale)"
    )


def lowest_contrast(driver: webdriver.Chrome) -> list[Any]:
    found: list[list[Any]] = driver.execute_script(CONTRAST_JS)
    assert found, "no text on the page"
    return min(found)


def scrolls(driver: webdriver.Chrome) -> bool:
    return bool(
        driver.execute_script(
            "const e = document.documentElement; return e.scrollHeight > innerHeight || e.scrollWidth > innerWidth"
        )
    )


def wait_for_values(driver: webdriver.Chrome, expected: Mapping[str, float], timeout: float) -> None:
    """Until the screen shows every expected value (within float rounding)."""

    def matches() -> bool:
        shown = shown_values(driver)
        return all(shown.get(key) is not None and abs(shown[key] - value) < 1e-6 for key, value in expected.items())

    wait_until(
        matches,
        timeout=timeout,
        message=lambda: f"the board shows {dict(expected)}; it shows {shown_values(driver)}",
        interval=0.1,
    )


def elapsed_until(condition: Any, timeout: float) -> float:
    started = time.monotonic()
    wait_until(condition, timeout=timeout, message="the change on the page", interval=0.02)
    return time.monotonic() - started
