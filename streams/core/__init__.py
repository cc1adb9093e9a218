"""The pure ingest core: records and table keys, validation, continuity, dedup, facts, windows, folding, money."""
