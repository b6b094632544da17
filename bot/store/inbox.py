"""Inbox rows: durable, deduplicated, leased in priority order, FIFO per conversation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from bot.models import Attachment, Channel, Facts, Inbound, InboxStatus, Priority, Role
from bot.route import Decision
from bot.store.db import Database
from bot.store.queue_rows import INBOX
from bot.store.routing import decision_of, facts_of, record_facts
from bot.store.rows import RowLike

FAILED_YIELD_S = 120.0  # how long a row that failed an attempt lets fresh rows go first
WAITING = (InboxStatus.QUEUED, InboxStatus.PROCESSING)  # not yet answered


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    channel: Channel
    dedup_key: str
    peer: str
    conversation: str
    order_key: str
    role: Role
    needs_model: bool
    text: str
    attachments: tuple[Attachment, ...]
    meta: dict[str, Any]
    lang: str
    priority: Priority
    status: InboxStatus
    attempts: int  # including the attempt running now (bot.store.queue_rows)
    incident_id: int | None
    error: str | None
    received_at: float
    created_at: float
    facts: Facts = field(default_factory=Facts)  # typed facts of the message (bot.facts)
    decision: Decision | None = None  # the route table's, at intake (None: stored before it)

    @classmethod
    def from_row(cls, r: RowLike) -> InboxRow:
        return cls(
            id=r["id"],
            channel=Channel(r["channel"]),
            dedup_key=r["dedup_key"],
            peer=r["peer"],
            conversation=r["conversation"],
            order_key=r["order_key"],
            role=Role(r["role"]),
            needs_model=bool(r["needs_model"]),
            text=r["text"],
            attachments=tuple(Attachment(**a) for a in json.loads(r["attachments"])),
            meta=json.loads(r["meta"]),
            lang=r["lang"],
            priority=Priority(r["priority"]),
            status=InboxStatus(r["status"]),
            attempts=r["attempts"],
            incident_id=r["incident_id"],
            error=r["error"],
            received_at=r["received_at"],
            created_at=r["created_at"],
            facts=facts_of(r),
            decision=decision_of(r),
        )


def _attachments_json(atts: tuple[Attachment, ...]) -> str:
    return json.dumps(
        [
            {"kind": a.kind, "mimetype": a.mimetype, "path": a.path, "size": a.size, "name": a.name}
            for a in atts
        ]
    )


async def insert(
    conn: aiosqlite.Connection,
    msg: Inbound,
    *,
    role: Role,
    order_key: str,
    needs_model: bool,
    lang: str,
    priority: Priority,
    status: str,
    now: float,
) -> int | None:
    """INSERT OR IGNORE on (channel, dedup_key): returns the new id, or None for a duplicate.
    ``status`` is an InboxStatus (or its value)."""
    cur = await conn.execute(
        """INSERT OR IGNORE INTO inbox (channel, dedup_key, peer, conversation, order_key, role,
               needs_model, text, attachments, meta, lang, priority, status, received_at,
               created_at, updated_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
        (
            msg.channel.value,
            msg.dedup_key,
            msg.peer,
            msg.conversation,
            order_key,
            role.value,
            int(needs_model),
            msg.text,
            _attachments_json(msg.attachments),
            json.dumps(msg.meta, default=str),
            lang,
            int(priority),
            InboxStatus(status),
            msg.received_at,
            now,
            now,
        ),
    )
    if cur.rowcount != 1 or cur.lastrowid is None:
        return None
    await record_facts(conn, cur.lastrowid, msg.facts)
    return cur.lastrowid


async def same_text_waiting(conn: aiosqlite.Connection, order_key: str, text: str) -> bool:
    """Is the same text from this conversation still waiting for (or in) its model turn?"""
    cur = await conn.execute(
        """SELECT 1 FROM inbox WHERE order_key = ? AND text = ? AND needs_model = 1
           AND status IN (?, ?) LIMIT 1""",
        (order_key, text, *WAITING),
    )
    return await cur.fetchone() is not None


async def raise_waiting_priority(
    conn: aiosqlite.Connection, order_key: str, priority: Priority, newer_id: int
) -> int:
    """A conversation is answered in order, so a life threat must not wait behind the same
    sender's earlier low-priority question: their still-queued rows take the new priority."""
    cur = await conn.execute(
        """UPDATE inbox SET priority = ? WHERE order_key = ? AND id < ? AND status = ?
           AND priority > ?""",
        (int(priority), order_key, newer_id, InboxStatus.QUEUED, int(priority)),
    )
    return cur.rowcount


async def set_incident(conn: aiosqlite.Connection, inbox_id: int, incident_id: int) -> None:
    await conn.execute("UPDATE inbox SET incident_id=? WHERE id=?", (incident_id, inbox_id))


async def claim_next(
    db: Database,
    *,
    needs_model: bool,
    fifo: bool,
    now: float,
    lease_s: float,
    in_conversation_order: bool = True,
    skip_kinds: frozenset[str] = frozenset(),
) -> InboxRow | None:
    """Lease the most urgent runnable row whose conversation has nothing older still pending on
    the same path: a STOP or a coordinator's command never waits behind a message that waits
    for the model (which may be down for hours). Without ``in_conversation_order`` (the model is
    down: rows only get their fallback advice and are deferred) every due row is claimable.

    A row that already failed an attempt of its own (a turn the model botched; an outage spends
    no attempt) goes behind every row that has not: one message the model always fails on must
    not be the first claimed every time, ahead of everyone else. It yields for at most
    ``FAILED_YIELD_S`` after it is due, so under endless load it still reaches its last attempt
    (and the coordinators' alert).

    ``skip_kinds``: rows with an attachment of these kinds are not claimable now (no model
    server that can take them has a free slot; the model pool decides)."""
    order = "(i.attempts > 0 AND i.next_attempt_at > ?), " + (
        "i.id" if fifo else "i.priority, i.id"
    )
    blocked = (
        """AND NOT EXISTS (SELECT 1 FROM inbox j WHERE j.order_key = i.order_key
                              AND j.needs_model = i.needs_model AND j.id < i.id
                              AND j.status IN (?, ?))"""
        if in_conversation_order
        else ""
    )
    kinds = sorted(skip_kinds)
    marks = ",".join("?" * len(kinds))
    skip = (
        f"""AND NOT EXISTS (SELECT 1 FROM json_each(i.attachments) a
                           WHERE json_extract(a.value, '$.kind') IN ({marks}))"""  # noqa: S608
        if kinds
        else ""
    )

    async def pick(conn: aiosqlite.Connection) -> aiosqlite.Row | None:
        cur = await conn.execute(
            f"""SELECT i.* FROM inbox i
                WHERE i.status = ? AND i.needs_model = ? AND i.next_attempt_at <= ?
                {blocked} {skip}
                ORDER BY {order} LIMIT 1""",  # noqa: S608 - fixed fragments, placeholders
            (
                InboxStatus.QUEUED,
                int(needs_model),
                now,
                *(WAITING if in_conversation_order else ()),
                *kinds,
                now - FAILED_YIELD_S,
            ),
        )
        return await cur.fetchone()

    row = await INBOX.claim(db, pick, now=now, lease_s=lease_s)
    return None if row is None else InboxRow.from_row(row)


next_due_at = INBOX.next_due_at  # (db, needs_model)
make_due = INBOX.make_due  # (db, needs_model)
retry_later = INBOX.retry_later
dead_letter = INBOX.dead_letter
recover_after_crash = INBOX.recover_after_crash
status_counts = INBOX.status_counts


async def complete(conn: aiosqlite.Connection, inbox_id: int, now: float) -> None:
    await conn.execute(
        """UPDATE inbox SET status=?, lease_until=NULL, error=NULL, done_at=?, updated_at=?
           WHERE id=?""",
        (InboxStatus.DONE, now, now, inbox_id),
    )


async def count_recent_from(
    conn: aiosqlite.Connection, channel: Channel, peer: str, since: float
) -> int:
    cur = await conn.execute(
        "SELECT COUNT(*) FROM inbox WHERE channel=? AND peer=? AND received_at>=?",
        (channel.value, peer, since),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def get(db: Database, inbox_id: int) -> InboxRow | None:
    row = await db.fetchone("SELECT * FROM inbox WHERE id=?", (inbox_id,))
    return None if row is None else InboxRow.from_row(row)


async def oldest_waiting_at(db: Database) -> float | None:
    row = await db.fetchone("SELECT MIN(received_at) FROM inbox WHERE status IN (?, ?)", WAITING)
    return None if row is None or row[0] is None else float(row[0])


async def awaiting_late_key(
    db: Database, *, since: float, late_suffix: str
) -> list[tuple[dict[str, Any], float]]:
    """Encrypted Matrix events that could not be decrypted (received after ``since``) and have
    not been delivered again decrypted (a row with ``dedup_key + late_suffix``)."""
    rows = await db.fetchall(
        """SELECT json_extract(i.meta, '$.encrypted_event'), i.received_at FROM inbox AS i
           WHERE i.channel = ? AND i.received_at >= ?
             AND i.undecryptable
             AND json_extract(i.meta, '$.encrypted_event') IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM inbox AS j
                             WHERE j.channel = i.channel AND j.dedup_key = i.dedup_key || ?)""",
        (Channel.MATRIX.value, since, late_suffix),
    )
    return [(json.loads(r[0]), float(r[1])) for r in rows]


async def last_modem(conn: aiosqlite.Connection, channel: Channel, peer: str) -> str | None:
    """The modem ``peer`` last wrote to (their operator reaches it), or None when unknown."""
    cur = await conn.execute(
        """SELECT modem FROM inbox
           WHERE channel=? AND peer=? AND modem IS NOT NULL
           ORDER BY received_at DESC, id DESC LIMIT 1""",
        (channel.value, peer),
    )
    row = await cur.fetchone()
    return None if row is None else str(row[0])
