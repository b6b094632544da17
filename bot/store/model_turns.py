"""Model turns: one row per call of the model for an inbox row (timing, tokens, failure)."""

from __future__ import annotations

import json
import statistics
from typing import Any

from bot.store.db import Database


async def record(
    db: Database,
    *,
    inbox_id: int,
    at: float,
    ok: bool,
    seconds: float,
    prompt_tokens: int | None,
    error: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """``detail``: what the turn was given and did (passages, tool calls and the backend's
    decisions, the reply), for the case page's audit trail (bot/board)."""
    await db.execute(
        "INSERT INTO model_turns (inbox_id, at, ok, seconds, prompt_tokens, error, detail) "
        "VALUES (?,?,?,?,?,?,?)",
        (
            inbox_id,
            at,
            int(ok),
            seconds,
            prompt_tokens,
            error,
            None if detail is None else json.dumps(detail, default=str),
        ),
    )


async def median_ok_seconds(db: Database, *, last: int = 50) -> float | None:
    """Median duration of the last ``last`` successful turns (None before the first)."""
    rows = await db.fetchall(
        "SELECT seconds FROM model_turns WHERE ok=1 ORDER BY id DESC LIMIT ?", (last,)
    )
    return statistics.median([float(r[0]) for r in rows]) if rows else None
