"""Small durable key/value state: channel cursors, resolved room ids."""

from __future__ import annotations

import aiosqlite

from bot.store.db import Database


async def put(conn: aiosqlite.Connection, key: str, value: str, now: float) -> None:
    await conn.execute(
        """INSERT INTO kv (key, value, updated_at) VALUES (?,?,?)
           ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at""",
        (key, value, now),
    )


async def get(db: Database, key: str) -> str | None:
    row = await db.fetchone("SELECT value FROM kv WHERE key=?", (key,))
    return None if row is None else str(row[0])
