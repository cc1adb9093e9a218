"""grafana-foundation-sdk, imported once with its deprecation warnings silenced.

The SDK marks the classic dashboard model deprecated (in favour of the v2 schema) as its classes are
defined; the classic model is what Grafana 11 and 12 import as they are (v2 needs feature toggles).
The other modules of the package import the SDK from here.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, text, timeseries
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard as builders
    from grafana_foundation_sdk.cog.builder import Builder
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as models
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
    from grafana_foundation_sdk.models.text import TextMode

__all__ = [
    "Builder",
    "JSONEncoder",
    "PromQueryFormat",
    "TextMode",
    "bargauge",
    "builders",
    "common",
    "common_builders",
    "models",
    "prometheus",
    "stat",
    "table",
    "text",
    "timeseries",
]
