"""The model route's worker: as many turns at once as the model pool has slots in total.

Each slot loop claims, under one lock, the most urgent eligible message and a slot on the
least-loaded server that can take it (bot/llm/pool.py): a conversation with a turn in flight
has nothing eligible (bot/store/inbox.claim_next keeps each conversation in order), and a
message with a voice note or a photo is only claimed when a server with audio/vision has a
free slot. The claim is the row's lease, so each message gets exactly one turn at a time, and
a crash re-queues it as before (bot/store/queue_rows).

Degraded mode (every message gets its fallback advice at once, no model call) only when no
server can serve; a server that is loading the model makes the messages wait for it instead."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from bot.aio import raise_if_cancelling
from bot.llm.hosts import ModelHost
from bot.llm.pool import DEGRADED, WAIT, ModelPool
from bot.llm.types import HostStatus
from bot.queue import CircuitOpen, InboxWorker, clock_time
from bot.store import inbox
from bot.store.inbox import InboxRow

log = logging.getLogger(__name__)

# What a message's attachments need from the server, and the reverse for the claim filter.
_NEEDS = {"audio": "audio", "image": "vision"}
_KINDS = {need: kind for kind, need in _NEEDS.items()}
IDLE_S = 5.0


def needs_of(row: InboxRow) -> frozenset[str]:
    return frozenset(_NEEDS[a.kind] for a in row.attachments if a.kind in _NEEDS)


@dataclass(eq=False, kw_only=True)
class ModelWorker(InboxWorker):
    pool: ModelPool
    _claiming: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pool.on_change = self.waker.wake  # a slot freed, a server came up: claim again

    async def reset_circuit(self) -> int:
        """The model is back: every server's circuit closes, deferred rows are due now."""
        self.pool.reset()
        self._outage_streak = 0
        due = await inbox.make_due(self.db, self.needs_model)
        self.waker.wake()
        return due

    def hosts(self) -> list[HostStatus]:
        return self.pool.statuses()

    async def run(self) -> None:
        log.info(
            "worker %s started: %d slot(s) on %d host(s) (%s)",
            self.name,
            self.pool.total_slots,
            len(self.pool.hosts),
            ", ".join(f"{h.name}×{h.slots}" for h in self.pool.hosts),
        )
        async with asyncio.TaskGroup() as tg:
            for i in range(self.pool.total_slots):
                tg.create_task(self._slot(), name=f"worker-{self.name}-{i + 1}")

    async def _slot(self) -> None:
        while True:
            raise_if_cancelling()
            claimed = await self._claim()
            if claimed is None:
                await self._idle()
                continue
            row, host = claimed
            log.debug(
                "inbox #%d claimed (priority %d) for %s",
                row.id,
                row.priority,
                "degraded advice" if host is None else host.name,
            )
            self.waker.wake()  # another idle slot may take the next message
            if host is None:
                at = self.pool.next_try_at(needs_of(row), self.clock())
                await self._failed(
                    row, CircuitOpen(f"model unavailable; next try at {clock_time(at)}")
                )
                continue
            with self.pool.turn(host, needs_of(row)):
                await self.process(row)

    async def _claim(self) -> tuple[InboxRow, ModelHost | None] | None:
        async with self._claiming:  # claim and slot together: no slot is promised twice
            now = self.clock()
            mode = self.pool.mode(now)
            if mode == WAIT or (mode != DEGRADED and not self.pool.has_free_slot(now)):
                return None
            degraded = mode == DEGRADED
            skip = frozenset(_KINDS[n] for n in self.pool.blocked_needs(now))
            row = await inbox.claim_next(
                self.db,
                needs_model=self.needs_model,
                fifo=self.fifo,
                now=now,
                lease_s=self.lease_s,
                # While no server can serve, no row reaches the model; each only gets its
                # fallback advice, so a sender's second message need not wait for their first.
                in_conversation_order=not degraded,
                skip_kinds=frozenset() if degraded else skip,
            )
            if row is None or degraded:
                return None if row is None else (row, None)
            host = self.pool.reserve(needs_of(row), self.clock())
            if host is None:  # the server failed while we claimed: give the claim back
                await inbox.retry_later(
                    self.db,
                    row.id,
                    at=self.clock(),
                    error=row.error or "",
                    now=self.clock(),
                    count_attempt=False,
                )
                return None
            return row, host

    async def _idle(self) -> None:
        now = self.clock()
        if self.pool.mode(now) != DEGRADED and not self.pool.has_free_slot(now):
            await self.waker.sleep(IDLE_S)  # a finished turn wakes us
            return
        due = await inbox.next_due_at(self.db, self.needs_model)
        await self.waker.sleep(IDLE_S if due is None else min(IDLE_S, due - self.clock()))

    async def _outage(self, row: InboxRow, exc: Exception, reason: str, now: float) -> None:
        """No server could take the turn (every capable one failed or is down): the fallback
        advice once, and the message waits for the first server that may be back."""
        at = self.pool.next_try_at(needs_of(row), now)
        if not isinstance(exc, CircuitOpen) and not self.pool.can_serve(now):
            log.warning(
                "inbox #%d: transient failure (%s); model paused %.0fs", row.id, reason, at - now
            )
        await self._enqueue(row, await self.degraded(row, exc))
        await inbox.retry_later(self.db, row.id, at=at, error=reason, now=now, count_attempt=False)
        if self.pool.can_serve(self.clock()):
            # A server came back while this row got its fallback: the watcher's make_due may
            # have run before the write above, which would leave the row waiting out `at`
            # behind later messages (a drowning child's text was answered last).
            await inbox.make_due(self.db, self.needs_model)
            self.waker.wake()
