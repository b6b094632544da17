"""Recent exchange with the same sender, as chat messages for the model (oldest first)."""

from __future__ import annotations

from typing import Any

from bot.store.db import Database
from bot.store.inbox import InboxRow


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
    return [{"role": r["role"], "content": r["text"]} for r in reversed(rows)]
