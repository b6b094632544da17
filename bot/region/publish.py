"""Publishing this district's changes to the federated regional room.

How a change travels (nothing lost, nothing sent twice, nothing waits on the region):

1. Migration 7's triggers mark the changed case or the team list in ``region_dirty`` inside the
   SAME transaction as the change, whichever code path made it; the mark is as durable as the
   change. (Events with no table row behind them, need/lend/return and the heartbeat, are
   appended directly with ``record`` in their own transaction.)
2. Just before that transaction commits (``Database.before_commit``), the marks become numbered
   entries of ``region_log``: the case's shareable state is compared with what was last
   published for it, so one transaction's change is one event, never zero and never two (the
   dispatch, team and case rows an approval writes are one change), and the seq commits with the
   change. Should numbering fail, it is undone alone (savepoint), logged, and the marks wait for
   the publisher's next pass (every commit that queued outbound work wakes it, else once a
   second); marks made before the publisher started are numbered by that pass too.
3. Once the bot is in the regional room, entries go to the Matrix outbox in seq order, in the
   same transaction that marks them handed over, with idem_key = ``lifeline-region-{D}-{seq}``:
   the outbox worker sends it as the Matrix txn_id, so a resend after a crash or a cut link is
   the same event on the homeserver. Transient failures (homeserver down) retry with backoff for
   as long as it takes, in order (one message per room in flight); a permanent one is
   dead-lettered with its reason and logged. Federation then carries the room to the others.

What is published is decided by bot/region/events.py: no phone number, no reporter, no victim's
message (the case summary is written here from the structured facts, not the victim's words).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiosqlite

from bot import backoff
from bot.errors import LifelineError
from bot.models import Channel, Lane, Outbound, Priority
from bot.region import events
from bot.region.events import RegionEvent
from bot.runtime import Runtime
from bot.store import outbox, region_log
from bot.store.region_log import SITREP, TEAMS, case_subject
from config.settings import RegionSettings

log = logging.getLogger(__name__)

LANE = Lane.BROADCAST  # after victims' replies and alerts; in order among themselves
POLL_S = 1.0
_TEAM_STATE = {"available": "free", "busy": "busy", "offline": "offline"}


def publishing(region: RegionSettings) -> bool:
    return bool(region.district and region.room)


async def record(
    conn: aiosqlite.Connection,
    region: RegionSettings,
    kind: str,
    data: dict[str, Any],
    now: float,
    *,
    subject: str = "",
) -> RegionEvent | None:
    """Append one event to the district's log in the caller's transaction (need/lend/return,
    or any change without a trigger); None when this gateway does not publish. Raises
    EventError (before taking a seq) for data that does not fit the schema."""
    if not publishing(region):
        return None
    checked = events.build(region.district, 1, kind, now, data)
    seq = await region_log.append(
        conn, district=region.district, kind=kind, at=now, data=checked.data, subject=subject
    )
    log.info("region: recorded %s %s-%d", kind, region.district, seq)
    return replace(checked, seq=seq)


# ---- marks → entries ---------------------------------------------------------------------------


async def collect(conn: aiosqlite.Connection, region: RegionSettings, now: float) -> int:
    """Turn change marks into entries (one per real change); returns how many were recorded."""
    made = 0
    for subject in await region_log.take_marks(conn):
        try:
            if subject == TEAMS:
                made += await _teams(conn, region, now)
            elif subject.startswith("case:"):
                made += await _case(conn, region, int(subject.partition(":")[2]), now)
            else:
                log.warning("region: unknown change mark %r dropped", subject)
        except events.EventError as exc:  # a bug, not the link: loud, and the rest goes on
            log.error("region: change %s cannot be published: %s", subject, exc.reason)
    return made


def numbering_hook(
    region: RegionSettings, clock: Callable[[], float]
) -> Callable[[aiosqlite.Connection], Awaitable[None]]:
    """For ``Database.before_commit``: the changes a transaction marked get their seq in that
    same transaction. A failure here is logged and undone (savepoint) without failing the
    change itself: the marks stay for the publisher's next pass."""

    async def number(conn: aiosqlite.Connection) -> None:
        if not await region_log.has_marks(conn):
            return
        await conn.execute("SAVEPOINT region_numbering")
        try:
            await collect(conn, region, clock())
        except Exception:  # logged; the victim's transaction must commit whatever happens here
            log.exception("region: numbering in the change's transaction failed; retried later")
            await conn.execute("ROLLBACK TO region_numbering")
        await conn.execute("RELEASE region_numbering")

    return number


def _summary(row: aiosqlite.Row) -> str:
    """A line from the structured facts; never the reporter's words."""
    people = row["people_count"] or "?"
    needs = row["needs"] or "not known yet"
    reported = time.strftime("%H:%M UTC", time.gmtime(float(row["created_at"])))
    return f"{people} people; needs: {needs}; reported by {row['channel']} at {reported}"


async def _case(
    conn: aiosqlite.Connection, region: RegionSettings, incident_id: int, now: float
) -> int:
    row = await region_log.case_row(conn, incident_id)
    if row is None:
        return 0
    priority = Priority(int(row["priority"]))
    state = {
        "code": str(row["case_code"]),
        "status": str(row["status"]),
        "priority": priority.label,
        "team": row["team"],
    }
    subject = case_subject(incident_id)
    before = await region_log.published(conn, subject)
    if before == state:
        return 0
    if before is None:
        if priority > Priority.HIGH:
            return 0  # not a regional case (yet): an escalation publishes it then
        data: dict[str, Any] = {
            **state,
            "location": str(row["location"] or ""),
            "people": int(row["people_count"] or 0),
            "needs": str(row["needs"] or ""),
            "summary": _summary(row),
        }
        if row["lat"] is not None and row["lon"] is not None:
            data.update(lat=events.degrees(row["lat"]), lon=events.degrees(row["lon"]))
        kind = "case"
    else:
        kind, data = "case_state", state
    await record(conn, region, kind, data, now, subject=subject)
    await region_log.set_published(conn, subject, state, now)
    return 1


async def _teams(conn: aiosqlite.Connection, region: RegionSettings, now: float) -> int:
    teams = [
        {
            "id": str(t["id"]),
            "kind": str(t["kind"]),
            "status": t["status"]
            if t["status"] in events.TEAM_STATES
            else _TEAM_STATE.get(str(t["status"]), "busy"),
        }
        for t in await region_log.team_rows(conn)
    ]
    if await region_log.published(conn, TEAMS) == teams:
        return 0
    await record(conn, region, "teams", {"teams": teams}, now, subject=TEAMS)
    await region_log.set_published(conn, TEAMS, teams, now)
    return 1


async def sitrep(conn: aiosqlite.Connection, region: RegionSettings, now: float) -> int:
    """Counts of the open cases, published when they differ from the last sitrep."""
    by_priority: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for r in await region_log.open_counts(conn):
        label = Priority(int(r["priority"])).label
        by_priority[label] = by_priority.get(label, 0) + int(r["n"])
        by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + int(r["n"])
    data = {"open": sum(by_status.values()), "by_priority": by_priority, "by_status": by_status}
    if await region_log.published(conn, SITREP) == data:
        return 0
    await record(conn, region, "sitrep", data, now, subject=SITREP)
    await region_log.set_published(conn, SITREP, data, now)
    return 1


async def heartbeat(conn: aiosqlite.Connection, region: RegionSettings, now: float) -> None:
    """A ``hello`` (unless the last one is still waiting to go out: while the link is down they
    would only pile up), the sitrep if it changed, and the team list if it changed."""
    prefix = events.txn_id(region.district, 0)[:-1]
    if not await region_log.waiting_hello(conn, region.district, prefix):
        every_s = round(region.heartbeat_min * 60)
        await record(conn, region, "hello", {"every_s": every_s}, now, subject="hello")
    await sitrep(conn, region, now)
    await _teams(conn, region, now)


# ---- entries → outbox --------------------------------------------------------------------------


async def hand_over(conn: aiosqlite.Connection, district: str, room_id: str, now: float) -> int:
    """Unsent entries to the Matrix outbox, in seq order; returns how many."""
    count = 0
    for entry in await region_log.unsent(conn, district):
        await region_log.set_enqueued(conn, district, entry.seq, now)
        try:  # checked again: what leaves must fit the schema of this version
            ev = events.build(entry.district, entry.seq, entry.kind, entry.at, entry.data)
        except events.EventError as exc:
            log.error("region: %s-%d not published: %s", district, entry.seq, exc.reason)
            continue
        out = Outbound(
            channel=Channel.MATRIX,
            peer=room_id,
            conversation=room_id,
            text=events.body(ev),
            idem_key=ev.txn_id,
            lane=LANE,
            meta={"extra_content": {events.FIELD: ev.to_field()}},
        )
        await outbox.enqueue(conn, out, now=now)
        count += 1
    return count


class RegionPublisher:
    """The task that joins the regional room, turns marks into entries, hands them to the
    outbox and beats the heartbeat. It never stops the gateway: every failure is logged and
    retried; victims are served whatever happens to the region."""

    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.time) -> None:
        self.rt = rt
        self.clock = clock
        self.region = rt.services.settings.region
        self.room_id: str | None = None

    async def run(self) -> None:
        if not publishing(self.region):
            if self.region.district:
                log.info(
                    "region: district %s, no [region] room: not publishing", self.region.district
                )
            return
        log.info("region: district %s publishing to %s", self.region.district, self.region.room)
        self.rt.db.before_commit.append(numbering_hook(self.region, self.clock))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._join(), name="region-join")
            tg.create_task(self._pump(), name="region-pump")
            tg.create_task(self._beat(), name="region-heartbeat")

    async def _join(self) -> None:
        """Into the regional room once Matrix is up; retried (with backoff) until it works."""
        attempt = 0
        while self.room_id is None:
            transport = self.rt.matrix
            if transport is None:
                await asyncio.sleep(POLL_S)
                continue
            await transport.wait_caught_up()
            try:
                self.room_id = await transport.join_room(self.region.room)
            except LifelineError as exc:
                attempt += 1
                wait_s = backoff.delay(attempt, base=2.0, cap=120.0)
                level = logging.WARNING if exc.transient else logging.ERROR
                log.log(
                    level,
                    "region: cannot join %s (%s); retry in %.0f s",
                    self.region.room,
                    exc.reason,
                    wait_s,
                )
                await asyncio.sleep(wait_s)
                continue
            log.info("region: in the regional room %s (%s)", self.region.room, self.room_id)
            self.rt.wakers.region.wake()

    async def pump(self) -> int:
        """One pass: marks → entries → outbox (when in the room). Returns entries handed over."""
        if not await region_log.pending(self.rt.db):
            return 0
        now = self.clock()
        async with self.rt.db.transaction() as conn:
            await collect(conn, self.region, now)
            if self.room_id is None:
                return 0
            handed = await hand_over(conn, self.region.district, self.room_id, now)
        if handed:
            self.rt.wakers.matrix.wake()
        return handed

    async def _pump(self) -> None:
        failures = 0
        while True:
            try:
                await self.pump()
                failures = 0
            except Exception:  # logged; the region must never stop the gateway
                failures += 1
                log.exception("region: publishing pass failed (%d in a row)", failures)
                await asyncio.sleep(backoff.delay(failures, base=1.0, cap=60.0))
            await self.rt.wakers.region.sleep(POLL_S)

    async def _beat(self) -> None:
        while True:
            try:
                async with self.rt.db.transaction() as conn:
                    await heartbeat(conn, self.region, self.clock())
                self.rt.wakers.region.wake()
            except Exception:  # logged; the next beat tries again
                log.exception("region: heartbeat failed")
            await asyncio.sleep(self.region.heartbeat_min * 60)
