"""Retry delays: exponential with full jitter, capped."""

from __future__ import annotations

import random


def delay(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """Delay before retry number `attempt` (1-based)."""
    raw = min(cap, base * (2 ** max(attempt - 1, 0)))
    return float(raw * (0.5 + random.random() / 2)) if jitter else float(raw)
