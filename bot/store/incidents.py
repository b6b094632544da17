"""Incidents (cases) and their views; the case commands' audit trail lives in bot.store.audit."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import (
    ACTIVE_DISPATCH,
    OPEN_INCIDENT,
    Channel,
    Dispatch,
    Incident,
    IncidentStatus,
    Priority,
)
from bot.store.audit import audit
from bot.store.db import Database
from bot.store.dispatches import (
    active_dispatch,
    create_dispatch,
    dispatch_by_key,
    dispatch_kind,
    dispatches_for,
    set_dispatch,
)
from bot.store.rows import RowLike, build, one, placeholders, update_fields
from bot.store.teams import list_teams, pick_team, release_team, set_team_status, sync_teams

# Callers reach the dispatch, team and audit functions through this module too (handlers say
# ``store.set_dispatch``); each lives in the module of its table.
__all__ = [
    "ACTIVE_DISPATCH",
    "OPEN_STATUSES",
    "IncidentView",
    "active_dispatch",
    "add_facts",
    "audit",
    "by_case",
    "by_case_in",
    "create",
    "create_dispatch",
    "dispatch_by_key",
    "dispatch_kind",
    "dispatches_for",
    "escalate",
    "get",
    "incident_from_row",
    "last_ack_at",
    "list_incidents",
    "list_teams",
    "merge_needs",
    "normalise_case",
    "open_for_reporter",
    "pick_team",
    "release_team",
    "set_dispatch",
    "set_team_status",
    "sync_teams",
    "update",
    "views",
]

OPEN_STATUSES = OPEN_INCIDENT  # `lifeline incidents --status open` and !cases: not yet resolved
UPDATABLE = frozenset(
    {
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
)


def incident_from_row(r: RowLike) -> Incident:
    return build(
        Incident,
        r,
        columns={"case": "case_code"},
        priority=Priority,
        status=IncidentStatus,
        channel=Channel,
    )


async def open_for_reporter(
    conn: aiosqlite.Connection, channel: Channel, reporter: str
) -> Incident | None:
    row = await one(
        conn,
        f"""SELECT * FROM incidents WHERE channel=? AND reporter=?
            AND status IN {placeholders(OPEN_STATUSES)} ORDER BY id DESC LIMIT 1""",  # noqa: S608
        (channel.value, reporter, *OPEN_STATUSES),
    )
    return None if row is None else incident_from_row(row)


# The district code of this gateway (bot/region, ``[region] district``), written at start: new
# case codes carry it (BHO-4821); without it they stay LF-4821. Codes made before keep working.
DISTRICT_KEY = "region.district"
LEGACY_PREFIX = "LF"


async def _new_case_code(conn: aiosqlite.Connection) -> str:
    prefix = await one(conn, "SELECT value FROM kv WHERE key=?", (DISTRICT_KEY,))
    own = str(prefix[0]) if prefix is not None else LEGACY_PREFIX
    for digits in (4, 4, 4, 5, 5, 6, 6, 8):
        number = secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1)
        # Unique by number too, so a bare "4821" never means two cases (LF-4821 and BHO-4821).
        taken = await one(
            conn,
            "SELECT 1 FROM incidents WHERE case_code IN (?, ?)",
            (f"{LEGACY_PREFIX}-{number}", f"{own}-{number}"),
        )
        if taken is None:
            return f"{own}-{number}"
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
    row = await one(conn, "SELECT * FROM incidents WHERE id=?", (incident_id,))
    assert row is not None
    return incident_from_row(row)


async def get(conn: aiosqlite.Connection, incident_id: int) -> Incident | None:
    row = await one(conn, "SELECT * FROM incidents WHERE id=?", (incident_id,))
    return None if row is None else incident_from_row(row)


_CASE_RE = re.compile(r"^([A-Z][A-Z0-9]{1,7}?)?[\s\-_]*(\d{4,8})$", re.I)


def _clean(case: str) -> str:
    return case.strip().strip("#.,;:!?()[]<>\"'").upper()


def normalise_case(case: str) -> str:
    """``LF-6609``, ``lf-6609``, ``LF6609``, ``LF 6609`` and plain ``6609`` → ``LF-6609``;
    ``bho-4821`` → ``BHO-4821`` (a district's code; see ``by_case`` for a bare number)."""
    text = _clean(case)
    m = _CASE_RE.match(text)
    return f"{m.group(1) or LEGACY_PREFIX}-{m.group(2)}" if m else text


# A bare number is this district's code or an old LF- code (never both: _new_case_code).
_BY_CASE = f"""SELECT * FROM incidents WHERE case_code=? OR (? AND case_code=(
                   SELECT value || '-' || ? FROM kv WHERE key='{DISTRICT_KEY}'))
               ORDER BY id DESC LIMIT 1"""  # noqa: S608 - a constant


def _by_case_params(case: str) -> tuple[str, bool, str]:
    text = _clean(case)
    return normalise_case(case), text.isdigit(), text


async def by_case(db: Database, case: str) -> Incident | None:
    row = await db.fetchone(_BY_CASE, _by_case_params(case))
    return None if row is None else incident_from_row(row)


async def by_case_in(conn: aiosqlite.Connection, case: str) -> Incident | None:
    """``by_case`` inside a transaction."""
    row = await one(conn, _BY_CASE, _by_case_params(case))
    return None if row is None else incident_from_row(row)


async def update(conn: aiosqlite.Connection, incident_id: int, now: float, **fields: Any) -> None:
    if "status" in fields:
        fields["status"] = IncidentStatus(fields["status"])
    await update_fields(conn, "incidents", incident_id, now, fields, UPDATABLE)


async def last_ack_at(conn: aiosqlite.Connection, incident_id: int) -> float | None:
    """When the reporter of this case was last acknowledged (None: never)."""
    row = await one(conn, "SELECT last_ack_at FROM incidents WHERE id=?", (incident_id,))
    return None if row is None or row[0] is None else float(row[0])


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
    row = await one(
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
        where, params = f"WHERE status IN {placeholders(OPEN_STATUSES)}", OPEN_STATUSES
    elif status:
        where, params = "WHERE status=?", (status,)
    else:
        where = ""
    rows = await db.fetchall(
        f"SELECT * FROM incidents {where} ORDER BY priority, created_at LIMIT ?",  # noqa: S608
        (*params, limit),
    )
    return [incident_from_row(r) for r in rows]


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
