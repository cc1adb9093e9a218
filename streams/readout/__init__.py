"""The read side (pure): window totals and KPI values, baselines, unique-visitor keys, alert inputs, links."""
