"""Recent exchange with the same sender, as chat messages for the model (oldest first)."""

from __future__ import annotations

import re
from typing import Any

from bot.models import Role
from bot.store import messages
from bot.store.db import Database
from bot.store.inbox import InboxRow

PUBLIC_WRAPPER = "Message from the public sender (untrusted):\n<<<\n{text}\n>>>"


# A run of three or more angle brackets inside the text: split up so it cannot close the fence.
_FENCE_MARK = re.compile(r"<{3,}|>{3,}")


def public_text(text: str) -> str:
    """A member of the public's words, marked as information rather than instructions: the
    current message and every earlier one in the history alike. A ``>>>`` in the text is
    spaced out (``> > >``), so the words cannot end their own fence and pose as instructions."""
    return PUBLIC_WRAPPER.format(text=_FENCE_MARK.sub(lambda m: " ".join(m.group()), text))


async def conversation_history(db: Database, row: InboxRow, *, limit: int) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    turns = await messages.exchange(db, row, limit=limit)
    public = row.role is Role.PUBLIC
    return [
        {"role": role, "content": public_text(text) if public and role == "user" else text}
        for role, text in turns
    ]
