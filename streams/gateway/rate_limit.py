"""Per-source request rate limits: a token bucket, time passed in. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """``rate`` requests per second on average, ``burst`` at once; starts full.

    ``take(now)`` spends a token and returns 0, or returns the whole seconds to
    wait until one is available (the ``Retry-After`` of a 429) and spends nothing.
    """

    rate: float
    burst: float
    tokens: float | None = None
    updated: float | None = None

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, got rate={self.rate}, burst={self.burst}")

    def take(self, now: float) -> int:
        tokens = self.burst if self.tokens is None or self.updated is None else self.tokens
        elapsed = 0.0 if self.updated is None else max(0.0, now - self.updated)
        tokens = min(self.burst, tokens + elapsed * self.rate)
        self.updated = now
        if tokens >= 1:
            self.tokens = tokens - 1
            return 0
        self.tokens = tokens
        return max(1, math.ceil((1 - tokens) / self.rate))
