"""What the sitrep chart reads: cases and team dispatches that were live in a time window."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import Priority
from bot.store.db import Database
from bot.store.incidents import ACTIVE_DISPATCH, OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class CaseSpan:
    priority: Priority
    created_at: float
    closed_at: float | None  # None: still open (``updated_at`` is when a closed case closed)


@dataclass(frozen=True, slots=True)
class TeamSpan:
    team_id: str
    created_at: float
    ended_at: float | None  # None: the dispatch is still active


async def case_spans(db: Database, since: float) -> list[CaseSpan]:
    """Open cases, and every case changed at or after ``since``."""
    rows = await db.fetchall(
        "SELECT priority, status, created_at, updated_at FROM incidents "
        "WHERE status IN ('open','dispatch_requested','assigned') OR updated_at >= ?",
        (since,),
    )
    return [
        CaseSpan(
            priority=Priority(int(r["priority"])),
            created_at=float(r["created_at"]),
            closed_at=None if r["status"] in OPEN_STATUSES else float(r["updated_at"]),
        )
        for r in rows
    ]


async def team_spans(db: Database, since: float) -> list[TeamSpan]:
    """Dispatches with a team that are active, or changed at or after ``since``."""
    marks = ",".join("?" * len(ACTIVE_DISPATCH))
    sql = f"""SELECT team_id, status, created_at, updated_at FROM dispatches
              WHERE team_id IS NOT NULL AND (status IN ({marks}) OR updated_at >= ?)"""  # noqa: S608
    rows = await db.fetchall(sql, (*ACTIVE_DISPATCH, since))
    return [
        TeamSpan(
            team_id=str(r["team_id"]),
            created_at=float(r["created_at"]),
            ended_at=None if r["status"] in ACTIVE_DISPATCH else float(r["updated_at"]),
        )
        for r in rows
    ]
