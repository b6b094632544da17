"""Inbox and outbox workers: claim with a lease, classify failures, retry with backoff, dead-letter.

Inbox: a handler turns a row into outbound messages; they and the row's completion commit together.
Outages (model down/slow/garbage: the host's fault) open the circuit and re-queue the row without
spending its attempts; the handler sends a degraded reply once. A failure of the message itself
(an empty or guarded-out turn, a rejected request) spends one of its attempts and backs only that
row off, so the messages behind it go first; after its last attempt it is dead-lettered with the
fallback and a coordinator alert.
Outbox: one or more senders per channel drain by lane (urgent replies before advisories), each
recipient's messages in order and recipients in turn; an outage (transient) never spends a
message's attempts, only a permanent error dead-letters it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from bot import backoff
from bot.aio import raise_if_cancelling
from bot.late_notice import late_note
from bot.models import Channel, Outbound
from bot.redact import mask_peer
from bot.store import inbox, outbox
from bot.store.db import Database, StorageError
from bot.store.inbox import InboxRow
from bot.store.outbox import OutboxRow

log = logging.getLogger(__name__)

Handler = Callable[[InboxRow], Awaitable[Sequence[Outbound]]]
DegradedHandler = Callable[[InboxRow, BaseException], Awaitable[Sequence[Outbound]]]
DeadHandler = Callable[[InboxRow, str], Awaitable[Sequence[Outbound]]]


def clock_time(ts: float) -> str:
    """A unix time as local HH:MM:SS, for messages an operator reads (`lifeline messages`)."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def is_transient(exc: BaseException) -> bool:
    return bool(getattr(exc, "transient", False))


def is_outage(exc: BaseException) -> bool:
    """A transient failure of the host (not of this message): pause the model for everyone."""
    return is_transient(exc) and bool(getattr(exc, "outage", True))


class CircuitOpen(Exception):
    """The model failed moments ago: new rows get the degraded reply at once instead of
    each waiting out another timeout. Transient by definition."""

    transient = True


class Waker:
    """Wakes sleeping workers when new work is committed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=max(seconds, 0.0))
        self._event.clear()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float


@dataclass(eq=False, kw_only=True)
class QueueWorker:
    """What the inbox and outbox workers share: the database, how long a claim holds, the retry
    policy, what wakes them and the clock. Built with keywords, after the database."""

    db: Database = field(kw_only=False)
    lease_s: float
    retry: RetryPolicy
    waker: Waker
    clock: Callable[[], float]
    _outage_streak: int = field(default=0, init=False)  # outages in a row: the backoff step


@dataclass(eq=False, kw_only=True)
class InboxWorker(QueueWorker):
    """Drains one inbox route (model or fast) through ``handler``."""

    name: str
    needs_model: bool
    fifo: bool
    handler: Handler
    degraded: DegradedHandler  # the one reply while the model is out
    dead: DeadHandler
    on_done: Callable[[], None] = lambda: None
    # Attempts a message may spend on turns the model botched (BadTurn) before it is given up
    # (None: the retry policy's max_attempts).
    max_bad_turns: int | None = None
    processed: int = field(default=0, init=False)
    _circuit_until: float = field(default=0.0, init=False)
    _bad_turn_limit: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._bad_turn_limit = self.max_bad_turns or self.retry.max_attempts

    async def reset_circuit(self) -> int:
        """The model is back: rows deferred by the outage become due now."""
        self._circuit_until = 0.0
        self._outage_streak = 0
        due = await inbox.make_due(self.db, self.needs_model)
        self.waker.wake()
        return due

    async def run(self) -> None:
        log.info("worker %s started", self.name)
        while True:
            raise_if_cancelling()
            now = self.clock()
            row = await inbox.claim_next(
                self.db,
                needs_model=self.needs_model,
                fifo=self.fifo,
                now=now,
                lease_s=self.lease_s,
                # While the circuit is open no row reaches the model; each only gets its fallback
                # advice, so a sender's second message need not wait for their first.
                in_conversation_order=now >= self._circuit_until,
            )
            if row is None:
                due = await inbox.next_due_at(self.db, self.needs_model)
                wait = 5.0 if due is None else min(5.0, due - self.clock())
                await self.waker.sleep(wait)
                continue
            await self.process(row)

    async def process(self, row: InboxRow) -> None:
        if self.clock() < self._circuit_until:
            await self._failed(
                row,
                CircuitOpen(f"model unavailable; next try at {clock_time(self._circuit_until)}"),
            )
            return
        try:
            outs = await self.handler(row)
        except asyncio.CancelledError:
            raise  # the lease lapses; recovery re-queues the row on restart
        except StorageError:
            raise  # loud: the app stops rather than pretend
        except Exception as exc:  # noqa: BLE001 - the worker boundary classifies everything
            await self._failed(row, exc)
            return
        async with self.db.transaction() as conn:
            for out in outs:
                await outbox.enqueue(
                    conn, out, now=self.clock(), inbox_id=row.id, incident_id=row.incident_id
                )
            await inbox.complete(conn, row.id, self.clock())
        self._outage_streak = 0
        self.processed += 1
        log.info("inbox #%d done: %d outbound", row.id, len(outs))
        self.on_done()

    async def _failed(self, row: InboxRow, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        now = self.clock()
        if is_outage(exc):
            await self._outage(row, exc, reason, now)
            return
        await self._spend_attempt(row, exc, reason, now)

    async def _outage(self, row: InboxRow, exc: Exception, reason: str, now: float) -> None:
        """The host's failure, not the message's: pause, degraded reply, no attempt spent."""
        if not isinstance(exc, CircuitOpen):
            # Open the circuit: the next rows would hit the same outage.
            self._outage_streak += 1
            wait = backoff.delay(self._outage_streak, base=self.retry.base_s, cap=self.retry.max_s)
            self._circuit_until = now + wait
            log.warning(
                "inbox #%d: transient failure (%s); model paused %.0fs", row.id, reason, wait
            )
        await self._enqueue(row, await self.degraded(row, exc))
        await inbox.retry_later(
            self.db,
            row.id,
            at=self._circuit_until,
            error=reason,
            now=now,
            count_attempt=False,
        )

    async def _spend_attempt(self, row: InboxRow, exc: Exception, reason: str, now: float) -> None:
        limit = self.retry.max_attempts
        if is_transient(exc):  # the model answered, but not usably for this message
            limit = min(limit, self._bad_turn_limit)
            log.warning("inbox #%d: bad turn %d of %d: %s", row.id, row.attempts, limit, reason)
        else:
            log.error(
                "inbox #%d: failed attempt %d: %s", row.id, row.attempts, reason, exc_info=exc
            )
        if row.attempts >= limit:
            outs = await self.dead(row, reason)
            async with self.db.transaction() as conn:
                for out in outs:
                    await outbox.enqueue(conn, out, now=now, inbox_id=row.id)
                await inbox.dead_letter(conn, row.id, reason=reason, now=now)
            log.error("inbox #%d dead-lettered after %d attempts: %s", row.id, row.attempts, reason)
            return
        await self._enqueue(row, await self.degraded(row, exc))
        wait = backoff.delay(row.attempts, base=self.retry.base_s, cap=self.retry.max_s)
        await inbox.retry_later(
            self.db, row.id, at=now + wait, error=reason, now=now, count_attempt=True
        )

    async def _enqueue(self, row: InboxRow, outs: Sequence[Outbound]) -> None:
        if not outs:
            return
        async with self.db.transaction() as conn:
            for out in outs:
                await outbox.enqueue(
                    conn, out, now=self.clock(), inbox_id=row.id, incident_id=row.incident_id
                )


class SendError(Exception):
    """Raised by channel senders; `transient` decides retry vs dead letter."""

    def __init__(self, reason: str, *, transient: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after_s = retry_after_s


Sender = Callable[[OutboxRow], Awaitable[tuple[str, str]]]  # -> (via, reference)
DeadNotice = Callable[[OutboxRow, str], Awaitable[Sequence[Outbound]]]
IN_FLIGHT_GRACE_S = 10.0


async def _no_notice(row: OutboxRow, reason: str) -> Sequence[Outbound]:
    return ()


@dataclass(eq=False, kw_only=True)
class OutboxWorker(QueueWorker):
    """Drains one channel's outbox with ``concurrency`` senders."""

    channel: Channel
    sender: Sender
    concurrency: int
    max_attempts: int
    ready: Callable[[], Awaitable[None]] | None = None
    # Returns each time the channel works again after an outage (the homeserver answers).
    back: Callable[[], Awaitable[None]] | None = None
    on_dead: DeadNotice = _no_notice
    late_after_s: float | None = None
    sent: int = field(default=0, init=False)
    _last_transient: tuple[float, str] | None = field(default=None, init=False)  # (when, reason)

    async def run(self) -> None:
        log.info("outbox %s started with %d sender(s)", self.channel.value, self.concurrency)
        async with asyncio.TaskGroup() as tg:
            for _ in range(self.concurrency):
                tg.create_task(self._loop())
            if self.back is not None:
                tg.create_task(self._watch_back(self.back))

    async def _watch_back(self, back: Callable[[], Awaitable[None]]) -> None:
        while True:
            await back()
            await self.channel_back()

    async def channel_back(self) -> None:
        """The channel works again: what the outage deferred goes now, in lane order, rather
        than each row waiting out its own backoff (a critical alert waited minutes for it)."""
        self._outage_streak = 0
        due = await outbox.make_outage_deferred_due(self.db, self.channel, now=self.clock())
        if due:
            log.warning(
                "outbox %s: channel back, %d deferred message(s) due now", self.channel.value, due
            )
            self.waker.wake()

    async def _loop(self) -> None:
        while True:
            raise_if_cancelling()
            if self.ready is not None:
                await self.ready()  # claim at the last moment: lanes decide, not claim order
            row = await outbox.claim_next(
                self.db, self.channel, now=self.clock(), lease_s=self.lease_s
            )
            if row is None:
                due = await outbox.next_due_at(self.db, self.channel)
                await self.waker.sleep(5.0 if due is None else min(5.0, due - self.clock()))
                continue
            await self.send_one(row)

    async def send_one(self, row: OutboxRow) -> None:
        if self.late_after_s is not None:
            row = self._with_late_note(row, self.late_after_s)
        attempt = asyncio.ensure_future(self.sender(row))
        try:
            via, ref = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            await self._finish_in_flight(row, attempt)
            raise
        except Exception as exc:  # noqa: BLE001 - the worker boundary classifies everything
            await self._failed(row, exc)
            return
        await outbox.mark_sent(self.db, row.id, via=via, ref=ref, now=self.clock())
        if self._outage_streak:  # the first send through after an outage
            await self.channel_back()
        self.sent += 1
        log.info(
            "outbox #%d sent to %s via %s (%s)", row.id, mask_peer(row.peer), via, row.idem_key
        )

    def _with_late_note(self, row: OutboxRow, after_s: float) -> OutboxRow:
        """A message held back past `after_s` says its real age and why: its own last error,
        or the channel's outage that held it behind an earlier message."""
        cause = row.error
        if cause is None and self._last_transient and self._last_transient[0] >= row.created_at:
            cause = self._last_transient[1]
        note = late_note(row.created_at, self.clock(), cause, after_s=after_s)
        return row if note is None else replace(row, text=f"[{note}]\n{row.text}")

    async def _finish_in_flight(
        self, row: OutboxRow, attempt: asyncio.Future[tuple[str, str]]
    ) -> None:
        """Stopping: a send that may already be on the air gets a few seconds to finish and be
        recorded, so a clean restart does not send it twice."""
        try:
            via, ref = await asyncio.wait_for(asyncio.shield(attempt), IN_FLIGHT_GRACE_S)
        except (TimeoutError, asyncio.CancelledError):
            attempt.cancel()
            return
        except Exception:  # noqa: BLE001 - failed anyway; the row is retried after restart
            return
        await outbox.mark_sent(self.db, row.id, via=via, ref=ref, now=self.clock())
        log.info("outbox #%d finished sending during shutdown", row.id)

    async def _failed(self, row: OutboxRow, exc: Exception) -> None:
        """Permanent → dead now (with the notices `on_dead` makes); transient (homeserver or
        modem down, 5xx, timeout, rate limit) → retry with capped backoff, never spending the
        row's attempts: an outage is not the message's fault; anything unclassified spends an
        attempt and dead-letters once `max_attempts` are used."""
        now = self.clock()
        reason = f"{type(exc).__name__}: {exc}"
        attempts = row.attempts  # the claim counted this one
        transient = is_transient(exc)
        classified = isinstance(exc, SendError)
        if (classified and not transient) or (not classified and attempts >= self.max_attempts):
            notices = await self.on_dead(row, reason)
            await outbox.dead_letter(self.db, row.id, reason=reason, now=now, notices=notices)
            log.error(
                "outbox #%d to %s dead-lettered after %d attempt(s): %s%s",
                row.id,
                mask_peer(row.peer),
                attempts,
                reason,
                f"; {len(notices)} coordinator notice(s) queued" if notices else "",
            )
            if notices:
                self.waker.wake()
            return
        if transient:
            self._last_transient = (now, reason)
            self._outage_streak += 1
            step = self._outage_streak
        else:
            step = attempts
            log.error(
                "outbox #%d: unclassified failure %d/%d",
                row.id,
                step,
                self.max_attempts,
                exc_info=exc,
            )
        wait = backoff.delay(step, base=self.retry.base_s, cap=self.retry.max_s)
        retry_after = getattr(exc, "retry_after_s", None)
        if isinstance(retry_after, (int, float)):  # 429: as asked, within our cap
            wait = max(wait, min(float(retry_after), self.retry.max_s))
        await outbox.retry_later(
            self.db, row.id, at=now + wait, error=reason, now=now, count_attempt=not transient
        )
        # An outage retries every row for a long time: its first failure and then each
        # doubling of the streak are warnings, the rest debug lines.
        quiet = transient and row.error is not None and (step & (step - 1)) != 0
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "outbox #%d: %s; %s, retry in %.0fs",
            row.id,
            reason,
            "transient (attempt not counted)" if transient else f"attempt {attempts}",
            wait,
        )
