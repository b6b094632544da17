"""Inbox and outbox read together: the operator's message log and a sender's recent exchange."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.models import InboxStatus, OutboxStatus
from bot.store.db import Database
from bot.store.inbox import InboxRow
from bot.store.rows import build


@dataclass(frozen=True, slots=True)
class MessageLine:
    """One message in or out, as `lifeline messages` lists it."""

    direction: Literal["in", "out"]
    channel: str
    peer: str
    text: str
    status: str
    case: str | None
    created_at: float
    error: str | None


async def recent(db: Database, *, limit: int) -> list[MessageLine]:
    """The ``limit`` newest messages in both directions, oldest first."""
    rows = await db.fetchall(
        """SELECT * FROM (
             SELECT 'in' AS direction, i.channel, i.peer, i.text, i.status, c.case_code AS "case",
                    i.created_at, i.error, i.id AS rid
               FROM inbox i LEFT JOIN incidents c ON c.id = i.incident_id
             UNION ALL
             SELECT 'out', o.channel, o.peer, o.text, o.status, c.case_code, o.created_at,
                    o.error, o.id
               FROM outbox o LEFT JOIN incidents c ON c.id = o.incident_id
           ) ORDER BY created_at DESC, rid DESC LIMIT ?""",
        (limit,),
    )
    return [build(MessageLine, r) for r in reversed(rows)]


Speaker = Literal["user", "assistant"]


async def exchange(db: Database, row: InboxRow, *, limit: int) -> list[tuple[Speaker, str]]:
    """The last ``limit`` messages between ``row``'s sender and the gateway in its conversation
    before it, oldest first: what they wrote (answered rows) and the replies to them (sent or
    still queued)."""
    found = await db.fetchall(
        """SELECT * FROM (
             SELECT created_at AS at, 'user' AS role, text FROM inbox
               WHERE channel=? AND peer=? AND conversation=? AND id<? AND status=?
             UNION ALL
             SELECT created_at AS at, 'assistant' AS role, text FROM outbox
               WHERE channel=? AND conversation=? AND peer=? AND status IN (?, ?)
                 AND idem_key LIKE 'reply:%'
           ) ORDER BY at DESC LIMIT ?""",
        (
            row.channel.value,
            row.peer,
            row.conversation,
            row.id,
            InboxStatus.DONE,
            row.channel.value,
            row.conversation,
            row.peer,
            OutboxStatus.SENT,
            OutboxStatus.QUEUED,
            limit,
        ),
    )
    return [(r["role"], r["text"]) for r in reversed(found)]
