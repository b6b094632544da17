"""Changes a model proposed on a staff member's behalf, waiting for that person's "yes".

One pending confirmation per staff member per room, kept in the ``kv`` table so it survives a
restart. The key names the person: nobody else's "yes" can find it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from bot.store import kv


@dataclass(frozen=True, slots=True)
class Pending:
    """``changes``: one entry per held tool call, ``{"case": …, "update": {field: value}}``."""

    peer: str
    conversation: str
    inbox_id: int
    expires_at: float
    changes: list[dict[str, Any]] = field(default_factory=list)


def _key(peer: str, conversation: str) -> str:
    return f"confirm:{peer}:{conversation}"


async def get(conn: aiosqlite.Connection, peer: str, conversation: str) -> Pending | None:
    cur = await conn.execute("SELECT value FROM kv WHERE key=?", (_key(peer, conversation),))
    row = await cur.fetchone()
    if row is None:
        return None
    data = json.loads(row[0])
    return Pending(
        peer=peer,
        conversation=conversation,
        inbox_id=int(data["inbox_id"]),
        expires_at=float(data["expires_at"]),
        changes=list(data["changes"]),
    )


async def hold(
    conn: aiosqlite.Connection,
    *,
    peer: str,
    conversation: str,
    inbox_id: int,
    change: dict[str, Any],
    now: float,
    ttl_s: float,
) -> Pending:
    """Add ``change`` to the person's pending confirmation. Changes held while answering one
    message are confirmed together; a later message's proposal replaces older ones."""
    current = await get(conn, peer, conversation)
    changes = [] if current is None or current.inbox_id != inbox_id else list(current.changes)
    if change not in changes:  # the same call repeated by the model is one change
        changes.append(change)
    pending = Pending(peer, conversation, inbox_id, now + ttl_s, changes)
    value = {"inbox_id": inbox_id, "expires_at": pending.expires_at, "changes": changes}
    await kv.put(conn, _key(peer, conversation), json.dumps(value), now)
    return pending


async def take(conn: aiosqlite.Connection, peer: str, conversation: str) -> Pending | None:
    """The pending confirmation, removed (answered once, whatever the answer does)."""
    pending = await get(conn, peer, conversation)
    if pending is not None:
        await conn.execute("DELETE FROM kv WHERE key=?", (_key(peer, conversation),))
    return pending
