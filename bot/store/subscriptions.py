"""Advisory subscriptions by area, and opt-outs (STOP is honoured immediately and everywhere)."""

from __future__ import annotations

from typing import NamedTuple

import aiosqlite

from bot.models import Channel, Lane
from bot.store import outbox
from bot.store.db import Database


def normalise_area(area: str) -> str:
    """``Ward-5``, ``ward 5`` and ``WARD_5`` are one area: victims and coordinators type it
    differently."""
    return " ".join(area.replace("-", " ").replace("_", " ").split()).casefold()[:60]


class Subscriber(NamedTuple):
    channel: Channel
    peer: str
    lang: str
    conversation: str  # where advisories go: the number (SMS) or the room it joined from (Matrix)


async def join(
    conn: aiosqlite.Connection,
    channel: Channel,
    peer: str,
    area: str,
    lang: str,
    now: float,
    conversation: str = "",
) -> None:
    await conn.execute("DELETE FROM optouts WHERE channel=? AND peer=?", (channel.value, peer))
    await conn.execute(
        """INSERT INTO subscriptions (channel, peer, area, lang, created_at, conversation)
           VALUES (?,?,?,?,?,?)
           ON CONFLICT(channel, peer, area)
           DO UPDATE SET lang=excluded.lang, conversation=excluded.conversation""",
        (channel.value, peer, normalise_area(area), lang, now, conversation or peer),
    )


async def stop(conn: aiosqlite.Connection, channel: Channel, peer: str, now: float) -> int:
    """Unsubscribe from everything and cancel advisories already queued for this number."""
    await conn.execute(
        "DELETE FROM subscriptions WHERE channel=? AND peer=?", (channel.value, peer)
    )
    await conn.execute(
        "INSERT OR REPLACE INTO optouts (channel, peer, at) VALUES (?,?,?)",
        (channel.value, peer, now),
    )
    return await outbox.cancel_for_peer(
        conn, channel, peer, Lane.BROADCAST, "recipient sent STOP", now
    )


async def is_opted_out(conn: aiosqlite.Connection, channel: Channel, peer: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM optouts WHERE channel=? AND peer=?", (channel.value, peer)
    )
    return await cur.fetchone() is not None


async def subscribers(db: Database, area: str) -> list[Subscriber]:
    """Everyone subscribed to the area ('*' = every subscriber, once each), by channel and peer."""
    key = normalise_area(area)
    if key in ("*", "all"):
        rows = await db.fetchall(
            """SELECT channel, peer, MIN(lang), MAX(conversation) FROM subscriptions
               GROUP BY channel, peer ORDER BY channel, peer"""
        )
    else:
        rows = await db.fetchall(
            """SELECT channel, peer, lang, conversation FROM subscriptions WHERE area=?
               ORDER BY channel, peer""",
            (key,),
        )
    return [Subscriber(Channel(r[0]), r[1], r[2], r[3] or r[1]) for r in rows]


async def area_counts(db: Database) -> dict[str, int]:
    """Subscribers per area, most subscribed first."""
    rows = await db.fetchall(
        "SELECT area, COUNT(*) FROM subscriptions GROUP BY area ORDER BY COUNT(*) DESC, area"
    )
    return {r[0]: int(r[1]) for r in rows}


async def langs_of(db: Database, channel: Channel, peer: str) -> list[str]:
    rows = await db.fetchall(
        "SELECT lang FROM subscriptions WHERE channel=? AND peer=? ORDER BY created_at DESC",
        (channel.value, peer),
    )
    return [r[0] for r in rows]


async def areas_of(db: Database, channel: Channel, peer: str) -> list[str]:
    rows = await db.fetchall(
        "SELECT area FROM subscriptions WHERE channel=? AND peer=? ORDER BY area",
        (channel.value, peer),
    )
    return [r[0] for r in rows]
