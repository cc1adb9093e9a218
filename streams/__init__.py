"""The kpimon stream processor: ingest -> facts -> bucketed state -> KPI values -> /metrics.

Pure modules (``windows``, ``facts``, ``folding``, ``validation``, ``kpis``) hold
the logic; ``app``, ``collector``, ``topics`` and the CLI are the Faust,
Kafka and HTTP edges.
"""
