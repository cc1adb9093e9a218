"""``kpimon gateway``: webhooks from CRMs and tracking tools in, contract events on Kafka out."""
