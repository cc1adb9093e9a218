"""The edge: the Faust app and its tables, the batch pipeline, topics, settings, Redis stores, alerting timers."""
