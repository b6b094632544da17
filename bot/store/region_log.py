"""The regional log (bot/region): numbered events per district, the change marks that migration 7's
triggers leave in the same transaction as a change, and the last state published per subject.

A subject is what one event speaks about: ``case:<incident id>``, ``teams``, ``sitrep``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import ACTIVE_DISPATCH, OPEN_INCIDENT
from bot.store.db import Database
from bot.store.incidents import DISTRICT_KEY
from bot.store.rows import RowLike, every, one, placeholders

PUBLISH_KEY = "region.room"  # kv: present while this gateway publishes (the triggers check it)
TEAMS = "teams"
SITREP = "sitrep"


def case_subject(incident_id: int) -> str:
    return f"case:{incident_id}"


@dataclass(frozen=True, slots=True)
class LogEntry:
    district: str
    seq: int
    kind: str
    at: float
    data: dict[str, Any]
    subject: str
    enqueued_at: float | None

    @classmethod
    def from_row(cls, r: RowLike) -> LogEntry:
        return cls(
            district=str(r["district"]),
            seq=int(r["seq"]),
            kind=str(r["kind"]),
            at=float(r["at"]),
            data=json.loads(r["data"]),
            subject=str(r["subject"]),
            enqueued_at=None if r["enqueued_at"] is None else float(r["enqueued_at"]),
        )


async def configure(db: Database, *, district: str, room: str, now: float) -> None:
    """Written at start from ``[region]``: the case-code prefix and whether changes are marked
    for publishing. Removing either from the config removes it here too."""
    async with db.transaction() as conn:
        for key, value in ((DISTRICT_KEY, district), (PUBLISH_KEY, room if district else "")):
            if value:
                await conn.execute(
                    """INSERT INTO kv (key, value, updated_at) VALUES (?,?,?) ON CONFLICT(key)
                       DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at""",
                    (key, value, now),
                )
            else:
                await conn.execute("DELETE FROM kv WHERE key=?", (key,))


async def append(
    conn: aiosqlite.Connection,
    *,
    district: str,
    kind: str,
    at: float,
    data: dict[str, Any],
    subject: str = "",
) -> int:
    """The district's next entry, in the caller's transaction; returns its seq."""
    row = await one(
        conn, "SELECT COALESCE(MAX(seq), 0) + 1 FROM region_log WHERE district=?", (district,)
    )
    seq = int(row[0]) if row is not None else 1
    await conn.execute(
        """INSERT INTO region_log (district, seq, kind, at, data, subject)
           VALUES (?,?,?,?,?,?)""",
        (district, seq, kind, at, json.dumps(data, sort_keys=True), subject),
    )
    return seq


async def mark(conn: aiosqlite.Connection, subject: str, now: float) -> None:
    """Mark a subject changed by hand (the triggers cover incidents, dispatches and teams)."""
    await conn.execute(
        "INSERT OR IGNORE INTO region_dirty (subject, at) VALUES (?,?)", (subject, now)
    )


async def mark_teams(conn: aiosqlite.Connection, now: float) -> None:
    await mark(conn, TEAMS, now)


async def has_marks(conn: aiosqlite.Connection) -> bool:
    return await one(conn, "SELECT 1 FROM region_dirty LIMIT 1") is not None


async def take_marks(conn: aiosqlite.Connection, limit: int = 500) -> list[str]:
    """The oldest marks, removed: the caller turns them into entries in the same transaction."""
    rows = await every(
        conn, "SELECT subject FROM region_dirty ORDER BY at, subject LIMIT ?", (limit,)
    )
    subjects = [str(r[0]) for r in rows]
    if subjects:
        await conn.execute(
            f"DELETE FROM region_dirty WHERE subject IN {placeholders(subjects)}",  # noqa: S608
            subjects,
        )
    return subjects


async def published(conn: aiosqlite.Connection, subject: str) -> Any:
    row = await one(conn, "SELECT state FROM region_published WHERE subject=?", (subject,))
    return None if row is None else json.loads(row[0])


async def set_published(conn: aiosqlite.Connection, subject: str, state: Any, now: float) -> None:
    await conn.execute(
        """INSERT INTO region_published (subject, state, updated_at) VALUES (?,?,?)
           ON CONFLICT(subject) DO UPDATE
           SET state=excluded.state, updated_at=excluded.updated_at""",
        (subject, json.dumps(state, sort_keys=True), now),
    )


async def unsent(conn: aiosqlite.Connection, district: str, limit: int = 200) -> list[LogEntry]:
    rows = await every(
        conn,
        """SELECT * FROM region_log WHERE district=? AND enqueued_at IS NULL
           ORDER BY seq LIMIT ?""",
        (district, limit),
    )
    return [LogEntry.from_row(r) for r in rows]


async def set_enqueued(conn: aiosqlite.Connection, district: str, seq: int, now: float) -> None:
    await conn.execute(
        "UPDATE region_log SET enqueued_at=? WHERE district=? AND seq=?", (now, district, seq)
    )


async def pending(db: Database) -> bool:
    """Anything for the publisher to do (marks, or entries not yet handed to the outbox)?"""
    row = await db.fetchone(
        """SELECT EXISTS (SELECT 1 FROM region_dirty)
               OR EXISTS (SELECT 1 FROM region_log WHERE enqueued_at IS NULL)"""
    )
    return bool(row is not None and row[0])


async def waiting_hello(conn: aiosqlite.Connection, district: str, idem_prefix: str) -> bool:
    """A heartbeat of this district not out yet (not handed over, or queued in the outbox): the
    next one would only pile up behind it while the link is down."""
    row = await one(
        conn,
        """SELECT 1 FROM region_log AS r
           LEFT JOIN outbox AS o ON o.idem_key = ? || r.seq
           WHERE r.district=? AND r.kind='hello'
             AND (r.enqueued_at IS NULL OR o.status IN ('queued', 'sending')) LIMIT 1""",
        (idem_prefix, district),
    )
    return row is not None


async def entries(db: Database, district: str, since_seq: int = 0) -> list[LogEntry]:
    rows = await db.fetchall(
        "SELECT * FROM region_log WHERE district=? AND seq>? ORDER BY seq", (district, since_seq)
    )
    return [LogEntry.from_row(r) for r in rows]


# ---- what the events are made of -----------------------------------------------------------


async def case_row(conn: aiosqlite.Connection, incident_id: int) -> aiosqlite.Row | None:
    """The case's shareable columns and the team of its active dispatch (no reporter, no text)."""
    return await one(
        conn,
        f"""SELECT i.case_code, i.priority, i.status, i.location, i.people_count, i.needs,
                   i.lat, i.lon, i.channel, i.created_at,
                   (SELECT d.team_id FROM dispatches AS d WHERE d.incident_id=i.id
                      AND d.status IN {placeholders(ACTIVE_DISPATCH)}
                    ORDER BY d.id DESC LIMIT 1) AS team
            FROM incidents AS i WHERE i.id=?""",  # noqa: S608 - placeholders only
        (*ACTIVE_DISPATCH, incident_id),
    )


async def team_rows(conn: aiosqlite.Connection) -> list[aiosqlite.Row]:
    return await every(conn, "SELECT id, kind, status FROM teams ORDER BY kind, id")


async def open_counts(
    conn: aiosqlite.Connection,
) -> list[aiosqlite.Row]:
    """(priority, status, n) for the open cases."""
    return await every(
        conn,
        f"""SELECT priority, status, COUNT(*) AS n FROM incidents
            WHERE status IN {placeholders(OPEN_INCIDENT)} GROUP BY priority, status""",  # noqa: S608
        OPEN_INCIDENT,
    )
