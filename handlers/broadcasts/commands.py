"""Coordinator commands (via handlers/responder.py); every argument is checked first, and a wrong
one gets a clear error with nothing sent or scheduled:
  !advise <area|*> <text>              send now to the area's subscribers ("queued N")
  !advise <area|*> <text> at HH:MM     once, at the next HH:MM (server local time, 24-hour)
  !broadcast every <min> <area> <text> now and every <min> minutes
  !broadcast list | cancel <id>

The same advisory again within TWIN_WINDOW_S (a re-sent or re-processed command, or a second
coordinator sending it too) is the first one topped up: it goes to whoever subscribed since and
to nobody twice (deduplicated by recipient, through the per-recipient idempotency key)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.store import broadcasts as store
from bot.store import incidents, subscriptions
from bot.triage import MAX_AREA_WORDS
from handlers.broadcasts.advisory import area_label, hhmm, shortened_note, unknown_area_note
from handlers.broadcasts.args import (
    AT_RE,
    USAGE_ADVISE,
    USAGE_BROADCAST,
    ArgumentError,
    check_area,
    check_time_suffix,
    next_local_time,
    parse_broadcast_id,
    parse_every_minutes,
    split_area,
)
from handlers.broadcasts.engine import BroadcastEngine

log = logging.getLogger(__name__)

TWIN_WINDOW_S = 600.0  # the same advisory to the same area within 10 min is one advisory


class Broadcasts(BroadcastEngine):
    """The broadcast engine with the coordinators' ``!advise`` / ``!broadcast`` on top."""

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
            minutes = parse_every_minutes(args[1])
            after = rest.split(None, 2)[2] if len(rest.split(None, 2)) == 3 else ""
            area, text, quoted = await self._split_area(after)
            if not area or not text:
                return USAGE_BROADCAST
            check_area(area)
            check_time_suffix(text)
            return await self.create(area, text, actor, every_min=minutes, quoted=quoted)
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
        m = AT_RE.match(text)
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
        note = shortened_note(text, self.s.settings.sms.segment_budget)
        if key_area != "*":
            counts = await subscriptions.area_counts(self.s.db)
            note += unknown_area_note(key_area, counts, quoted=quoted)
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
                return f"Advisory #{twin.id} is already scheduled for {hhmm(twin.run_at)}."
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
                f"Advisory #{twin.id} was already sent to {area_label(key_area)} "
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
            f"every {every_min} min" if every_min else ("at " + hhmm(run_at) if at else "now"),
            area_label(key_area),
        )
        if at is not None:
            self._register(b)
            return (
                f"Advisory #{bid} to {area_label(key_area)} scheduled for {hhmm(at)} "
                f"({len(await subscriptions.subscribers(self.s.db, key_area))} subscriber(s) "
                f"now){note}."
            )
        result = await self.fire(b, run_at)
        reply = (
            f"Advisory #{bid} to {area_label(key_area)}: queued {result.recipients} message(s)"
            + (f", {result.opted_out} opted out" if result.opted_out else "")
            + note
        )
        if every_min:
            self._register(b)
            reply += f"; repeats every {every_min} min (next {hhmm(run_at + every_min * 60)})"
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
            when = f"every {b.every_min} min" if b.every_min else f"once at {hhmm(b.run_at)}"
            nxt = nexts.get(self._job_id(b.id))
            last = await store.last_fire(self.s.db, b.id)
            what = (
                "sitrep to the coordination room"
                if b.kind == store.KIND_SITREP
                else f'{area_label(b.area)}: "{b.text[:60]}{"…" if len(b.text) > 60 else ""}"'
            )
            lines.append(
                f"#{b.id} {b.kind} {when} -> {what}"
                + (f"; next {hhmm(nxt)}" if nxt else "")
                + (f"; last {last[0]} ({last[1]} recipient(s))" if last else "")
            )
        return "\n".join(lines)
