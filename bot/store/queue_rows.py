"""Lease, retry and dead-letter for the two durable queues (inbox, outbox): one query set.

``attempts`` means the same in both: a claim counts the attempt it starts, so a claimed row
carries the number of the attempt now running (1 on its first claim). A transient failure (an
outage: model, homeserver or modem down) gives that attempt back, so an outage never uses up a
message's budget; any other failure keeps it. A process that dies mid-attempt leaves the row
leased; ``recover_after_crash`` queues it again with the attempt counted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import InboxStatus, OutboxStatus
from bot.store.db import Database

QUEUED = InboxStatus.QUEUED.value  # the same word in both tables
DEAD = InboxStatus.DEAD.value
assert QUEUED == OutboxStatus.QUEUED and DEAD == OutboxStatus.DEAD

Pick = Callable[[aiosqlite.Connection], Awaitable[aiosqlite.Row | None]]


@dataclass(frozen=True, slots=True)
class Queue:
    """One queue table. Names here are fixed identifiers, never input: safe in SQL text."""

    table: str
    leased: str  # the status of a row a worker holds
    partition: str  # the column that splits the workers (inbox: needs_model, outbox: channel)
    closed_at: str | None = None  # a column stamped when the row is finished, if the table has one

    async def claim(
        self, db: Database, pick: Pick, *, now: float, lease_s: float
    ) -> dict[str, Any] | None:
        """Lease the row ``pick`` selects (in the same transaction) and count its attempt.
        Returns the row's columns as they are after the claim."""
        async with db.transaction() as conn:
            row = await pick(conn)
            if row is None:
                return None
            await conn.execute(
                f"""UPDATE {self.table} SET status=?, attempts=attempts+1, lease_until=?,
                    updated_at=? WHERE id=?""",  # noqa: S608 - fixed identifier
                (self.leased, now + lease_s, now, row["id"]),
            )
        return {**dict(zip(row.keys(), row, strict=True)), **leased(self, row["attempts"])}

    async def next_due_at(self, db: Database, partition: object) -> float | None:
        row = await db.fetchone(
            f"""SELECT MIN(next_attempt_at) FROM {self.table}
                WHERE status=? AND {self.partition}=?""",  # noqa: S608 - fixed identifiers
            (QUEUED, partition),
        )
        return None if row is None or row[0] is None else float(row[0])

    async def make_due(self, db: Database, partition: object) -> int:
        """Every queued row of ``partition`` is due now (the outage that deferred them ended)."""
        async with db.transaction() as conn:
            cur = await conn.execute(
                f"""UPDATE {self.table} SET next_attempt_at=0
                    WHERE status=? AND {self.partition}=?""",  # noqa: S608 - fixed identifiers
                (QUEUED, partition),
            )
            return cur.rowcount

    async def retry_later(
        self, db: Database, row_id: int, *, at: float, error: str, now: float, count_attempt: bool
    ) -> None:
        """Back to the queue until ``at``. ``count_attempt=False`` (a transient failure) gives
        back the attempt the claim counted."""
        await db.execute(
            f"""UPDATE {self.table} SET status=?, lease_until=NULL, next_attempt_at=?, error=?,
                attempts=attempts - ?, updated_at=? WHERE id=?""",  # noqa: S608 - fixed identifier
            (QUEUED, at, error[:500], 0 if count_attempt else 1, now, row_id),
        )

    async def dead_letter(
        self, conn: aiosqlite.Connection, row_id: int, *, reason: str, now: float
    ) -> None:
        """Given up, with the reason (inside the caller's transaction, with what it enqueues)."""
        closed = f", {self.closed_at}=?" if self.closed_at else ""
        await conn.execute(
            f"""UPDATE {self.table} SET status=?, lease_until=NULL, error=?{closed}, updated_at=?
                WHERE id=?""",  # noqa: S608 - fixed identifiers
            (DEAD, reason[:500], *((now,) if self.closed_at else ()), now, row_id),
        )

    async def recover_after_crash(self, db: Database, now: float) -> int:
        """Rows a dead process held go back to the queue (their effects are idempotent)."""
        async with db.transaction() as conn:
            cur = await conn.execute(
                f"""UPDATE {self.table} SET status=?, lease_until=NULL, updated_at=?
                    WHERE status=?""",  # noqa: S608 - fixed identifier
                (QUEUED, now, self.leased),
            )
            return cur.rowcount

    async def status_counts(self, db: Database) -> dict[str, int]:
        rows = await db.fetchall(
            f"SELECT status, COUNT(*) FROM {self.table} GROUP BY status"  # noqa: S608
        )
        return {r[0]: int(r[1]) for r in rows}


def leased(queue: Queue, attempts_before: int) -> dict[str, Any]:
    """What a claim changes in a row as its caller sees it: the leased status and this attempt
    counted."""
    return {"status": queue.leased, "attempts": attempts_before + 1}


INBOX = Queue(
    "inbox", leased=InboxStatus.PROCESSING.value, partition="needs_model", closed_at="done_at"
)
OUTBOX = Queue("outbox", leased=OutboxStatus.SENDING.value, partition="channel")
