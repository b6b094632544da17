"""Mutual aid between districts: lending a team, giving it back, asking for help.

How a lent team is used (the decision this module implements):
- ``!lend boat-3 LAL [hours]`` in BHO: boat-3 becomes ``lent`` in BHO's inventory (never picked
  there) and a ``lend`` event is published.
- LAL's gateway reads it and adds ``BHO/boat-3`` to its inventory, available: LAL dispatches it
  like its own teams (``!approve LAL-1234 BHO/boat-3``, or picked by kind).
- LAL never contacts BHO's crew: its only channel to them is the regional room. LAL's case_state
  event names the team (``team: BHO/boat-3``); BHO's gateway reads it and posts the dispatch notice
  (case, place, people, needs) in BHO's coordination room, where BHO's people reach their crew.
- ``!return boat-3`` in BHO takes it back (a ``return`` event; LAL's ``BHO/boat-3`` goes offline);
  ``!return BHO/boat-3`` in LAL hands it back (a ``return`` with ``to: BHO``; BHO's gateway then
  marks boat-3 available and records the authoritative ``return`` itself).
- ``!need LAL boat 2 [note]`` (or ``!need * …``) publishes a request; the asked district's
  coordinators are told, and everyone sees it in ``!region``.
Lend state is ordered by the lender's seqs only: the lender is the authority on its team."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import TeamStatus
from bot.region.events import ANY_DISTRICT, RegionEvent
from bot.store import region_view as view
from bot.store import teams as team_store
from handlers.public_text import inline

log = logging.getLogger(__name__)

# The publish log (regionfed's bot/store/region_log.py): record a change inside the caller's
# transaction, get its seq; it is published from there, in order, once.
Recorder = Callable[[aiosqlite.Connection, str, dict[str, Any], float], Awaitable[int]]
# Post a line to this district's coordination room (outbox, same transaction): conn, text, key, now.
Notify = Callable[[aiosqlite.Connection, str, str, float], Awaitable[None]]
TEAM_KINDS = ("boat", "medical", "supply")


class AidError(Exception):
    """A mutual-aid command that cannot be carried out; the message says why."""


def borrowed_id(lender: str, team: str) -> str:
    return f"{lender}/{team}"


def until_text(until: float | None) -> str:
    return "" if until is None else " until " + time.strftime("%H:%M UTC", time.gmtime(until))


@dataclass(frozen=True)
class MutualAid:
    district: str
    record: Recorder
    notify: Notify

    # ---- what the room says ----------------------------------------------------------------------

    async def lend_state(self, conn: aiosqlite.Connection, e: RegionEvent) -> bool:
        """The regional view of lends, from the lender's events; True when this event changed it."""
        d = e.data
        if e.kind == "lend":
            return await view.set_lend(
                conn,
                lender=e.district,
                team=str(d["team"]),
                borrower=str(d["to"]),
                seq=e.seq,
                active=True,
                until=d.get("until"),
                at=e.at,
            )
        if e.kind == "return" and d.get("to") in (None, e.district):
            held = await view.lend_of(conn, e.district, str(d["team"]))
            return await view.set_lend(
                conn,
                lender=e.district,
                team=str(d["team"]),
                borrower=held.borrower if held else "",
                seq=e.seq,
                active=False,
                until=None,
                at=e.at,
            )
        return False

    async def on_peer_event(
        self, conn: aiosqlite.Connection, e: RegionEvent, changed: bool, now: float
    ) -> None:
        """What another district's event means for this one's inventory and coordinators."""
        d, key = e.data, f"region:{e.district}:{e.seq}"
        mine = f"{self.district}/"
        match e.kind:
            case "case" | "case_state" if str(d.get("team") or "").startswith(mine):
                team = str(d["team"])[len(mine) :]
                where = f" at {inline(str(d.get('location') or ''), 80)}" if "location" in d else ""
                await self.notify(
                    conn,
                    f"REGION: {e.district} dispatched your lent team {team} on {d['code']}"
                    f"{where} ({d.get('status', '?')}, {d.get('priority', '?')}). "
                    f"Tell the crew; {e.district}'s coordinators follow the case.",
                    key,
                    now,
                )
            case "need" if d.get("to") in (self.district, ANY_DISTRICT):
                note = f": {d['note']}" if d.get("note") else ""
                await self.notify(
                    conn,
                    f"REGION: {e.district} asks for {d['count']} {d['kind']}{note}. "
                    f"To help: !lend <team> {e.district} [hours]",
                    key,
                    now,
                )
            case "lend" if changed and d.get("to") == self.district:
                await self._borrow(conn, e, key, now)
            case "return" if d.get("to") == self.district:
                await self._handed_back(conn, e, key, now)
            case "return" if changed:
                await self._recalled(conn, e, key, now)

    async def _borrow(
        self, conn: aiosqlite.Connection, e: RegionEvent, key: str, now: float
    ) -> None:
        d, team = e.data, str(e.data["team"])
        known = next(
            (t for t in await view.teams(conn) if t.district == e.district and t.team == team),
            None,
        )
        kind = str(d.get("kind") or (known.kind if known else "") or "boat")
        tid = borrowed_id(e.district, team)
        await view.take_borrowed(conn, tid, kind, e.district, int(d.get("capacity") or 1), now)
        log.info(
            "region: %s lent %s to %s: %s is in the inventory", e.district, team, self.district, tid
        )
        await self.notify(
            conn,
            f"REGION: {e.district} lent {team} ({kind}) to {self.district}"
            f"{until_text(d.get('until'))}. Dispatch it as {tid}, e.g. !approve <case> {tid}; "
            f"{e.district}'s coordinators pass the dispatch to the crew.",
            key,
            now,
        )

    async def _handed_back(
        self, conn: aiosqlite.Connection, e: RegionEvent, key: str, now: float
    ) -> None:
        team = str(e.data["team"])
        held = await view.lend_of(conn, self.district, team)
        if held is None or not held.active or held.borrower != e.district:
            log.info(
                "region: %s handed back %s, which is not lent to it; ignored", e.district, team
            )
            return
        await self._end_lend(conn, held.team, held.borrower, now)
        await self.notify(
            conn, f"REGION: {e.district} handed back {held.team}; it is available here.", key, now
        )

    async def _recalled(
        self, conn: aiosqlite.Connection, e: RegionEvent, key: str, now: float
    ) -> None:
        held = await view.lend_of(conn, e.district, str(e.data["team"]))
        if held is None or held.borrower != self.district:
            return
        tid = borrowed_id(e.district, held.team)
        status = await view.team_status(conn, tid)
        await view.set_team(conn, tid, TeamStatus.OFFLINE, now)
        busy = (
            " It was on a dispatch here: reassign that case." if status == TeamStatus.BUSY else ""
        )
        log.info("region: %s took back %s (%s offline here)", e.district, held.team, tid)
        await self.notify(
            conn,
            f"REGION: {e.district} took back {held.team}; {tid} is no longer here.{busy}",
            key,
            now,
        )

    async def _end_lend(
        self, conn: aiosqlite.Connection, team: str, borrower: str, now: float
    ) -> int:
        if await view.team_status(conn, team) == TeamStatus.LENT:
            await view.set_team(conn, team, TeamStatus.AVAILABLE, now)
        seq = await self._publish_lend(conn, "return", {"team": team}, borrower, None, now)
        log.info("region: %s is back from %s (return #%d)", team, borrower, seq)
        return seq

    async def _publish_lend(
        self,
        conn: aiosqlite.Connection,
        kind: str,
        data: dict[str, Any],
        borrower: str,
        until: int | None,
        now: float,
    ) -> int:
        """Record this district's own lend or return, and hold its state as of that seq (the
        event read back from the room is then not newer, and changes nothing)."""
        seq = await self.record(conn, kind, data, now)
        await view.set_lend(
            conn,
            lender=self.district,
            team=str(data["team"]),
            borrower=borrower,
            seq=seq,
            active=kind == "lend",
            until=until,
            at=now,
        )
        return seq

    # ---- what coordinators type --------------------------------------------------------------

    async def lend(
        self,
        conn: aiosqlite.Connection,
        team_id: str,
        to: str,
        hours: float | None,
        peers: set[str],
        now: float,
    ) -> str:
        to = to.upper()
        if to == self.district:
            raise AidError(f"{to} is this district")
        if to not in peers:
            raise AidError(f"no district {to} in [region] peers ({', '.join(sorted(peers))})")
        team = await team_store.pick_team(conn, "", team_id)
        if team is None or "/" in team.id:
            raise AidError(f"no team {team_id} of {self.district} (see !teams)")
        if team.status != TeamStatus.AVAILABLE:
            raise AidError(f"team {team.id} is {team.status}; only a free team can be lent")
        until = None if hours is None else int(now + hours * 3600)  # Matrix JSON: no floats
        await view.set_team(conn, team.id, TeamStatus.LENT, now)
        data: dict[str, Any] = {"team": team.id, "to": to}
        if until is not None:
            data["until"] = until
        seq = await self._publish_lend(conn, "lend", data, to, until, now)
        log.info("region: %s lent to %s%s (lend #%d)", team.id, to, until_text(until), seq)
        as_there = borrowed_id(self.district, team.id)
        return (
            f"{team.id} lent to {to}{until_text(until)}: it is no longer dispatched here; {to} "
            f"dispatches it as {as_there}. !return {team.id} takes it back."
        )

    async def give_back(self, conn: aiosqlite.Connection, team_id: str, now: float) -> str:
        """``!return boat-3`` (ours, lent out: take it back) or ``!return BHO/boat-3`` (borrowed:
        hand it back)."""
        lender, _, team = team_id.partition("/")
        if team:
            lender = lender.upper()
            held = await view.lend_of(conn, lender, team)
            if held is None or not held.active or held.borrower != self.district:
                raise AidError(f"{lender}/{team} is not lent to {self.district}")
            await view.set_team(conn, borrowed_id(lender, held.team), TeamStatus.OFFLINE, now)
            seq = await self.record(conn, "return", {"team": held.team, "to": lender}, now)
            log.info("region: %s handed back to %s (return #%d)", held.team, lender, seq)
            return f"{lender}/{held.team} handed back to {lender}; it is no longer dispatched here."
        held = await view.lend_of(conn, self.district, team_id)
        if held is None or not held.active:
            raise AidError(f"{team_id} is not lent out (borrowed teams: !return <DISTRICT>/<team>)")
        await self._end_lend(conn, held.team, held.borrower, now)
        return f"{held.team} is back from {held.borrower} and available here."

    async def need(
        self, conn: aiosqlite.Connection, to: str, kind: str, count: int, note: str, now: float
    ) -> str:
        to = to.upper()
        if to == self.district:
            raise AidError("ask another district (or * for all)")
        if kind not in TEAM_KINDS:
            raise AidError(f"kind is one of {', '.join(TEAM_KINDS)}")
        data = {"to": to, "kind": kind, "count": count, "note": note}
        seq = await self.record(conn, "need", data, now)
        who = "every district" if to == ANY_DISTRICT else to
        log.info("region: need #%d posted: %d %s from %s", seq, count, kind, who)
        return f"Request posted to {who}: {count} {kind}" + (f" ({note})" if note else "") + "."
