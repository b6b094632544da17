"""Teams: the inventory from the config, with each team's live status."""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite

from bot.models import ACTIVE_DISPATCH, Team, TeamStatus
from bot.store.db import Database
from bot.store.rows import RowLike, build, every, one, placeholders

AVAILABLE, BUSY, OFFLINE = TeamStatus.AVAILABLE, TeamStatus.BUSY, TeamStatus.OFFLINE


def team_from_row(r: RowLike) -> Team:
    return build(Team, r, status=TeamStatus)


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
                   VALUES (?,?,?,?,?,?)
                   ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, base=excluded.base,
                   capacity=excluded.capacity""",
                (t.id, t.kind, t.base, t.capacity, AVAILABLE, now),
            )
        configured = [t.id for t in teams]
        marks = placeholders(configured)
        # A borrowed team ("LAL/boat-7", bot/region) is never in the config: the lend decides.
        await conn.execute(
            f"""UPDATE teams SET status=?, updated_at=?
                WHERE status != ? AND id NOT IN {marks} AND id NOT LIKE '%/%'""",  # noqa: S608
            (OFFLINE, now, OFFLINE, *configured),
        )
        await conn.execute(
            f"""UPDATE teams SET updated_at=?, status=CASE WHEN EXISTS (
                    SELECT 1 FROM dispatches AS d WHERE d.team_id=teams.id
                    AND d.status IN {placeholders(ACTIVE_DISPATCH)}) THEN ? ELSE ? END
                WHERE status=? AND id IN {marks}""",  # noqa: S608 - placeholders only
            (now, *ACTIVE_DISPATCH, BUSY, AVAILABLE, OFFLINE, *configured),
        )


async def list_teams(db: Database | aiosqlite.Connection) -> list[Team]:
    return [team_from_row(r) for r in await every(db, "SELECT * FROM teams ORDER BY kind, id")]


async def pick_team(
    conn: aiosqlite.Connection, kind: str, team_id: str | None = None
) -> Team | None:
    """The team a coordinator named, or the largest free team of ``kind``. Never a free team of
    another kind: sending the medical team to a rooftop rescue is a person's explicit choice."""
    if team_id:  # as typed by a coordinator: BOAT-1 is boat-1
        row = await one(
            conn,
            "SELECT * FROM teams WHERE id=? COLLATE NOCASE ORDER BY id=? DESC LIMIT 1",
            (team_id.strip(), team_id.strip()),
        )
    else:
        row = await one(
            conn,
            "SELECT * FROM teams WHERE kind=? AND status=? ORDER BY capacity DESC, id",
            (kind, AVAILABLE),
        )
    return None if row is None else team_from_row(row)


async def set_team_status(
    conn: aiosqlite.Connection, team_id: str, status: str, now: float
) -> None:
    """``status`` is a TeamStatus (or its value)."""
    await conn.execute(
        "UPDATE teams SET status=?, updated_at=? WHERE id=?", (TeamStatus(status), now, team_id)
    )


async def release_team(conn: aiosqlite.Connection, team_id: str, now: float) -> None:
    """A team's job ended: busy → available. An offline team (removed from the config) stays
    offline."""
    await conn.execute(
        "UPDATE teams SET status=?, updated_at=? WHERE id=? AND status=?",
        (AVAILABLE, now, team_id, BUSY),
    )
