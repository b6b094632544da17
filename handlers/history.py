"""Recent exchange with the same sender, as chat messages for the model (oldest first)."""

from __future__ import annotations

from typing import Any

from bot.models import Role
from bot.store import messages
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
    turns = await messages.exchange(db, row, limit=limit)
    public = row.role is Role.PUBLIC
    return [
        {"role": role, "content": public_text(text) if public and role == "user" else text}
        for role, text in turns
    ]
