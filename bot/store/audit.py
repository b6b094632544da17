"""The audit log: who did what to which case, in order. Written in the same transaction as the
change it records."""

from __future__ import annotations

import json
from typing import Any

import aiosqlite


async def audit(
    conn: aiosqlite.Connection,
    *,
    actor: str,
    action: str,
    now: float,
    incident_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit (at, actor, action, incident_id, detail) VALUES (?,?,?,?,?)",
        (now, actor, action, incident_id, json.dumps(detail or {}, default=str)),
    )
