"""Outbox rows: written with what caused them; sent by lane, retried, dead-lettered."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.models import Channel, Lane, Outbound, OutboxStatus
from bot.store.db import Database
from bot.store.queue_rows import OUTBOX
from bot.store.rows import RowLike, build

QUEUED, SENDING, SENT = OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    idem_key: str
    channel: Channel
    peer: str
    conversation: str
    text: str
    lane: Lane
    meta: dict[str, Any]
    status: OutboxStatus
    attempts: int  # including the attempt running now (bot.store.queue_rows)
    inbox_id: int | None
    incident_id: int | None
    via: str | None
    error: str | None
    created_at: float
    sent_at: float | None

    @classmethod
    def from_row(cls, r: RowLike) -> OutboxRow:
        return build(cls, r, channel=Channel, lane=Lane, meta=json.loads, status=OutboxStatus)

    def to_outbound(self) -> Outbound:
        return Outbound(
            channel=self.channel,
            peer=self.peer,
            conversation=self.conversation,
            text=self.text,
            idem_key=self.idem_key,
            lane=self.lane,
            meta=self.meta,
        )


async def enqueue(
    conn: aiosqlite.Connection,
    out: Outbound,
    *,
    now: float,
    inbox_id: int | None = None,
    incident_id: int | None = None,
) -> bool:
    """Insert once per idem_key; a second enqueue of the same key is a no-op (returns False)."""
    lane = await _life_lane_share(conn, out, now)
    cur = await conn.execute(
        """INSERT OR IGNORE INTO outbox (idem_key, channel, peer, conversation, text, lane, meta,
               inbox_id, incident_id, created_at, updated_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
        (
            out.idem_key,
            out.channel.value,
            out.peer,
            out.conversation,
            out.text,
            int(lane),
            json.dumps(out.meta, default=str),
            inbox_id,
            incident_id,
            now,
            now,
        ),
    )
    inserted = cur.rowcount == 1
    if inserted and incident_id is not None:
        # A case's earlier messages to the same recipient inherit this one's lane: the new-case
        # alert (REPLY for a high case) still goes before that case's URGENT dispatch request.
        await conn.execute(
            """UPDATE outbox SET lane=? WHERE status=? AND channel=? AND peer=?
               AND incident_id=? AND lane>? AND id<?""",
            (
                int(lane),
                QUEUED,
                out.channel.value,
                out.peer,
                incident_id,
                int(lane),
                cur.lastrowid,
            ),
        )
    return inserted


LIFE_WINDOW_S = 120.0
LIFE_ROWS_PER_WINDOW = 2  # one life-threat message's ack and its reply


async def _life_lane_share(conn: aiosqlite.Connection, out: Outbound, now: float) -> Lane:
    """LIFE only for a recipient's first ack and reply of a life threat, and only when nothing
    of theirs waits in another lane; otherwise URGENT.

    Lanes are strict: a number texting one life threat after another would keep the LIFE lane
    busy and every new routine victim's ack waiting behind all its replies. And a LIFE row
    behind a recipient's queued rows would have to lift them all into LIFE (a recipient's
    messages leave in order), which would do the same."""
    if out.lane is not Lane.LIFE:
        return out.lane
    cur = await conn.execute(
        """SELECT COALESCE(SUM(lane=:life AND created_at>=:since), 0),
                  COALESCE(SUM(status=:queued AND lane!=:life), 0)
           FROM outbox WHERE channel=:channel AND peer=:peer
             AND (status=:queued OR created_at>=:since)""",
        {
            "life": int(Lane.LIFE),
            "since": now - LIFE_WINDOW_S,
            "queued": QUEUED,
            "channel": out.channel.value,
            "peer": out.peer,
        },
    )
    row = await cur.fetchone()
    recent, waiting = (0, 0) if row is None else (row[0], row[1])
    return Lane.URGENT if recent >= LIFE_ROWS_PER_WINDOW or waiting else Lane.LIFE


# Only the head of a recipient's queue may go: an earlier row waiting for a retry (homeserver
# down) holds back the later ones, so a case's alerts and a victim's replies keep their order.
# Among the oldest heads (each a different recipient), the recipient never served, or served
# longest ago, goes first: round-robin, so one flooding sender cannot push a new victim's ack
# behind all of its own replies. The window keeps a claim cheap with thousands of advisories.
HEADS_WINDOW = 64
_CLAIM_SQL = """
SELECT h.*, (SELECT MAX(s.sent_at) FROM outbox AS s
             WHERE s.channel=h.channel AND s.peer=h.peer AND s.status=:sent) AS served_at
FROM (SELECT o.* FROM outbox AS o
      WHERE o.status=:queued AND o.channel=:channel AND o.lane=:lane AND o.next_attempt_at<=:now
        AND NOT EXISTS (SELECT 1 FROM outbox AS f
                        WHERE f.channel=o.channel AND f.peer=o.peer AND f.status=:sending)
        AND NOT EXISTS (SELECT 1 FROM outbox AS f INDEXED BY outbox_peer
                        WHERE f.channel=o.channel AND f.peer=o.peer AND f.status=:queued
                          AND (f.lane<o.lane OR (f.lane=o.lane AND f.id<o.id)))
      ORDER BY o.id LIMIT :window) AS h
ORDER BY served_at IS NOT NULL, served_at, h.id
LIMIT 1
"""

_CLAIM_STATUSES = {"sent": SENT, "queued": QUEUED, "sending": SENDING}


async def claim_next(
    db: Database, channel: Channel, *, now: float, lease_s: float
) -> OutboxRow | None:
    """Lease the next row: by lane, then round-robin across recipients, then age. One message
    per recipient is in flight at a time and never ahead of that recipient's earlier ones, so
    with several modems (or Matrix senders) a victim's ack cannot arrive after its reply."""

    async def pick(conn: aiosqlite.Connection) -> aiosqlite.Row | None:
        for lane in Lane:
            cur = await conn.execute(
                _CLAIM_SQL,
                {
                    **_CLAIM_STATUSES,
                    "channel": channel.value,
                    "lane": int(lane),
                    "now": now,
                    "window": HEADS_WINDOW,
                },
            )
            row = await cur.fetchone()
            if row is not None:
                return row
        return None

    row = await OUTBOX.claim(db, pick, now=now, lease_s=lease_s)
    return None if row is None else OutboxRow.from_row(row)


_MARK_SENT = """UPDATE outbox SET status=?, via=?, ref=?, error=NULL, lease_until=NULL,
                 sent_at=?, updated_at=? WHERE id=?"""


async def mark_sent(db: Database, row_id: int, *, via: str, ref: str, now: float) -> None:
    """Record a send the moment it happened, on the store's own short-write connection: the
    window in which a crash makes an SMS go out twice is this one commit, never a wait behind
    other work on the main connection."""
    await db.commit_now(_MARK_SENT, (SENT, via, ref, now, now, row_id))


_thread = threading.local()  # one connection per modem thread for mark_sent_on_this_thread


def mark_sent_on_this_thread(path: Path, row_id: int, *, via: str, ref: str, now: float) -> None:
    """Blocking: record a send from the thread that made it (a modem's), the moment the modem
    accepted it, so no event-loop latency widens the window in which a crash sends it twice.
    Autocommit on the thread's own connection; the async mark_sent after it is a no-op."""
    conn: sqlite3.Connection | None = getattr(_thread, "conn", None)
    if conn is None or getattr(_thread, "path", None) != path:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        conn.execute("PRAGMA synchronous=FULL")
        _thread.conn, _thread.path = conn, path
    conn.execute(_MARK_SENT + " AND status=?", (SENT, via, ref, now, now, row_id, SENDING))


async def make_outage_deferred_due(db: Database, channel: Channel, *, now: float) -> int:
    """The channel works again: rows deferred only by transient failures (an outage gives the
    claim's attempt back, so theirs is still 0) are due now instead of at the end of a backoff
    that grew through the outage (up to retry_max_s). Rows a real failure deferred keep theirs."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            """UPDATE outbox SET next_attempt_at=?, updated_at=?
               WHERE status=? AND channel=? AND attempts=0 AND next_attempt_at>?""",
            (now, now, QUEUED, channel.value, now),
        )
        return cur.rowcount


retry_later = OUTBOX.retry_later
recover_after_crash = OUTBOX.recover_after_crash
next_due_at = OUTBOX.next_due_at  # (db, channel)
status_counts = OUTBOX.status_counts


async def dead_letter(
    db: Database, row_id: int, *, reason: str, now: float, notices: Sequence[Outbound] = ()
) -> None:
    """Dead, with the coordinator notices about it committed in the same transaction (once:
    their idem_keys derive from the row)."""
    async with db.transaction() as conn:
        await OUTBOX.dead_letter(conn, row_id, reason=reason, now=now)
        cur = await conn.execute("SELECT incident_id FROM outbox WHERE id=?", (row_id,))
        found = await cur.fetchone()
        for notice in notices:
            await enqueue(conn, notice, now=now, incident_id=found[0] if found else None)


async def cancel_for_peer(
    conn: aiosqlite.Connection, channel: Channel, peer: str, lane: Lane, reason: str, now: float
) -> int:
    """STOP honoured immediately: queued rows of a lane (advisories) to this peer are cancelled."""
    cur = await conn.execute(
        """UPDATE outbox SET status=?, error=?, updated_at=?
           WHERE status=? AND channel=? AND peer=? AND lane=?""",
        (OutboxStatus.CANCELLED, reason, now, QUEUED, channel.value, peer, int(lane)),
    )
    return cur.rowcount
