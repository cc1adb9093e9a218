"""Alert rules, their state machine and notifiers (Slack, webhooks).

Nothing here yet: the foundation exports KPIs; alerting builds on it.
"""
