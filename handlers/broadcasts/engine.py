"""The broadcast engine: jobs on the scheduler, and each fire's outbox rows.

A job body only enqueues outbox rows; the outbox workers send them on the BROADCAST lane, behind
every reply. Each recipient row has the idempotency key ``adv:<id>:<fire>:sms:<peer>`` (sitrep:
``sitrep:<id>:<fire>:text|chart``) where ``<fire>`` is the scheduled slot rounded to the minute,
so a double fire, a catch-up after a restart or a re-processed command sends nothing twice.
Large advisories are enqueued in chunked transactions (``chunk_size`` rows each) so intake and
STOP never wait long for the database; each chunk re-checks opt-outs inside its transaction and
STOP cancels rows already queued, so STOP always wins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.charts import ChartData, render_sitrep_chart
from bot.scheduler import Scheduler
from bot.store import broadcasts as store
from bot.store import incidents, outbox, subscriptions
from bot.store.broadcasts import Broadcast
from handlers.broadcasts import sitrep
from handlers.broadcasts.advisory import advisory_rows, advisory_texts, area_label, hhmm
from handlers.context import Services

log = logging.getLogger(__name__)

CHUNK_SIZE = 500


@dataclass(frozen=True, slots=True)
class FireResult:
    broadcast_id: int
    fire_key: str
    recipients: int  # rows this fire targets (new or already queued/sent)
    new_rows: int  # rows inserted by this call
    opted_out: int
    already_done: bool = False
    skipped_reason: str | None = None


class BroadcastEngine:
    """Scheduling and firing; the coordinator commands are handlers.broadcasts.commands."""

    def __init__(
        self,
        services: Services,
        *,
        status: Callable[[], Awaitable[str]] | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
        chart_dir: Path | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.s = services
        self._status = status
        self._on_enqueued = on_enqueued
        self.chart_dir = chart_dir or services.settings.storage.path.parent / "sitreps"
        self.chunk_size = chunk_size
        self.scheduler = Scheduler(
            misfire_grace_s=services.settings.broadcasts.misfire_grace_s,
            on_missed=self._job_missed,
        )
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned_no_room = False
        self.sitrep_id: int | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start (re-register jobs, resume and catch up fires), then keep the scheduler running."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.scheduler.shutdown()

    async def start(self) -> None:
        db, now = self.s.db, self.s.clock()
        grace = self.s.settings.broadcasts.misfire_grace_s
        async with db.transaction() as conn:
            self.sitrep_id = await store.ensure_sitrep(
                conn, self.s.settings.broadcasts.sitrep_every_min, now
            )
        for bid, key, slot in await store.unfinished_fires(db):
            b = await store.get(db, bid)
            if b is None or b.status == "cancelled":
                async with db.transaction() as conn:
                    await store.finish_fire(conn, bid, key, 0, now)
                continue
            log.warning("broadcast #%d: fire %s was interrupted; resuming it", bid, key)
            await self.fire(b, slot)
        for b in await store.active(db):
            if not b.repeating and b.run_at <= now:
                if now - b.run_at <= grace:
                    log.warning(
                        "broadcast #%d: due at %s while stopped; sending now", b.id, b.run_at
                    )
                    await self.fire(b, b.run_at)
                else:
                    await self._mark_missed(b, now)
                continue
            if b.repeating:
                last_slot = b.slot_at(now)
                if (
                    last_slot is not None
                    and last_slot <= now  # a slot seconds ahead is the scheduler's to fire
                    and last_slot >= b.created_at - 60
                    and now - last_slot <= grace
                    and await store.fire_status(db, b.id, store.fire_key(last_slot)) is None
                ):
                    log.warning(
                        "broadcast #%d: slot %s passed while stopped (within grace); firing now",
                        b.id,
                        store.fire_key(last_slot),
                    )
                    await self.fire(b, last_slot)
            self._register(b)
        self.scheduler.start()

    def _job_id(self, broadcast_id: int) -> str:
        return f"broadcast:{broadcast_id}"

    def _register(self, b: Broadcast) -> None:
        async def body() -> None:
            await self._job(b.id)

        if b.every_min:
            self.scheduler.every(self._job_id(b.id), b.every_min, b.run_at, body)
        else:
            self.scheduler.once(self._job_id(b.id), b.run_at, body)

    async def _job(self, broadcast_id: int) -> None:
        b = await store.get(self.s.db, broadcast_id)
        if b is None or b.status != "active":
            self.scheduler.remove(self._job_id(broadcast_id))
            return
        slot = b.slot_at(self.s.clock())
        if slot is None:
            log.warning("broadcast #%d: job ran before its first slot; ignored", b.id)
            return
        await self.fire(b, slot)

    def _job_missed(self, job_id: str) -> None:
        async def mark() -> None:
            b = await store.get(self.s.db, int(job_id.rsplit(":", 1)[1]))
            if b is not None and b.status == "active" and not b.repeating:
                await self._mark_missed(b, self.s.clock())

        task = asyncio.get_running_loop().create_task(mark())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mark_missed(self, b: Broadcast, now: float) -> None:
        late = int(now - b.run_at)
        note = self.s.notifier.to_coordinators(
            f"Advisory #{b.id} to {area_label(b.area)} was due at {hhmm(b.run_at)} but the "
            f"gateway was down ({late} s late, grace "
            f"{self.s.settings.broadcasts.misfire_grace_s} s): NOT sent. "
            f"Re-send with !advise if still needed.",
            f"missed:{b.id}",
        )
        async with self.s.db.transaction() as conn:
            await store.set_status(conn, b.id, "missed", now, only_active=True)
            if note is not None:
                await outbox.enqueue(conn, note, now=now)
        log.error("broadcast #%d MISSED: due %d s ago (beyond the misfire grace)", b.id, late)
        self._on_enqueued()

    # ---- firing ---------------------------------------------------------------------------------

    async def fire(self, b: Broadcast, slot: float, *, top_up: bool = False) -> FireResult:
        """Enqueue one fire of ``b`` for the scheduled ``slot``; safe to call twice.

        ``top_up`` re-runs a finished advisory fire for today's subscribers: only those who
        have no row for it yet (joined since) get one; nobody gets a second copy."""
        key = store.fire_key(slot)
        lock = self._locks.setdefault(b.id, asyncio.Lock())
        async with lock:
            done = await store.fire_status(self.s.db, b.id, key) == "done"
            if done and not (top_up and b.kind == store.KIND_ADVISORY):
                log.info("broadcast #%d fire %s already done; nothing enqueued", b.id, key)
                return FireResult(b.id, key, 0, 0, 0, already_done=True)
            if b.kind == store.KIND_SITREP:
                return await self._fire_sitrep(b, slot, key)
            return await self._fire_advisory(b, slot, key)

    async def _fire_advisory(self, b: Broadcast, slot: float, key: str) -> FireResult:
        db = self.s.db
        subs = await subscriptions.subscribers(db, b.area)
        texts = advisory_texts(b, self.s.settings.sms.segment_budget)
        async with db.transaction() as conn:
            await store.begin_fire(conn, b.id, key, slot)
        new_rows = opted = 0
        for start in range(0, len(subs), self.chunk_size):
            chunk = subs[start : start + self.chunk_size]
            async with db.transaction() as conn:
                stopped = {
                    (channel, peer)
                    for channel in {s.channel for s in chunk}
                    for peer in await store.opted_out_among(
                        conn, channel, [s.peer for s in chunk if s.channel is channel]
                    )
                }
                new_rows += await store.enqueue_many(
                    conn, advisory_rows(b, key, chunk, texts, stopped), now=self.s.clock()
                )
            opted += len(stopped)
            self._on_enqueued()
            await asyncio.sleep(0)  # let intake and STOP in between chunks
        recipients = len(subs) - opted
        now = self.s.clock()
        async with db.transaction() as conn:
            await store.finish_fire(conn, b.id, key, recipients, now)
            if not b.repeating:
                await store.set_status(conn, b.id, "done", now, only_active=True)
            await incidents.audit(
                conn,
                actor=b.created_by,
                action="broadcast.fired",
                now=now,
                detail={"broadcast": b.id, "fire": key, "recipients": recipients, "new": new_rows},
            )
        log.info(
            "broadcast #%d fire %s to %s: %d recipient(s), %d newly queued, %d opted out",
            b.id,
            key,
            area_label(b.area),
            recipients,
            new_rows,
            opted,
        )
        return FireResult(b.id, key, recipients, new_rows, opted)

    async def _fire_sitrep(self, b: Broadcast, slot: float, key: str) -> FireResult:
        room = self.s.notifier.coordination_room
        if not room:
            if not self._warned_no_room:
                log.warning("sitrep: no coordination room configured; sitreps are not posted")
                self._warned_no_room = True
            return FireResult(b.id, key, 0, 0, 0, skipped_reason="no coordination room")
        self._warned_no_room = False
        text = await self.sitrep_text(slot)
        path = self.chart_dir / f"sitrep-{b.id}-{key}.png"
        chart: Path | None = path
        try:
            data = await self.chart_data(slot)
            await asyncio.to_thread(render_sitrep_chart, data, path)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sitrep %s: chart rendering failed; posting the text only", key)
            chart = None
        outs = sitrep.sitrep_messages(b, key, room, text, chart)
        now = self.s.clock()
        new_rows = 0
        async with self.s.db.transaction() as conn:
            await store.begin_fire(conn, b.id, key, slot)
            for out in outs:
                new_rows += int(await outbox.enqueue(conn, out, now=now))
            await store.finish_fire(conn, b.id, key, 1, now)
        self._on_enqueued()
        log.info("sitrep %s queued for %s (%d message(s))", key, room, new_rows)
        return FireResult(b.id, key, 1, new_rows, 0)

    async def fire_sitrep_now(self) -> FireResult | None:
        """Post the sitrep for the current slot (idempotent within the slot)."""
        if self.sitrep_id is None:
            return None
        b = await store.get(self.s.db, self.sitrep_id)
        if b is None:
            return None
        slot = b.slot_at(self.s.clock())
        return None if slot is None else await self.fire(b, slot)

    # ---- sitrep content -------------------------------------------------------------------------

    async def sitrep_text(self, at: float) -> str:
        return await sitrep.sitrep_text(self.s, at, self._status)

    async def chart_data(self, at: float, hours: int = sitrep.CHART_HOURS) -> ChartData:
        return await sitrep.chart_data(self.s, at, hours)
