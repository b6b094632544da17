"""Scheduled broadcasts (advisories, sitreps) and their fires.

A broadcast row is the durable job definition: the scheduler is rebuilt from these rows at every
start (no apscheduler job store). ``run_at`` is the anchor: a one-shot fires at ``run_at``; a
repeating one fires at ``run_at + k * every_min`` minutes. A *fire* is one scheduled slot of one
broadcast, keyed by the slot time rounded to the minute; it is ``running`` while its recipients
are enqueued chunk by chunk and ``done`` afterwards, so a double fire or a restart mid-fire
enqueues nothing twice (the outbox idem_key makes every recipient row insert-once)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite

from bot.models import Channel, Outbound
from bot.store.db import Database

KIND_ADVISORY = "advisory"
KIND_SITREP = "sitrep"
SITREP_ACTOR = "config"

# A job that runs up to this long *before* its slot (clock jitter) still counts as that slot.
EARLY_TOLERANCE_S = 30.0


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    kind: str  # "advisory" | "sitrep"
    area: str
    text: str
    every_min: int | None  # None: one-shot at run_at
    run_at: float  # anchor (first slot)
    status: str  # "active" | "done" | "cancelled" | "missed" | "disabled"
    created_by: str
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, r: aiosqlite.Row) -> Broadcast:
        return cls(
            id=r["id"],
            kind=r["kind"],
            area=r["area"],
            text=r["text"],
            every_min=r["every_min"],
            run_at=float(r["run_at"] if r["run_at"] is not None else r["created_at"]),
            status=r["status"],
            created_by=r["created_by"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )

    @property
    def repeating(self) -> bool:
        return bool(self.every_min)

    def slot_at(self, t: float) -> float | None:
        """The scheduled slot a run at time ``t`` belongs to (None: before the first slot)."""
        if not self.every_min:
            return self.run_at if t + EARLY_TOLERANCE_S >= self.run_at else None
        interval = self.every_min * 60.0
        k = math.floor((t - self.run_at + EARLY_TOLERANCE_S) / interval)
        return None if k < 0 else self.run_at + k * interval


def fire_key(slot: float) -> str:
    """Scheduled fire time rounded to the minute, UTC: ``20240716T1400Z``."""
    return datetime.fromtimestamp(round(slot / 60.0) * 60.0, UTC).strftime("%Y%m%dT%H%MZ")


def floor_minute(t: float) -> float:
    return math.floor(t / 60.0) * 60.0


async def create(
    conn: aiosqlite.Connection,
    *,
    kind: str,
    area: str,
    text: str,
    every_min: int | None,
    run_at: float,
    created_by: str,
    now: float,
) -> int:
    cur = await conn.execute(
        """INSERT INTO broadcasts (kind, area, text, every_min, run_at, status, created_by,
               created_at, updated_at) VALUES (?,?,?,?,?,'active',?,?,?)""",
        (kind, area, text, every_min, run_at, created_by, now, now),
    )
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


async def get(db: Database | aiosqlite.Connection, broadcast_id: int) -> Broadcast | None:
    if isinstance(db, Database):
        row = await db.fetchone("SELECT * FROM broadcasts WHERE id=?", (broadcast_id,))
    else:
        cur = await db.execute("SELECT * FROM broadcasts WHERE id=?", (broadcast_id,))
        row = await cur.fetchone()
    return None if row is None else Broadcast.from_row(row)


async def active(db: Database) -> list[Broadcast]:
    rows = await db.fetchall("SELECT * FROM broadcasts WHERE status='active' ORDER BY id")
    return [Broadcast.from_row(r) for r in rows]


async def recent_twin(
    db: Database,
    *,
    area: str,
    text: str,
    every_min: int | None,
    since: float,
    at: float | None = None,
) -> Broadcast | None:
    """The same advisory to the same area since ``since``, from any coordinator (a re-processed
    or repeated command, or two coordinators sending it): reused instead of creating a second
    broadcast that would reach everyone again. Re-firing it reaches only new recipients.

    Send-now and scheduled advisories are never each other's twin: with ``at`` only one
    scheduled for that very time matches, without it only one that was sent at once (its first
    slot is the minute it was created in, a scheduled one's lies after its creation)."""
    when = "AND run_at=?" if at is not None else "AND (run_at IS NULL OR run_at<=created_at)"
    row = await db.fetchone(
        f"""SELECT * FROM broadcasts WHERE kind=? AND area=? AND text=?
             AND every_min IS ? AND created_at>=? AND status IN ('active','done') {when}
           ORDER BY id DESC LIMIT 1""",  # noqa: S608 - a fixed fragment, values bound
        (KIND_ADVISORY, area, text, every_min, since, *(() if at is None else (at,))),
    )
    return None if row is None else Broadcast.from_row(row)


async def set_status(
    conn: aiosqlite.Connection, broadcast_id: int, status: str, now: float, *, only_active: bool
) -> bool:
    cur = await conn.execute(
        "UPDATE broadcasts SET status=?, updated_at=? WHERE id=? AND (status='active' OR ?=0)",
        (status, now, broadcast_id, int(only_active)),
    )
    return cur.rowcount == 1


async def ensure_sitrep(conn: aiosqlite.Connection, every_min: int, now: float) -> int | None:
    """The config-defined sitrep as a broadcast row (fires are recorded against it).

    Anchored at the epoch, so slots fall on whole multiples of ``every_min`` (e.g. :00 hourly).
    ``every_min == 0`` disables it; returns its id when enabled."""
    cur = await conn.execute(
        "SELECT id, every_min, status FROM broadcasts WHERE kind=? ORDER BY id LIMIT 1",
        (KIND_SITREP,),
    )
    row = await cur.fetchone()
    if every_min <= 0:
        if row is not None and row["status"] == "active":
            await set_status(conn, int(row["id"]), "disabled", now, only_active=True)
        return None
    if row is None:
        return await create(
            conn,
            kind=KIND_SITREP,
            area="",
            text="",
            every_min=every_min,
            run_at=0.0,
            created_by=SITREP_ACTOR,
            now=now,
        )
    if row["every_min"] != every_min or row["status"] != "active":
        await conn.execute(
            "UPDATE broadcasts SET every_min=?, status='active', updated_at=? WHERE id=?",
            (every_min, now, row["id"]),
        )
    return int(row["id"])


# ---- fires ---------------------------------------------------------------------------------------


async def fire_status(db: Database, broadcast_id: int, key: str) -> str | None:
    row = await db.fetchone(
        "SELECT status FROM broadcast_fires WHERE broadcast_id=? AND fire_key=?",
        (broadcast_id, key),
    )
    return None if row is None else str(row[0])


async def begin_fire(
    conn: aiosqlite.Connection, broadcast_id: int, key: str, slot: float
) -> str | None:
    """Record the fire as running unless it exists; returns the previous status (None = new)."""
    cur = await conn.execute(
        "SELECT status FROM broadcast_fires WHERE broadcast_id=? AND fire_key=?",
        (broadcast_id, key),
    )
    row = await cur.fetchone()
    if row is not None:
        return str(row[0])
    await conn.execute(
        """INSERT INTO broadcast_fires (broadcast_id, fire_key, at, recipients, status)
           VALUES (?,?,?,0,'running')""",
        (broadcast_id, key, slot),
    )
    return None


async def finish_fire(
    conn: aiosqlite.Connection, broadcast_id: int, key: str, recipients: int, now: float
) -> None:
    await conn.execute(
        """UPDATE broadcast_fires SET status='done', recipients=?, done_at=?
           WHERE broadcast_id=? AND fire_key=?""",
        (recipients, now, broadcast_id, key),
    )


async def unfinished_fires(db: Database) -> list[tuple[int, str, float]]:
    """(broadcast_id, fire_key, slot) of fires a previous process did not finish."""
    rows = await db.fetchall(
        "SELECT broadcast_id, fire_key, at FROM broadcast_fires WHERE status='running' "
        "ORDER BY broadcast_id, at"
    )
    return [(int(r[0]), str(r[1]), float(r[2])) for r in rows]


async def fires_of(db: Database, broadcast_id: int) -> list[tuple[str, str, int]]:
    rows = await db.fetchall(
        "SELECT fire_key, status, recipients FROM broadcast_fires WHERE broadcast_id=? ORDER BY at",
        (broadcast_id,),
    )
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


async def last_fire(db: Database, broadcast_id: int) -> tuple[str, int] | None:
    row = await db.fetchone(
        "SELECT fire_key, recipients FROM broadcast_fires WHERE broadcast_id=? "
        "ORDER BY at DESC LIMIT 1",
        (broadcast_id,),
    )
    return None if row is None else (str(row[0]), int(row[1]))


# ---- recipients ---------------------------------------------------------------------------------


async def opted_out_among(
    conn: aiosqlite.Connection, channel: Channel, peers: Sequence[str]
) -> set[str]:
    """Which of ``peers`` sent STOP (checked inside the enqueue transaction: STOP wins)."""
    if not peers:
        return set()
    marks = ",".join("?" * len(peers))
    cur = await conn.execute(
        f"SELECT peer FROM optouts WHERE channel=? AND peer IN ({marks})",  # noqa: S608
        (channel.value, *peers),
    )
    return {str(r[0]) for r in await cur.fetchall()}


async def enqueue_many(conn: aiosqlite.Connection, outs: Iterable[Outbound], *, now: float) -> int:
    """Insert-once outbox rows (same columns and semantics as ``outbox.enqueue``) in one round
    trip; returns how many were new. Keeps a 500-row chunk transaction to a few milliseconds."""
    params = [
        (
            o.idem_key,
            o.channel.value,
            o.peer,
            o.conversation,
            o.text,
            int(o.lane),
            json.dumps(o.meta, default=str),
            now,
            now,
        )
        for o in outs
    ]
    if not params:
        return 0
    cur = await conn.executemany(
        """INSERT OR IGNORE INTO outbox (idem_key, channel, peer, conversation, text, lane, meta,
               created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)""",
        params,
    )
    return max(cur.rowcount, 0)


async def withdraw_queued(conn: aiosqlite.Connection, broadcast_id: int, now: float) -> int:
    """Cancel the still-queued rows of an advisory (``!broadcast cancel``)."""
    cur = await conn.execute(
        """UPDATE outbox SET status='cancelled', error='broadcast cancelled by a coordinator',
               updated_at=? WHERE status='queued' AND idem_key LIKE ?""",
        (now, f"adv:{broadcast_id}:%"),
    )
    return cur.rowcount
