"""The wallboard: screens read from Prometheus' sums, pushed to TVs and browsers (``kpimon board``)."""
