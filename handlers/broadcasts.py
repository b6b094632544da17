"""Scheduled broadcasts: public SMS advisories to area subscribers and the sitrep to coordinators.

A job body only enqueues outbox rows; the outbox workers send them on the BROADCAST lane, behind
every reply. Each recipient row has the idempotency key ``adv:<id>:<fire>:sms:<peer>`` (sitrep:
``sitrep:<id>:<fire>:text|chart``) where ``<fire>`` is the scheduled slot rounded to the minute,
so a double fire, a catch-up after a restart or a re-processed command sends nothing twice.
Large advisories are enqueued in chunked transactions (``chunk_size`` rows each) so intake and
STOP never wait long for the database; each chunk re-checks opt-outs inside its transaction and
STOP cancels rows already queued, so STOP always wins.

The same advisory again within TWIN_WINDOW_S (a re-sent or re-processed command, or a second
coordinator sending it too) is the first one topped up: it goes to whoever subscribed since and
to nobody twice (deduplicated by recipient, through the per-recipient idempotency key).

Coordinator commands (via handlers/responder.py); every argument is checked first, and a wrong
one gets a clear error with nothing sent or scheduled:
  !advise <area|*> <text>              send now to the area's subscribers ("queued N")
  !advise <area|*> <text> at HH:MM     once, at the next HH:MM (server local time, 24-hour)
  !broadcast every <min> <area> <text> now and every <min> minutes
  !broadcast list | cancel <id>
SMS advisories start with ADVISORY_PREFIX, so a subscriber knows who is texting them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot import sms_text
from bot.charts import ChartData, render_sitrep_chart
from bot.models import Channel, Lane, Outbound, Priority
from bot.scheduler import Scheduler
from bot.store import broadcasts as store
from bot.store import incidents, outbox, subscriptions
from bot.store.broadcasts import Broadcast
from bot.triage import MAX_AREA_WORDS
from handlers import dispatch
from handlers.context import Services

log = logging.getLogger(__name__)

CHUNK_SIZE = 500
TWIN_WINDOW_S = 600.0  # the same advisory to the same area within 10 min is one advisory
MAX_EVERY_MIN = 7 * 24 * 60
CHART_HOURS = 24
_AT_RE = re.compile(r"^(?P<text>.*?)\s+at\s+(?P<h>[01]?\d|2[0-3])[:.](?P<m>[0-5]\d)\s*$", re.S)
# Anything that ends like "at <digits>:<digits>" is meant as a time: a wrong one is an error.
_AT_LIKE_RE = re.compile(r"\s+at\s+(?P<time>\d+\s*[:.]\s*\d+)\s*$", re.I)
MAX_ID_DIGITS = 9
MAX_AREA_CHARS = 60  # subscriptions.normalise_area keeps this much

USAGE_ADVISE = "Usage: !advise <area|*> <text> [at HH:MM]"
USAGE_BROADCAST = "Usage: !broadcast list | cancel <id> | every <minutes> <area|*> <text>"
ADVISORY_PREFIX = "Lifeline advisory: "


@dataclass(frozen=True, slots=True)
class FireResult:
    broadcast_id: int
    fire_key: str
    recipients: int  # rows this fire targets (new or already queued/sent)
    new_rows: int  # rows inserted by this call
    opted_out: int
    already_done: bool = False
    skipped_reason: str | None = None


def split_area(rest: str) -> tuple[str, str]:
    """``"ward 5" boil water`` / ``ward-5 boil water`` -> (area, text)."""
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        if end > 0:
            return rest[1:end].strip(), rest[end + 1 :].strip()
    head, _, tail = rest.partition(" ")
    return head.strip(), tail.strip()


def next_local_time(now: float, hour: int, minute: int) -> float:
    """The next HH:MM (server local time) strictly after ``now``."""
    local = datetime.fromtimestamp(now).astimezone()
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target.timestamp() <= now:
        target = (target + timedelta(days=1)).replace(hour=hour, minute=minute)
    return target.timestamp()


def _hhmm(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().strftime("%H:%M")


def _area_label(area: str) -> str:
    return "everyone" if area in ("*", "all") else area


def advisory_sms(text: str, budget: int) -> str:
    """The SMS a subscriber gets: who it is from, then the text, within ``budget`` segments."""
    return sms_text.fit(ADVISORY_PREFIX + text, budget)


class ArgumentError(ValueError):
    """A coordinator's command argument is wrong: the message says what and how to fix it."""


def check_time_suffix(text: str) -> None:
    """Refuse a text that ends like a time but is not a valid 24-hour HH:MM ("at 25:99")."""
    m = _AT_LIKE_RE.search(text)
    if m is not None and _AT_RE.match(text) is None:
        raise ArgumentError(
            f"'at {m['time']}' is not a time: write HH:MM, 24-hour, 00:00 to 23:59 "
            "(e.g. at 18:30). To send a text that ends in numbers now, end it with a full stop."
        )


def check_area(area: str) -> None:
    if area in ("*", "all"):
        return
    if not any(ch.isalnum() for ch in area):  # JOIN drops punctuation: nobody can join it
        raise ArgumentError(f"'{area}' is not an area name; use * for everyone.")
    if len(area.split()) > MAX_AREA_WORDS or len(area) > MAX_AREA_CHARS:
        raise ArgumentError(
            f"An area is at most {MAX_AREA_WORDS} words and {MAX_AREA_CHARS} characters "
            "(what people text after JOIN); use * for everyone."
        )
    if any(not ch.isprintable() for ch in area):
        raise ArgumentError("The area name holds control characters; type it again.")


def parse_broadcast_id(arg: str) -> int:
    digits = arg.removeprefix("#")
    if not digits.isdecimal() or not digits.isascii() or len(digits) > MAX_ID_DIGITS:
        raise ArgumentError(
            f"'{arg}' is not a broadcast id: use the number from !broadcast list, "
            "e.g. !broadcast cancel 12."
        )
    return int(digits)


class Broadcasts:
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
            f"Advisory #{b.id} to {_area_label(b.area)} was due at {_hhmm(b.run_at)} but the "
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
        texts = {
            Channel.SMS: advisory_sms(b.text, self.s.settings.sms.segment_budget),
            Channel.MATRIX: f"Advisory for {_area_label(b.area)}: {b.text}",
        }
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
                    conn,
                    (
                        Outbound(
                            channel=s.channel,
                            peer=s.peer,
                            conversation=s.conversation,
                            text=texts[s.channel],
                            idem_key=f"adv:{b.id}:{key}:{s.channel}:{s.peer}",
                            lane=Lane.BROADCAST,
                            meta={"broadcast_id": b.id, "fire": key},
                        )
                        for s in chunk
                        if (s.channel, s.peer) not in stopped
                    ),
                    now=self.s.clock(),
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
            _area_label(b.area),
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
        outs: list[Outbound] = [
            Outbound(
                channel=Channel.MATRIX,
                peer=room,
                conversation=room,
                text=text,
                idem_key=f"sitrep:{b.id}:{key}:text",
                lane=Lane.BROADCAST,
            )
        ]
        path = self.chart_dir / f"sitrep-{b.id}-{key}.png"
        try:
            data = await self.chart_data(slot)
            await asyncio.to_thread(render_sitrep_chart, data, path)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sitrep %s: chart rendering failed; posting the text only", key)
        else:
            outs.append(
                Outbound(
                    channel=Channel.MATRIX,
                    peer=room,
                    conversation=room,
                    text="sitrep chart",
                    idem_key=f"sitrep:{b.id}:{key}:chart",
                    lane=Lane.BROADCAST,
                    meta={"image_path": str(path), "body": "sitrep chart"},
                )
            )
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
        now = self.s.clock()
        views = await incidents.views(self.s.db, status="open")
        by_priority = Counter(v.incident.priority for v in views)
        by_status = Counter(v.incident.status for v in views)
        unassigned = await dispatch.select_cases(self.s, "unassigned")
        overdue = await dispatch.select_cases(self.s, "overdue")
        teams = await incidents.list_teams(self.s.db)
        by_team = Counter(t.status for t in teams)
        overdue_min = self.s.settings.dispatch.overdue_after_min
        lines = [
            f"SITREP {_hhmm(at)} - {len(views)} open case(s)",
            "by priority: " + ", ".join(f"{p.label} {by_priority[p]}" for p in Priority),
            "by status: " + (", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "-"),
            f"unassigned: {len(unassigned)}"
            + (f" (critical {sum(v.incident.priority is Priority.CRITICAL for v in unassigned)})")
            + f"; overdue (> {overdue_min} min, no team): {len(overdue)}"
            + (": " + ", ".join(v.incident.case for v in overdue[:10]) if overdue else "")
            + (" …" if len(overdue) > 10 else ""),
            f"teams: {by_team['available']} available, {by_team['busy']} busy"
            + (
                " (" + ", ".join(t.id for t in teams if t.status == "busy") + ")"
                if by_team["busy"]
                else ""
            )
            + (f", {by_team['offline']} offline" if by_team["offline"] else ""),
        ]
        if self._status is not None:
            try:
                lines.append(await self._status())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("sitrep: status section failed")
                lines.append(f"(status unavailable: {type(exc).__name__})")
        log.debug("sitrep text built at %s for slot %s", now, at)
        return "\n".join(lines)

    async def chart_data(self, at: float, hours: int = CHART_HOURS) -> ChartData:
        """Hourly buckets over the last ``hours``: new cases by priority, open cases, teams busy.

        Resolution and team release times are read from ``updated_at`` (the last change), which
        is exact for closed cases and released teams and a fair proxy otherwise."""
        end = (int(at // 3600) + 1) * 3600.0
        starts = [end - 3600.0 * (hours - i) for i in range(hours)]
        db = self.s.db
        rows = await db.fetchall(
            "SELECT priority, status, created_at, updated_at FROM incidents "
            "WHERE status IN ('open','dispatch_requested','assigned') OR updated_at >= ?",
            (starts[0],),
        )
        new: dict[str, list[int]] = {p.label: [0] * hours for p in Priority}
        open_count = [0] * hours
        for r in rows:
            created, closed = float(r["created_at"]), None
            if r["status"] not in incidents.OPEN_STATUSES:
                closed = float(r["updated_at"])
            if created >= starts[0]:
                i = min(int((created - starts[0]) // 3600), hours - 1)
                new[Priority(int(r["priority"])).label][i] += 1
            for i, s in enumerate(starts):
                b_end = s + 3600.0
                if created < b_end and (closed is None or closed >= b_end):
                    open_count[i] += 1
        active_marks = ",".join("?" * len(incidents.ACTIVE_DISPATCH))
        sql = f"""SELECT team_id, status, created_at, updated_at FROM dispatches
                  WHERE team_id IS NOT NULL AND (status IN ({active_marks}) OR updated_at >= ?)"""  # noqa: S608
        drows = await db.fetchall(sql, (*incidents.ACTIVE_DISPATCH, starts[0]))
        busy: list[set[str]] = [set() for _ in range(hours)]
        for r in drows:
            t0 = float(r["created_at"])
            t1 = at if r["status"] in incidents.ACTIVE_DISPATCH else float(r["updated_at"])
            for i, s in enumerate(starts):
                if t0 < s + 3600.0 and t1 >= s:
                    busy[i].add(str(r["team_id"]))
        teams = await incidents.list_teams(db)
        return ChartData(
            title=f"Lifeline sitrep {_hhmm(at)} — last {hours} h",
            bucket_starts=starts,
            new_by_priority=new,
            open_count=open_count,
            teams_busy=[len(b) for b in busy],
            teams_total=len(teams),
        )

    # ---- commands -------------------------------------------------------------------------------

    async def command(self, name: str, args: Sequence[str], rest: str, actor: str) -> str:
        """``!advise`` / ``!broadcast`` from a coordinator (authority checked by the caller)."""
        try:
            if name == "advise":
                return await self._advise(rest, actor)
            return await self._broadcast(args, rest, actor)
        except ArgumentError as exc:
            log.info("!%s from %s refused: %s", name, actor, exc)
            cancelling = name == "broadcast" and bool(args) and args[0].lower() == "cancel"
            return f"{exc} Nothing was {'cancelled' if cancelling else 'sent'}."

    async def _broadcast(self, args: Sequence[str], rest: str, actor: str) -> str:
        if not args:
            return USAGE_BROADCAST
        sub = args[0].lower()
        if sub == "list":
            return await self.list_text()
        if sub == "cancel":
            if len(args) != 2:
                raise ArgumentError("Usage: !broadcast cancel <id> (one id, from !broadcast list).")
            return await self.cancel(parse_broadcast_id(args[1]), actor)
        if sub == "every" and len(args) >= 2:
            minutes = args[1]
            if not minutes.isdecimal() or not minutes.isascii() or len(minutes) > 6:
                raise ArgumentError(
                    f"Minutes must be a whole number from 1 to {MAX_EVERY_MIN}; got '{minutes}'."
                )
            if not 1 <= int(minutes) <= MAX_EVERY_MIN:
                raise ArgumentError(
                    f"Minutes must be a whole number from 1 to {MAX_EVERY_MIN}; got {minutes}."
                )
            after = rest.split(None, 2)[2] if len(rest.split(None, 2)) == 3 else ""
            area, text, quoted = await self._split_area(after)
            if not area or not text:
                return USAGE_BROADCAST
            check_area(area)
            check_time_suffix(text)
            return await self.create(area, text, actor, every_min=int(minutes), quoted=quoted)
        return USAGE_BROADCAST

    async def _split_area(self, rest: str) -> tuple[str, str, bool]:
        """Like split_area, but an unquoted multi-word area people have joined ("!advise Char
        Bhadrasan Water rising") is recognised: the longest known area the text starts with.
        The flag says whether the area was quoted (or recognised as a known multi-word area)."""
        if rest.strip()[:1] not in ("'", '"'):
            known = await subscriptions.area_counts(self.s.db)
            words = rest.split()
            for n in range(min(len(words) - 1, MAX_AREA_WORDS), 1, -1):
                if subscriptions.normalise_area(" ".join(words[:n])) in known:
                    return " ".join(words[:n]), " ".join(words[n:]), True
            area, text = split_area(rest)
            return area, text, False
        area, text = split_area(rest)
        return area, text, True

    async def _advise(self, rest: str, actor: str) -> str:
        area, text, quoted = await self._split_area(rest)
        if not area or not text:
            return USAGE_ADVISE
        check_area(area)
        check_time_suffix(text)
        m = _AT_RE.match(text)
        if m is not None:
            if not m["text"].strip():
                return USAGE_ADVISE
            at = next_local_time(self.s.clock(), int(m["h"]), int(m["m"]))
            return await self.create(area, m["text"].strip(), actor, at=at, quoted=quoted)
        return await self.create(area, text, actor, quoted=quoted)

    async def create(
        self,
        area: str,
        text: str,
        actor: str,
        *,
        every_min: int | None = None,
        at: float | None = None,
        quoted: bool = True,
    ) -> str:
        """Create an advisory: now (and every ``every_min``), or once at ``at``.

        ``quoted`` False: the area was the first word of an unquoted command, so an unknown
        area may be the first word of a longer name; the warning then says how to quote it."""
        now = self.s.clock()
        key_area = "*" if area.strip() in ("*", "all") else subscriptions.normalise_area(area)
        budget = self.s.settings.sms.segment_budget
        fitted = advisory_sms(text, budget)
        note = (
            f" (text shortened to {budget} SMS)"
            if fitted != sms_text.gsm_fold(sms_text.to_plain(ADVISORY_PREFIX + text))
            else ""
        )
        if key_area != "*":
            counts = await subscriptions.area_counts(self.s.db)
            if key_area not in counts:
                known = ", ".join(f"{a} ({n})" for a, n in list(counts.items())[:8]) or "none"
                note += f" — WARNING: nobody has joined '{key_area}' (known areas: {known})"
                if not quoted:
                    note += '; quote an area of several words: !advise "char bhadrasan" …'
        twin = await store.recent_twin(
            self.s.db,
            area=key_area,
            text=text,
            every_min=every_min,
            since=now - TWIN_WINDOW_S,
            at=at,
        )
        if twin is not None:
            if at is not None:
                log.warning("broadcast #%d: same scheduled advisory again from %s", twin.id, actor)
                return f"Advisory #{twin.id} is already scheduled for {_hhmm(twin.run_at)}."
            # Deduplicated by recipient: whoever has it already gets nothing, whoever joined
            # since (or was not reachable through a subscription then) gets it now.
            current = twin.slot_at(now) if twin.repeating else None
            result = await self.fire(twin, twin.run_at if current is None else current, top_up=True)
            log.warning(
                "broadcast #%d: same advisory again from %s; %d new recipient(s), no second copy",
                twin.id,
                actor,
                result.new_rows,
            )
            return (
                f"Advisory #{twin.id} was already sent to {_area_label(key_area)} "
                f"{int((now - twin.created_at) // 60)} min ago: no second copy to its "
                f"{result.recipients - result.new_rows} recipient(s); queued {result.new_rows} "
                f"for people who joined since{note}."
            )
        run_at = at if at is not None else store.floor_minute(now)
        async with self.s.db.transaction() as conn:
            bid = await store.create(
                conn,
                kind=store.KIND_ADVISORY,
                area=key_area,
                text=text,
                every_min=every_min,
                run_at=run_at,
                created_by=actor,
                now=now,
            )
            await incidents.audit(
                conn,
                actor=actor,
                action="broadcast.created",
                now=now,
                detail={"broadcast": bid, "area": key_area, "every_min": every_min, "at": at},
            )
        b = await store.get(self.s.db, bid)
        assert b is not None
        log.info(
            "broadcast #%d created by %s: %s to %s",
            bid,
            actor,
            f"every {every_min} min" if every_min else ("at " + _hhmm(run_at) if at else "now"),
            _area_label(key_area),
        )
        if at is not None:
            self._register(b)
            return (
                f"Advisory #{bid} to {_area_label(key_area)} scheduled for {_hhmm(at)} "
                f"({len(await subscriptions.subscribers(self.s.db, key_area))} subscriber(s) "
                f"now){note}."
            )
        result = await self.fire(b, run_at)
        reply = (
            f"Advisory #{bid} to {_area_label(key_area)}: queued {result.recipients} message(s)"
            + (f", {result.opted_out} opted out" if result.opted_out else "")
            + note
        )
        if every_min:
            self._register(b)
            reply += f"; repeats every {every_min} min (next {_hhmm(run_at + every_min * 60)})"
        return reply + "."

    async def cancel(self, broadcast_id: int, actor: str) -> str:
        b = await store.get(self.s.db, broadcast_id)
        if b is None:
            return f"No broadcast #{broadcast_id}."
        if b.kind == store.KIND_SITREP:
            return "The sitrep comes from the config (broadcasts.sitrep_every_min = 0 disables it)."
        now = self.s.clock()
        async with self.s.db.transaction() as conn:
            changed = await store.set_status(conn, b.id, "cancelled", now, only_active=True)
            withdrawn = await store.withdraw_queued(conn, b.id, now)
            if changed or withdrawn:
                await incidents.audit(
                    conn,
                    actor=actor,
                    action="broadcast.cancelled",
                    now=now,
                    detail={"broadcast": b.id, "withdrawn": withdrawn},
                )
        self.scheduler.remove(self._job_id(b.id))
        if not changed and not withdrawn:
            return f"Broadcast #{b.id} is already {b.status}; nothing to cancel."
        log.info(
            "broadcast #%d cancelled by %s; %d queued message(s) withdrawn", b.id, actor, withdrawn
        )
        return f"Cancelled broadcast #{b.id}; {withdrawn} queued message(s) withdrawn."

    async def list_text(self) -> str:
        items = await store.active(self.s.db)
        if not items:
            return "No active broadcasts."
        nexts = {j.id: j.next_run_at for j in self.scheduler.jobs()}
        lines = []
        for b in items:
            when = f"every {b.every_min} min" if b.every_min else f"once at {_hhmm(b.run_at)}"
            nxt = nexts.get(self._job_id(b.id))
            last = await store.last_fire(self.s.db, b.id)
            what = (
                "sitrep to the coordination room"
                if b.kind == store.KIND_SITREP
                else f'{_area_label(b.area)}: "{b.text[:60]}{"…" if len(b.text) > 60 else ""}"'
            )
            lines.append(
                f"#{b.id} {b.kind} {when} -> {what}"
                + (f"; next {_hhmm(nxt)}" if nxt else "")
                + (f"; last {last[0]} ({last[1]} recipient(s))" if last else "")
            )
        return "\n".join(lines)
