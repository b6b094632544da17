"""The regional view: what the other districts (and this one) published in the regional room,
applied by (district, seq), and this district's side of mutual aid (lent and borrowed teams).

Every event is stored once (``PRIMARY KEY (district, seq)``); applying it again is a no-op, and
each fact keeps the seq that set it, so events arriving late or out of order never overwrite a
newer fact: a case's description and its state each keep their own seq, a district's team list
and sitrep are snapshots replaced only by a later one. Lend state is ordered by the lender's
seqs only (the lender is the authority on its own team)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import TeamStatus
from bot.store.db import Database
from bot.store.rows import build, every, one

VIEW_TABLES = (
    "region_events",
    "region_districts",
    "region_cases",
    "region_teams",
    "region_needs",
    "region_lends",
)


@dataclass(frozen=True, slots=True)
class DistrictRow:
    district: str
    last_seq: int
    events: int  # applied; last_seq - events = events not (yet) seen
    last_heard_at: float  # homeserver time of the newest event from the district
    sitrep: str  # JSON of the latest sitrep's data


@dataclass(frozen=True, slots=True)
class CaseRow:
    district: str
    code: str
    priority: str
    status: str
    team: str
    area: str
    people: int
    needs: str
    summary: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class TeamRow:
    district: str
    team: str
    kind: str
    status: str
    lender: str
    borrower: str


@dataclass(frozen=True, slots=True)
class NeedRow:
    district: str
    to_district: str
    kind: str
    count: int
    note: str
    at: float


@dataclass(frozen=True, slots=True)
class LendRow:
    lender: str
    team: str
    borrower: str
    seq: int
    active: bool
    until: float | None
    at: float


# ---- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventIn:
    """One event to store, as the reader believed it."""

    district: str
    seq: int
    kind: str
    at: float
    seen_at: float  # homeserver time
    event_id: str
    data: dict[str, Any]


async def record_events(conn: aiosqlite.Connection, batch: Sequence[EventIn]) -> list[EventIn]:
    """Store a page of events; returns those not applied before (a (district, seq) already
    held, or twice in the page, is a duplicate). A few statements per page, not per event: a
    rebuild applies thousands."""
    known: set[tuple[str, int]] = set()
    for district in {e.district for e in batch}:
        seqs = [e.seq for e in batch if e.district == district]
        rows = await every(
            conn,
            "SELECT seq FROM region_events WHERE district=? AND seq BETWEEN ? AND ?",
            (district, min(seqs), max(seqs)),
        )
        known.update((district, int(r[0])) for r in rows)
    fresh: list[EventIn] = []
    for e in batch:
        if (e.district, e.seq) not in known:
            known.add((e.district, e.seq))
            fresh.append(e)
    await conn.executemany(
        """INSERT INTO region_events (district, seq, kind, at, seen_at, event_id, data)
           VALUES (?,?,?,?,?,?,?)""",
        [
            (e.district, e.seq, e.kind, e.at, e.seen_at, e.event_id, json.dumps(e.data))
            for e in fresh
        ],
    )
    for district in {e.district for e in fresh}:
        mine = [e for e in fresh if e.district == district]
        await conn.execute(
            """INSERT INTO region_districts (district, last_seq, events, last_heard_at)
               VALUES (?,?,?,?)
               ON CONFLICT(district) DO UPDATE SET last_seq=MAX(last_seq, excluded.last_seq),
               events=events+excluded.events,
               last_heard_at=MAX(last_heard_at, excluded.last_heard_at)""",
            (district, max(e.seq for e in mine), len(mine), max(e.seen_at for e in mine)),
        )
    return fresh


async def apply_cases(conn: aiosqlite.Connection, cases: Sequence[EventIn]) -> None:
    """New (or re-described) cases: the description where newer than the one held, the state
    (priority, status, team) where newer than the state held."""
    await _case_rows(conn, cases)
    await conn.executemany(
        """UPDATE region_cases SET info_seq=?, area=?, people=?, needs=?, summary=?
           WHERE district=? AND code=? AND info_seq < ?""",
        [
            (
                e.seq,
                str(e.data.get("location") or ""),
                int(e.data.get("people") or 0),
                str(e.data.get("needs") or ""),
                str(e.data.get("summary") or ""),
                e.district,
                str(e.data["code"]),
                e.seq,
            )
            for e in cases
        ],
    )
    await apply_case_states(conn, cases)


async def apply_case_states(conn: aiosqlite.Connection, changes: Sequence[EventIn]) -> None:
    """Each case's state as of its newest event (an older one arriving late changes nothing)."""
    await _case_rows(conn, changes)
    await conn.executemany(
        """UPDATE region_cases SET state_seq=?, updated_at=?, priority=COALESCE(?, priority),
           status=COALESCE(?, status), team=COALESCE(?, team)
           WHERE district=? AND code=? AND state_seq < ?""",
        [
            (
                e.seq,
                e.at,
                e.data.get("priority") or None,
                e.data.get("status") or None,
                str(e.data["team"] or "") if "team" in e.data else None,
                e.district,
                str(e.data["code"]),
                e.seq,
            )
            for e in changes
        ],
    )


async def _case_rows(conn: aiosqlite.Connection, items: Sequence[EventIn]) -> None:
    await conn.executemany(
        "INSERT OR IGNORE INTO region_cases (district, code, created_at) VALUES (?,?,?)",
        [(e.district, str(e.data["code"]), e.at) for e in items],
    )


async def apply_teams(
    conn: aiosqlite.Connection, district: str, seq: int, teams: list[dict[str, Any]]
) -> bool:
    """The district's whole team list, if newer than the one held."""
    cur = await conn.execute(
        "UPDATE region_districts SET teams_seq=? WHERE district=? AND teams_seq < ?",
        (seq, district, seq),
    )
    if cur.rowcount == 0:
        return False
    await conn.execute("DELETE FROM region_teams WHERE district=?", (district,))
    await conn.executemany(
        """INSERT OR REPLACE INTO region_teams (district, team, kind, status, lender, borrower)
           VALUES (?,?,?,?,?,?)""",
        [
            (
                district,
                str(t.get("id") or t.get("team") or "?"),
                str(t.get("kind") or ""),
                str(t.get("status") or ""),
                str(t.get("lender") or ""),
                str(t.get("borrower") or ""),
            )
            for t in teams
            if isinstance(t, dict)
        ],
    )
    return True


async def apply_sitreps(conn: aiosqlite.Connection, sitreps: Sequence[EventIn]) -> None:
    await conn.executemany(
        "UPDATE region_districts SET sitrep_seq=?, sitrep=? WHERE district=? AND sitrep_seq < ?",
        [(e.seq, json.dumps(e.data, sort_keys=True), e.district, e.seq) for e in sitreps],
    )


async def apply_needs(conn: aiosqlite.Connection, requests: Sequence[EventIn]) -> None:
    """A request replaces the district's earlier one for the same (to, kind); count 0 withdraws."""
    await conn.executemany(
        """INSERT INTO region_needs (district, to_district, kind, seq, count, note, at)
           VALUES (?,?,?,?,?,?,?)
           ON CONFLICT(district, to_district, kind) DO UPDATE SET seq=excluded.seq,
           count=excluded.count, note=excluded.note, at=excluded.at WHERE excluded.seq > seq""",
        [
            (
                e.district,
                str(e.data.get("to") or "*").upper(),
                str(e.data.get("kind") or "?"),
                e.seq,
                int(e.data.get("count") or 0),
                str(e.data.get("note") or ""),
                e.at,
            )
            for e in requests
        ],
    )


async def set_lend(
    conn: aiosqlite.Connection,
    *,
    lender: str,
    team: str,
    borrower: str,
    seq: int,
    active: bool,
    until: float | None,
    at: float,
) -> bool:
    """The lend state of ``lender``'s team as of the lender's ``seq``; False when the state held
    is as new or newer (a replay, or an event that arrived late)."""
    cur = await conn.execute(
        """INSERT INTO region_lends (lender, team, borrower, seq, active, until, at)
           VALUES (?,?,?,?,?,?,?)
           ON CONFLICT(lender, team) DO UPDATE SET borrower=excluded.borrower,
           seq=excluded.seq, active=excluded.active, until=excluded.until, at=excluded.at
           WHERE excluded.seq > seq""",
        (lender, team, borrower, seq, int(active), until, at),
    )
    return cur.rowcount > 0


async def clear(conn: aiosqlite.Connection) -> None:
    """Before a rebuild from the room's history (lend state too: replaying the lender's events
    restores it, and the teams table's lent/borrowed rows change only on a newer event)."""
    for table in VIEW_TABLES:
        await conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names


# ---- this district's teams (the dispatch inventory) ---------------------------------------------


async def take_borrowed(
    conn: aiosqlite.Connection, team_id: str, kind: str, base: str, capacity: int, now: float
) -> None:
    """A team lent to this district joins its inventory as ``LENDER/team``: available unless it
    is already out on one of this district's dispatches."""
    await conn.execute(
        """INSERT INTO teams (id, kind, base, capacity, status, updated_at) VALUES (?,?,?,?,?,?)
           ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, base=excluded.base,
           capacity=excluded.capacity, updated_at=excluded.updated_at,
           status=CASE WHEN status=? THEN ? ELSE status END""",
        (
            team_id,
            kind,
            base,
            capacity,
            TeamStatus.AVAILABLE,
            now,
            TeamStatus.OFFLINE,
            TeamStatus.AVAILABLE,
        ),
    )


async def team_status(conn: aiosqlite.Connection, team_id: str) -> str | None:
    row = await one(conn, "SELECT status FROM teams WHERE id=?", (team_id,))
    return None if row is None else str(row[0])


async def set_team(conn: aiosqlite.Connection, team_id: str, status: str, now: float) -> None:
    """Lent, back home, or a borrowed team given back (offline: dispatches still name it)."""
    await conn.execute("UPDATE teams SET status=?, updated_at=? WHERE id=?", (status, now, team_id))


# ---- reading -----------------------------------------------------------------------------------


async def is_empty(db: Database) -> bool:
    return await db.fetchone("SELECT 1 FROM region_events LIMIT 1") is None


async def districts(db: Database) -> list[DistrictRow]:
    rows = await every(db, "SELECT * FROM region_districts ORDER BY district")
    return [build(DistrictRow, r) for r in rows]


async def open_cases(db: Database) -> list[CaseRow]:
    """Cases not resolved, by district then priority (critical first) then age."""
    rows = await every(
        db,
        """SELECT * FROM region_cases WHERE status NOT IN ('resolved', 'closed')
           ORDER BY district, CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1
           WHEN 'medium' THEN 2 ELSE 3 END, created_at""",
    )
    return [build(CaseRow, r) for r in rows]


async def teams(db: Database | aiosqlite.Connection) -> list[TeamRow]:
    rows = await every(db, "SELECT * FROM region_teams ORDER BY district, kind, team")
    return [build(TeamRow, r) for r in rows]


async def needs(db: Database) -> list[NeedRow]:
    rows = await every(db, "SELECT * FROM region_needs WHERE count > 0 ORDER BY at")
    return [build(NeedRow, r) for r in rows]


async def lends(db: Database | aiosqlite.Connection, *, active_only: bool = True) -> list[LendRow]:
    where = "WHERE active=1" if active_only else ""
    rows = await every(db, f"SELECT * FROM region_lends {where} ORDER BY lender, team")  # noqa: S608
    return [build(LendRow, r, active=bool) for r in rows]


async def lend_of(conn: aiosqlite.Connection, lender: str, team: str) -> LendRow | None:
    row = await one(
        conn, "SELECT * FROM region_lends WHERE lender=? AND team=? COLLATE NOCASE", (lender, team)
    )
    return None if row is None else build(LendRow, row, active=bool)


async def event_count(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) FROM region_events")
    return int(row[0]) if row else 0
