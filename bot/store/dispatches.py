"""Dispatches: a team asked for (or sent) to an incident, and each decision about it."""

from __future__ import annotations

from typing import Any

import aiosqlite

from bot.models import ACTIVE_DISPATCH, Dispatch, DispatchStatus, Priority
from bot.store.db import Database
from bot.store.rows import RowLike, build, every, one, placeholders, update_fields

UPDATABLE = frozenset({"status", "team_id", "decided_by", "reason", "priority", "location"})


def dispatch_from_row(r: RowLike) -> Dispatch:
    return build(Dispatch, r, status=DispatchStatus, priority=Priority)


async def dispatches_for(db: Database | aiosqlite.Connection, incident_id: int) -> list[Dispatch]:
    rows = await every(
        db, "SELECT * FROM dispatches WHERE incident_id=? ORDER BY id", (incident_id,)
    )
    return [dispatch_from_row(r) for r in rows]


async def active_dispatch(conn: aiosqlite.Connection, incident_id: int) -> Dispatch | None:
    row = await one(
        conn,
        f"""SELECT * FROM dispatches WHERE incident_id=?
            AND status IN {placeholders(ACTIVE_DISPATCH)}
            ORDER BY id DESC LIMIT 1""",  # noqa: S608 - placeholders only
        (incident_id, *ACTIVE_DISPATCH),
    )
    return None if row is None else dispatch_from_row(row)


async def dispatch_by_key(conn: aiosqlite.Connection, idem_key: str) -> Dispatch | None:
    row = await one(conn, "SELECT * FROM dispatches WHERE idem_key=?", (idem_key,))
    return None if row is None else dispatch_from_row(row)


async def create_dispatch(
    conn: aiosqlite.Connection,
    *,
    incident_id: int,
    kind: str,
    status: str,
    priority: Priority,
    location: str,
    people_count: int,
    needs: str,
    idem_key: str,
    requested_by: str,
    now: float,
) -> Dispatch:
    """``status`` is a DispatchStatus (or its value)."""
    cur = await conn.execute(
        """INSERT INTO dispatches (incident_id, kind, status, priority, location, people_count,
               needs, idem_key, requested_by, created_at, updated_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
        (
            incident_id,
            kind,
            DispatchStatus(status),
            int(priority),
            location,
            people_count,
            needs,
            idem_key,
            requested_by,
            now,
            now,
        ),
    )
    row = await one(conn, "SELECT * FROM dispatches WHERE id=?", (cur.lastrowid,))
    assert row is not None
    return dispatch_from_row(row)


async def set_dispatch(
    conn: aiosqlite.Connection, dispatch_id: int, now: float, **fields: Any
) -> None:
    if "status" in fields:
        fields["status"] = DispatchStatus(fields["status"])
    await update_fields(conn, "dispatches", dispatch_id, now, fields, UPDATABLE)


async def dispatch_kind(conn: aiosqlite.Connection, dispatch_id: int) -> str:
    row = await one(conn, "SELECT kind FROM dispatches WHERE id=?", (dispatch_id,))
    return "boat" if row is None else str(row[0])
