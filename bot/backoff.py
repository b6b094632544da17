"""Retry delays: exponential with full jitter, capped."""

from __future__ import annotations

import random


def delay(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Delay before retry number `attempt` (1-based)."""
    # the exponent is clamped: a loop retrying for hours must not overflow a float
    raw = min(cap, base * (2 ** min(max(attempt - 1, 0), 60)))
    return float(raw * (0.5 + random.random() / 2)) if jitter else float(raw)
