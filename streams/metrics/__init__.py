"""The Prometheus collectors of /metrics: KPI values, Faust's sensors, alert states."""
