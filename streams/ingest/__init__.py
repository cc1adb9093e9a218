"""One batch as a value (pure): what it writes and in which order; streams.worker.pipeline applies it."""
