"""docs/kpis.md and docs/metrics.md must be what `kpimon docs` generates from the catalog."""

from pathlib import Path

import pytest

from schemas.catalog import load_catalog
from streams.tools.reference_docs import reference_docs

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("path", "text"), reference_docs(load_catalog()).items())
def test_checked_in_reference_docs_are_current(path: Path, text: str) -> None:
    assert (REPO / path).read_text(encoding="utf-8") == text, f"{path} is stale: run `kpimon docs`"


def test_every_kpi_metric_is_documented() -> None:
    metrics = (REPO / "docs/metrics.md").read_text(encoding="utf-8")
    for kpi in load_catalog().kpis:
        assert f"`{kpi.metric}`" in metrics
