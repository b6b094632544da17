"""Incidents, teams, dispatches and the audit log."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import Channel, Dispatch, Incident, Priority, Team
from bot.store.db import Database

OPEN_STATUSES = ("open", "dispatch_requested", "assigned")
ACTIVE_DISPATCH = ("pending_approval", "approved", "assigned", "en_route", "arrived")


def incident_from_row(r: aiosqlite.Row) -> Incident:
    return Incident(
        id=r["id"],
        case=r["case_code"],
        priority=Priority(r["priority"]),
        status=r["status"],
        location=r["location"],
        people_count=r["people_count"],
        needs=r["needs"],
        summary=r["summary"],
        reporter=r["reporter"],
        channel=Channel(r["channel"]),
        conversation=r["conversation"],
        lang=r["lang"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        lat=r["lat"],
        lon=r["lon"],
    )


def dispatch_from_row(r: aiosqlite.Row) -> Dispatch:
    return Dispatch(
        id=r["id"],
        incident_id=r["incident_id"],
        team_id=r["team_id"],
        status=r["status"],
        priority=Priority(r["priority"]),
        location=r["location"],
        idem_key=r["idem_key"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def team_from_row(r: aiosqlite.Row) -> Team:
    return Team(
        id=r["id"], kind=r["kind"], base=r["base"], capacity=r["capacity"], status=r["status"]
    )


async def _one(conn: aiosqlite.Connection, sql: str, params: Iterable[Any]) -> aiosqlite.Row | None:
    cur = await conn.execute(sql, tuple(params))
    return await cur.fetchone()


async def open_for_reporter(
    conn: aiosqlite.Connection, channel: Channel, reporter: str
) -> Incident | None:
    row = await _one(
        conn,
        f"""SELECT * FROM incidents WHERE channel=? AND reporter=?
            AND status IN {OPEN_STATUSES} ORDER BY id DESC LIMIT 1""",  # noqa: S608
        (channel.value, reporter),
    )
    return None if row is None else incident_from_row(row)


async def _new_case_code(conn: aiosqlite.Connection) -> str:
    for digits in (4, 4, 4, 5, 5, 6, 6, 8):
        code = f"LF-{secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1)}"
        if await _one(conn, "SELECT 1 FROM incidents WHERE case_code=?", (code,)) is None:
            return code
    raise RuntimeError("could not allocate a case code")


async def create(
    conn: aiosqlite.Connection,
    *,
    channel: Channel,
    reporter: str,
    conversation: str,
    priority: Priority,
    lang: str,
    summary: str,
    now: float,
    people_count: int = 0,
) -> Incident:
    """A new case; ``people_count`` 0 means not known yet (shown as "?")."""
    code = await _new_case_code(conn)
    cur = await conn.execute(
        """INSERT INTO incidents (case_code, priority, reporter, channel, conversation, lang,
               summary, people_count, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)""",
        (
            code,
            int(priority),
            reporter,
            channel.value,
            conversation,
            lang,
            summary[:300],
            people_count,
            now,
            now,
        ),
    )
    incident_id = cur.lastrowid
    assert incident_id is not None
    await audit(
        conn,
        actor=reporter,
        action="incident.created",
        incident_id=incident_id,
        now=now,
        detail={"case": code, "priority": priority.label},
    )
    row = await _one(conn, "SELECT * FROM incidents WHERE id=?", (incident_id,))
    assert row is not None
    return incident_from_row(row)


async def get(conn: aiosqlite.Connection, incident_id: int) -> Incident | None:
    row = await _one(conn, "SELECT * FROM incidents WHERE id=?", (incident_id,))
    return None if row is None else incident_from_row(row)


_CASE_RE = re.compile(r"^(?:LF)?[\s\-_]*(\d{4,8})$", re.I)


def normalise_case(case: str) -> str:
    """``LF-6609``, ``lf-6609``, ``LF6609``, ``LF 6609`` and plain ``6609`` → ``LF-6609``."""
    text = case.strip().strip("#.,;:!?()[]<>\"'").upper()
    m = _CASE_RE.match(text)
    return f"LF-{m.group(1)}" if m else text


async def by_case(db: Database, case: str) -> Incident | None:
    row = await db.fetchone("SELECT * FROM incidents WHERE case_code=?", (normalise_case(case),))
    return None if row is None else incident_from_row(row)


async def by_case_in(conn: aiosqlite.Connection, case: str) -> Incident | None:
    """``by_case`` inside a transaction."""
    row = await _one(conn, "SELECT * FROM incidents WHERE case_code=?", (normalise_case(case),))
    return None if row is None else incident_from_row(row)


async def update(conn: aiosqlite.Connection, incident_id: int, now: float, **fields: Any) -> None:
    allowed = {
        "priority",
        "status",
        "location",
        "people_count",
        "needs",
        "summary",
        "lat",
        "lon",
        "owner",
        "last_ack_at",
    }
    bad = set(fields) - allowed
    if bad:
        raise ValueError(f"not updatable: {sorted(bad)}")
    if not fields:
        return
    cols = ", ".join(f"{k}=?" for k in fields)
    values = [int(v) if isinstance(v, Priority) else v for v in fields.values()]
    await conn.execute(
        f"UPDATE incidents SET {cols}, updated_at=? WHERE id=?",  # noqa: S608 - keys allow-listed
        (*values, now, incident_id),
    )


async def add_facts(
    conn: aiosqlite.Connection,
    incident_id: int,
    now: float,
    *,
    people_count: int | None = None,
    needs: str | None = None,
    location: str | None = None,
) -> None:
    """Facts a model call may add to a case: never lower or erase what a person stated.

    The head count only rises (0 = not known yet); needs are merged, not replaced; a location
    replaces the old one unless it only repeats part of it ("roof" after "school roof")."""
    row = await _one(
        conn, "SELECT people_count, needs, location FROM incidents WHERE id=?", (incident_id,)
    )
    if row is None:
        return
    fields: dict[str, Any] = {}
    if people_count is not None and people_count > int(row["people_count"] or 0):
        fields["people_count"] = people_count
    merged = merge_needs(str(row["needs"] or ""), needs or "")
    if merged != row["needs"]:
        fields["needs"] = merged
    old_location = str(row["location"] or "")
    if location and location.casefold() not in old_location.casefold():
        fields["location"] = location
    await update(conn, incident_id, now, **fields)


NEEDS_MAX = 300


def merge_needs(old: str, new: str) -> str:
    """``old`` plus what ``new`` adds; ``old`` is never cut (a full list stays as it is)."""
    new = new.strip()
    if not new or new.casefold() in old.casefold():
        return old
    if not old:
        return new[:NEEDS_MAX]
    if old.casefold() in new.casefold() and len(new) <= NEEDS_MAX:
        return new  # a superset of what was known
    room = NEEDS_MAX - len(old) - 2
    return old if room < 3 else f"{old}; {new[:room]}"


async def escalate(
    conn: aiosqlite.Connection, incident_id: int, priority: Priority, now: float
) -> None:
    """Priority only ever rises automatically; lowering it is a human decision."""
    await conn.execute(
        "UPDATE incidents SET priority=MIN(priority, ?), updated_at=? WHERE id=?",
        (int(priority), now, incident_id),
    )


async def list_incidents(
    db: Database, *, status: str | None = None, limit: int = 500
) -> list[Incident]:
    params: tuple[str, ...] = ()
    if status == "open":
        where = f"WHERE status IN {OPEN_STATUSES}"
    elif status:
        where, params = "WHERE status=?", (status,)
    else:
        where = ""
    rows = await db.fetchall(
        f"SELECT * FROM incidents {where} ORDER BY priority, created_at LIMIT ?",  # noqa: S608
        (*params, limit),
    )
    return [incident_from_row(r) for r in rows]


async def dispatches_for(db: Database | aiosqlite.Connection, incident_id: int) -> list[Dispatch]:
    sql = "SELECT * FROM dispatches WHERE incident_id=? ORDER BY id"
    if isinstance(db, Database):
        rows = await db.fetchall(sql, (incident_id,))
    else:
        cur = await db.execute(sql, (incident_id,))
        rows = list(await cur.fetchall())
    return [dispatch_from_row(r) for r in rows]


async def active_dispatch(conn: aiosqlite.Connection, incident_id: int) -> Dispatch | None:
    row = await _one(
        conn,
        f"""SELECT * FROM dispatches WHERE incident_id=? AND status IN {ACTIVE_DISPATCH}
            ORDER BY id DESC LIMIT 1""",  # noqa: S608
        (incident_id,),
    )
    return None if row is None else dispatch_from_row(row)


async def dispatch_by_key(conn: aiosqlite.Connection, idem_key: str) -> Dispatch | None:
    row = await _one(conn, "SELECT * FROM dispatches WHERE idem_key=?", (idem_key,))
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
    cur = await conn.execute(
        """INSERT INTO dispatches (incident_id, kind, status, priority, location, people_count,
               needs, idem_key, requested_by, created_at, updated_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
        (
            incident_id,
            kind,
            status,
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
    row = await _one(conn, "SELECT * FROM dispatches WHERE id=?", (cur.lastrowid,))
    assert row is not None
    return dispatch_from_row(row)


async def set_dispatch(
    conn: aiosqlite.Connection, dispatch_id: int, now: float, **fields: Any
) -> None:
    allowed = {"status", "team_id", "decided_by", "reason", "priority", "location"}
    if set(fields) - allowed:
        raise ValueError(f"not updatable: {sorted(set(fields) - allowed)}")
    cols = ", ".join(f"{k}=?" for k in fields)
    await conn.execute(
        f"UPDATE dispatches SET {cols}, updated_at=? WHERE id=?",  # noqa: S608
        (*[int(v) if isinstance(v, Priority) else v for v in fields.values()], now, dispatch_id),
    )


async def sync_teams(db: Database, teams: Iterable[Team], now: float) -> None:
    """Config is the inventory: add/update teams, keep their live status.

    A team no longer in the config goes 'offline' (not deleted: dispatches and the audit log
    name it): it is never picked or assignable again, and !teams shows it offline. Put back in
    the config, it comes back busy if it still has an active dispatch, else available."""
    teams = list(teams)
    async with db.transaction() as conn:
        for t in teams:
            await conn.execute(
                """INSERT INTO teams (id, kind, base, capacity, status, updated_at)
                   VALUES (?,?,?,?, 'available', ?)
                   ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, base=excluded.base,
                   capacity=excluded.capacity""",
                (t.id, t.kind, t.base, t.capacity, now),
            )
        configured = [t.id for t in teams]
        marks = ",".join("?" * len(configured))
        active = ",".join("?" * len(ACTIVE_DISPATCH))
        await conn.execute(
            f"""UPDATE teams SET status='offline', updated_at=?
                WHERE status != 'offline' AND id NOT IN ({marks})""",  # noqa: S608
            (now, *configured),
        )
        await conn.execute(
            f"""UPDATE teams SET updated_at=?, status=CASE WHEN EXISTS (
                    SELECT 1 FROM dispatches AS d WHERE d.team_id=teams.id
                    AND d.status IN ({active})) THEN 'busy' ELSE 'available' END
                WHERE status='offline' AND id IN ({marks})""",  # noqa: S608
            (now, *ACTIVE_DISPATCH, *configured),
        )


async def list_teams(db: Database | aiosqlite.Connection) -> list[Team]:
    sql = "SELECT * FROM teams ORDER BY kind, id"
    if isinstance(db, Database):
        rows = await db.fetchall(sql)
    else:
        cur = await db.execute(sql)
        rows = list(await cur.fetchall())
    return [team_from_row(r) for r in rows]


async def pick_team(
    conn: aiosqlite.Connection, kind: str, team_id: str | None = None
) -> Team | None:
    """The team a coordinator named, or the largest free team of ``kind``. Never a free team of
    another kind: sending the medical team to a rooftop rescue is a person's explicit choice."""
    if team_id:  # as typed by a coordinator: BOAT-1 is boat-1
        row = await _one(
            conn,
            "SELECT * FROM teams WHERE id=? COLLATE NOCASE ORDER BY id=? DESC LIMIT 1",
            (team_id.strip(), team_id.strip()),
        )
    else:
        row = await _one(
            conn,
            "SELECT * FROM teams WHERE kind=? AND status='available' ORDER BY capacity DESC, id",
            (kind,),
        )
    return None if row is None else team_from_row(row)


async def dispatch_kind(conn: aiosqlite.Connection, dispatch_id: int) -> str:
    row = await _one(conn, "SELECT kind FROM dispatches WHERE id=?", (dispatch_id,))
    return "boat" if row is None else str(row[0])


async def set_team_status(
    conn: aiosqlite.Connection, team_id: str, status: str, now: float
) -> None:
    await conn.execute("UPDATE teams SET status=?, updated_at=? WHERE id=?", (status, now, team_id))


async def release_team(conn: aiosqlite.Connection, team_id: str, now: float) -> None:
    """A team's job ended: busy → available. An offline team (removed from the config) stays
    offline."""
    await conn.execute(
        "UPDATE teams SET status='available', updated_at=? WHERE id=? AND status='busy'",
        (now, team_id),
    )


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


@dataclass(frozen=True, slots=True)
class IncidentView:
    """Incident plus its dispatches, as shown by the CLI and `!case`."""

    incident: Incident
    dispatches: list[Dispatch]

    def to_json(self) -> dict[str, Any]:
        i = self.incident
        return {
            "case": i.case,
            "priority": i.priority.label,
            "status": i.status,
            "location": i.location,
            "people_count": i.people_count,
            "needs": i.needs,
            "reporter": i.reporter,
            "channel": i.channel.value,
            "created_at": i.created_at,
            "updated_at": i.updated_at,
            "dispatches": [{"team": d.team_id, "status": d.status} for d in self.dispatches],
            "lat": i.lat,
            "lon": i.lon,
            "summary": i.summary,
        }


async def views(db: Database, *, status: str | None = None) -> list[IncidentView]:
    return [
        IncidentView(i, await dispatches_for(db, i.id))
        for i in await list_incidents(db, status=status)
    ]
