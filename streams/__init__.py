"""The kpimon stream processor: ingest -> facts -> bucketed state -> KPI values -> /metrics.

One job per sub-package, imports pointing down this list only (``lint-imports`` checks it):

- ``tools``     the command line, simulator, replay, reference docs and dashboards;
- ``worker``    the Faust app, the batch pipeline, topics, settings, Redis edges;
- ``metrics``   the Prometheus collectors of /metrics;
- ``readout``   KPI values, baselines and alert inputs from the stored buckets (pure);
- ``ingest``    one batch as a value: what it writes, in which order (pure);
- ``entities``  deals, leads, contacts and spend: state per entity and the facts it gives (pure);
- ``core``      records, validation, dedup, scopes' facts, windows, folding, money (pure).
"""
