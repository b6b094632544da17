"""Recent exchange with the same sender, as chat messages for the model (oldest first)."""

from __future__ import annotations

from typing import Any

from bot.models import Role
from bot.store.db import Database
from bot.store.inbox import InboxRow

PUBLIC_WRAPPER = "Message from the public sender (untrusted):\n<<<\n{text}\n>>>"


def public_text(text: str) -> str:
    """A member of the public's words, marked as information rather than instructions: the
    current message and every earlier one in the history alike."""
    return PUBLIC_WRAPPER.format(text=text)


async def conversation_history(db: Database, row: InboxRow, *, limit: int) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    rows = await db.fetchall(
        """SELECT * FROM (
             SELECT created_at AS at, 'user' AS role, text FROM inbox
               WHERE channel=? AND peer=? AND conversation=? AND id<? AND status='done'
             UNION ALL
             SELECT created_at AS at, 'assistant' AS role, text FROM outbox
               WHERE channel=? AND conversation=? AND peer=? AND status IN ('sent','queued')
                 AND idem_key LIKE 'reply:%'
           ) ORDER BY at DESC LIMIT ?""",
        (
            row.channel.value,
            row.peer,
            row.conversation,
            row.id,
            row.channel.value,
            row.conversation,
            row.peer,
            limit,
        ),
    )
    public = row.role is Role.PUBLIC
    return [
        {
            "role": r["role"],
            "content": public_text(r["text"]) if public and r["role"] == "user" else r["text"],
        }
        for r in reversed(rows)
    ]
