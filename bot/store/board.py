"""The incident board's reads (bot/board): the case list with its filters, one case's whole
story in order, the board's own command rows. Every query the board runs is here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import (
    ACTIVE_DISPATCH,
    OPEN_INCIDENT,
    Channel,
    Dispatch,
    Inbound,
    InboxStatus,
    Incident,
    Priority,
    Role,
)
from bot.route import Decision
from bot.store import inbox, routing
from bot.store.db import Database
from bot.store.dispatches import dispatch_from_row
from bot.store.incidents import incident_from_row, normalise_case
from bot.store.rows import placeholders

FILTERS = ("open", "unassigned", "overdue", "all")
LIST_LIMIT = 300  # rows a board draws; the rest are counted and one filter or search away
MAX_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A case as the board lists it: the incident, its active dispatch, its last message."""

    incident: Incident
    dispatch: Dispatch | None
    last_contact_at: float | None


@dataclass(frozen=True, slots=True)
class CaseQuery:
    which: str = "open"  # one of FILTERS
    priority: Priority | None = None
    area: str = ""  # part of the location text
    team: str = ""
    q: str = ""  # a case code (or its digits) or part of the reporter's number
    overdue_before: float = 0.0  # "overdue": unassigned cases created before this
    limit: int = LIST_LIMIT


_CASE_SELECT = f"""
    SELECT i.*,
        (SELECT MAX(x.received_at) FROM inbox AS x WHERE x.incident_id = i.id) AS last_contact_at,
        (SELECT d.id FROM dispatches AS d WHERE d.incident_id = i.id
            AND d.status IN {placeholders(ACTIVE_DISPATCH)} ORDER BY d.id DESC LIMIT 1)
            AS active_dispatch_id
    FROM incidents AS i"""  # noqa: S608 - fixed placeholders only


_TEAM_WORKING = (
    "EXISTS (SELECT 1 FROM dispatches AS d WHERE d.incident_id = i.id AND d.team_id = ? "  # noqa: S608
    f"COLLATE NOCASE AND d.status IN {placeholders(ACTIVE_DISPATCH)})"
)
_CHANGED_SINCE = """ WHERE i.updated_at >= ? OR i.id IN
    (SELECT d.incident_id FROM dispatches AS d WHERE d.updated_at >= ?)"""
_VERSIONS = f"""
    SELECT i.id, i.updated_at,
        (SELECT MAX(x.received_at) FROM inbox AS x WHERE x.incident_id = i.id),
        a.id, a.status, a.team_id, a.updated_at
    FROM incidents AS i LEFT JOIN dispatches AS a ON a.id =
        (SELECT d.id FROM dispatches AS d WHERE d.incident_id = i.id
            AND d.status IN {placeholders(ACTIVE_DISPATCH)} ORDER BY d.id DESC LIMIT 1)"""  # noqa: S608


def _where(query: CaseQuery) -> tuple[str, list[Any]]:
    """The filter's WHERE clause (empty for none) and its parameters."""
    where: list[str] = []
    params: list[Any] = []
    if query.which != "all":
        where.append(f"i.status IN {placeholders(OPEN_INCIDENT)}")
        params += OPEN_INCIDENT
    if query.which in ("unassigned", "overdue"):
        # as handlers.dispatch.select_cases: no dispatch of the case ever had a team
        where.append(
            "NOT EXISTS (SELECT 1 FROM dispatches AS d WHERE d.incident_id = i.id "
            "AND d.team_id IS NOT NULL)"
        )
    if query.which == "overdue":
        where.append("i.created_at < ?")
        params.append(query.overdue_before)
    if query.priority is not None:
        where.append("i.priority = ?")
        params.append(int(query.priority))
    if query.area:
        where.append("i.location LIKE ? ESCAPE '\\'")
        params.append(f"%{_like(query.area)}%")
    if query.team:
        where.append(_TEAM_WORKING)
        params += [query.team, *ACTIVE_DISPATCH]
    if query.q:
        digits = "".join(c for c in query.q if c.isdigit())
        alternatives = ["i.case_code = ?", "i.case_code LIKE ? ESCAPE '\\'"]
        params += [normalise_case(query.q), f"%{_like(query.q.strip().upper())}%"]
        if len(digits) >= 4:
            alternatives.append("i.reporter LIKE ?")
            params.append(f"%{digits}%")
        where.append("(" + " OR ".join(alternatives) + ")")
    return (" WHERE " + " AND ".join(where) if where else ""), params


async def cases(db: Database, query: CaseQuery) -> list[CaseRow]:
    """The first ``query.limit`` matches, sorted like ``!incidents``: priority, then oldest
    first. The order index (migration 10) lets SQLite walk them in order and stop at the limit,
    so the per-case subqueries run for the returned rows only."""
    where, params = _where(query)
    sql = _CASE_SELECT + where + " ORDER BY i.priority, i.created_at LIMIT ?"
    rows = await db.read(sql, [*ACTIVE_DISPATCH, *params, query.limit])
    return await _case_rows(db, rows)


async def case_counts(db: Database, query: CaseQuery) -> dict[Priority, int]:
    """How many cases match ``query`` (every one, not only the first ``limit``), per priority."""
    where, params = _where(query)
    rows = await db.read(
        f"SELECT i.priority, COUNT(*) FROM incidents AS i{where} GROUP BY i.priority",  # noqa: S608
        params,
    )
    return {Priority(int(r[0])): int(r[1]) for r in rows}


async def markers(db: Database) -> list[aiosqlite.Row]:
    """Every open case with a position, as little as a map pin needs."""
    return await db.read(
        f"""SELECT case_code, priority, lat, lon, location FROM incidents
            WHERE status IN {placeholders(OPEN_INCIDENT)} AND lat IS NOT NULL
            AND lon IS NOT NULL ORDER BY priority, created_at""",  # noqa: S608
        OPEN_INCIDENT,
    )


async def case_versions(db: Database, since: float) -> list[tuple[int, tuple[Any, ...]]]:
    """(incident id, version) of each case whose row, or one of whose dispatches, changed at or
    after ``since``: the version is what a board shows changing (the row's updated_at, the last
    message's time, the active dispatch's id, status, team and updated_at). Light on purpose:
    the live view asks every few hundred ms during a burst, over a window of many seconds, and
    fetches whole rows (:func:`cases_by_id`) only for the versions it has not seen."""
    rows = await db.read(_VERSIONS + _CHANGED_SINCE, (*ACTIVE_DISPATCH, since, since))
    return [(int(r[0]), tuple(r[1:])) for r in rows]


async def cases_by_id(db: Database, ids: list[int]) -> list[CaseRow]:
    """Whole rows of these cases, sorted like ``!incidents``."""
    rows: list[aiosqlite.Row] = []
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        rows += await db.read(
            f"{_CASE_SELECT} WHERE i.id IN {placeholders(part)}",
            (*ACTIVE_DISPATCH, *part),
        )
    rows.sort(key=lambda r: (r["priority"], r["created_at"]))
    return await _case_rows(db, rows)


async def case_by_code(db: Database, code: str) -> CaseRow | None:
    rows = await db.fetchall(
        _CASE_SELECT + " WHERE i.case_code = ?", (*ACTIVE_DISPATCH, normalise_case(code))
    )
    found = await _case_rows(db, rows)
    return found[0] if found else None


async def _case_rows(db: Database, rows: list[aiosqlite.Row]) -> list[CaseRow]:
    ids = [int(r["active_dispatch_id"]) for r in rows if r["active_dispatch_id"] is not None]
    dispatches: dict[int, Dispatch] = {}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        for d in await db.read(
            f"SELECT * FROM dispatches WHERE id IN {placeholders(part)}",  # noqa: S608
            part,
        ):
            dispatches[int(d["id"])] = dispatch_from_row(d)
    return [
        CaseRow(
            incident_from_row(r),
            dispatches.get(int(r["active_dispatch_id"] or 0)),
            None if r["last_contact_at"] is None else float(r["last_contact_at"]),
        )
        for r in rows
    ]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def dispatch_kind(db: Database, dispatch_id: int) -> str | None:
    row = await db.fetchone("SELECT kind FROM dispatches WHERE id = ?", (dispatch_id,))
    return None if row is None else str(row[0])


async def teams_changed(db: Database, since: float) -> list[aiosqlite.Row]:
    return await db.read("SELECT * FROM teams WHERE updated_at >= ? ORDER BY id", (since,))


@dataclass(frozen=True, slots=True)
class TeamWork:
    """The case a team is out on, and where that case is (None: no position known)."""

    case: str
    at: tuple[float, float] | None


async def team_work(db: Database) -> dict[str, TeamWork]:
    """Team id -> the case it is working on now (active dispatches only)."""
    rows = await db.fetchall(
        f"""SELECT d.team_id, i.case_code, i.lat, i.lon FROM dispatches AS d
            JOIN incidents AS i ON i.id = d.incident_id
            WHERE d.team_id IS NOT NULL AND d.status IN {placeholders(ACTIVE_DISPATCH)}
            ORDER BY d.id""",  # noqa: S608
        ACTIVE_DISPATCH,
    )
    return {
        str(r[0]): TeamWork(
            str(r[1]), None if r[2] is None or r[3] is None else (float(r[2]), float(r[3]))
        )
        for r in rows
    }


# ---- one case's story ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Story:
    """Everything recorded about one case, each list in time order."""

    inbound: list[aiosqlite.Row]
    outbound: list[aiosqlite.Row]
    dispatches: list[aiosqlite.Row]
    audit: list[aiosqlite.Row]
    turns: list[aiosqlite.Row]


async def story(db: Database, incident_id: int) -> Story:
    inbound = await db.fetchall(
        """SELECT id, channel, peer, text, attachments, meta, status, received_at, msgtype,
                  voice, lat, lon, role
           FROM inbox WHERE incident_id = ? ORDER BY received_at, id""",
        (incident_id,),
    )
    outbound = await db.fetchall(
        """SELECT id, channel, peer, text, status, meta, created_at, sent_at, error, idem_key
           FROM outbox WHERE incident_id = ? ORDER BY created_at, id""",
        (incident_id,),
    )
    dispatches = await db.fetchall(
        "SELECT * FROM dispatches WHERE incident_id = ? ORDER BY created_at, id", (incident_id,)
    )
    audit = await db.fetchall(
        "SELECT * FROM audit WHERE incident_id = ? ORDER BY at, id", (incident_id,)
    )
    turns = await db.fetchall(
        """SELECT t.* FROM model_turns AS t JOIN inbox AS x ON x.id = t.inbox_id
           WHERE x.incident_id = ? ORDER BY t.at, t.id""",
        (incident_id,),
    )
    return Story(list(inbound), list(outbound), list(dispatches), list(audit), list(turns))


async def attachment(db: Database, inbox_id: int, index: int) -> dict[str, Any] | None:
    """The ``index``-th stored attachment of an inbox row (its path, kind and mimetype)."""
    row = await db.fetchone("SELECT attachments FROM inbox WHERE id = ?", (inbox_id,))
    if row is None:
        return None
    items = json.loads(row[0] or "[]")
    if not 0 <= index < len(items) or not isinstance(items[index], dict):
        return None
    found: dict[str, Any] = items[index]
    return found


# ---- the board's own commands -------------------------------------------------------------


async def record_command(
    db: Database, msg: Inbound, role: Role, decision: Decision, now: float
) -> int:
    """A command given on the board, stored like a Matrix one (its id is the command's
    reference in notice keys) and held as being processed: should the gateway stop before
    it finishes, crash recovery queues it and the command worker carries it out."""
    async with db.transaction() as conn:
        inbox_id = await inbox.insert(
            conn,
            msg,
            role=role,
            order_key=f"{Channel.MATRIX.value}:board|{msg.peer}",
            needs_model=False,
            lang="en",
            priority=Priority.MEDIUM,
            status=InboxStatus.PROCESSING,
            now=now,
        )
        if inbox_id is None:
            raise RuntimeError(f"board command {msg.dedup_key} stored twice")
        await routing.record_decision(conn, inbox_id, decision)
    return inbox_id
