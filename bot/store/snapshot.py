"""A read-only view of a gateway's database for drills: plain rows, no writes, no migrations.

Opened with ``mode=ro`` so a drill can read while the gateway runs (WAL readers never block the
writer) and can never change what it is checking."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Row = dict[str, Any]

_QUERIES: dict[str, str] = {
    "inbox": """SELECT id, channel, dedup_key, peer, text, status, error, order_key, priority,
                       incident_id, needs_model,
                       received_at, created_at, updated_at, done_at FROM inbox ORDER BY id""",
    "outbox": """SELECT id, idem_key, channel, peer, text, lane, status, attempts, error,
                        inbox_id, incident_id, created_at, updated_at, sent_at
                   FROM outbox ORDER BY id""",
    "incidents": """SELECT id, case_code, priority, status, people_count, reporter, channel,
                           lat, lon, created_at, updated_at FROM incidents ORDER BY id""",
    "dispatches": """SELECT id, incident_id, team_id, kind, status, priority, people_count,
                            requested_by, decided_by, created_at, updated_at
                       FROM dispatches ORDER BY id""",
    "audit": "SELECT id, at, actor, action, incident_id, detail FROM audit ORDER BY id",
}


@dataclass
class Snapshot:
    inbox: list[Row] = field(default_factory=list)
    outbox: list[Row] = field(default_factory=list)
    incidents: list[Row] = field(default_factory=list)
    dispatches: list[Row] = field(default_factory=list)
    audit: list[Row] = field(default_factory=list)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def read(path: Path) -> Snapshot:
    """Every table the drill checks, in one read transaction (a consistent picture)."""
    snap = Snapshot()
    conn = _connect(path)
    try:
        conn.execute("BEGIN")
        for name, sql in _QUERIES.items():
            setattr(snap, name, [dict(r) for r in conn.execute(sql)])
        conn.execute("COMMIT")
    finally:
        conn.close()
    return snap


def pending(path: Path) -> tuple[int, int]:
    """(inbox rows waiting or in work, outbox rows waiting or being sent)."""
    conn = _connect(path)
    try:
        row = conn.execute(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE status IN ('queued','processing')),"
            " (SELECT COUNT(*) FROM outbox WHERE status IN ('queued','sending'))"
        ).fetchone()
        return int(row[0]), int(row[1])
    finally:
        conn.close()
