"""The regional room, read: machine events into the regional view, staff commands for this
district into the inbox, nothing else.

Trust: an event counts only if its sender is the gateway bot ``[region] peers`` lists for the
district the event claims (or this gateway's own bot for its own district). Anything else changes
nothing and is logged as a WARNING once per sender and reason. Events are applied by (district,
seq) (bot/store/region_view.py): duplicates, gaps and out-of-order arrival are harmless, and the
view can be rebuilt from the room's history at any time (``rebuild``).

Events are applied before the sync window's inbox commit (bot/transports/matrix/transport.py):
a crash in between replays the window, and the replay is a no-op here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
from nio import AsyncClient, MatrixRoom, MessageDirection, RoomMessagesError

from bot.errors import TransientError
from bot.models import Role
from bot.region import events
from bot.region.addressing import regional_command
from bot.region.mutual_aid import MutualAid
from bot.store import region_view as view
from bot.store.db import Database, StorageError
from config.settings import RegionSettings

log = logging.getLogger(__name__)

REBUILD_PAGE = 500
REQUEST_TIMEOUT_S = 30.0


class RegionUnreachable(TransientError):
    """The regional room's history or membership cannot be had now (homeserver down, no
    federation); the district works on without it and tries again."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One regional-room event as the reader needs it (from a sync or from /messages)."""

    sender: str
    event_id: str
    content: dict[str, Any]
    server_ts: float  # seconds


def seen(event: Any) -> Seen | None:
    source = getattr(event, "source", None)
    if not isinstance(source, dict) or not isinstance(source.get("content"), dict):
        return None
    ts = source.get("origin_server_ts") or getattr(event, "server_timestamp", 0) or 0
    return Seen(
        str(getattr(event, "sender", "") or source.get("sender") or ""),
        str(getattr(event, "event_id", "") or source.get("event_id") or ""),
        source["content"],
        float(ts) / 1000,
    )


@dataclass(eq=False)
class RegionReader:
    settings: RegionSettings
    db: Database
    clock: Callable[[], float]
    aid: MutualAid
    me: str = ""  # this gateway's bot (its own events are read back like a peer's)
    role_of: Callable[[str], Role] = lambda _peer: Role.PUBLIC
    room_id: str | None = None  # once joined
    on_applied: Callable[[], None] = lambda: None  # after a commit (notices may be queued)
    _warned: set[tuple[str, str]] = field(default_factory=set)

    @property
    def district(self) -> str:
        return self.settings.district

    def bots(self) -> dict[str, str]:
        """District → the only account believed to speak for it."""
        return {**self.settings.peers, self.district: self.me}

    # ---- the transport's tap -----------------------------------------------------------------

    def watches(self, room_id: str, room: MatrixRoom | None = None) -> bool:
        configured = self.settings.room
        if room_id in (self.room_id, configured):
            return True
        return room is not None and bool(configured) and room.canonical_alias == configured

    async def divert(self, timeline: Sequence[Any]) -> list[Any]:
        """Apply the machine events of a regional-room timeline; return what goes to the inbox:
        only this district's case commands from this district's coordinators."""
        keep: list[Any] = []
        machine: list[Seen] = []
        for event in timeline:
            s = seen(event)
            if s is None or s.sender == "":
                continue
            if events.FIELD in s.content:
                machine.append(s)
            elif self._for_us(s):
                keep.append(event)
        if machine:
            try:
                await self.apply(machine)
            except StorageError:
                raise  # the window is not committed: synced and applied again
            except Exception:
                log.exception(
                    "region: APPLYING %d EVENT(S) FAILED; the regional view may miss them "
                    "(lifeline region rebuild reads them again)",
                    len(machine),
                )
        return keep

    def _for_us(self, s: Seen) -> bool:
        body = s.content.get("body")
        if s.sender == self.me or not isinstance(body, str):
            return False
        cmd = regional_command(body, self.me, self.district)
        if cmd is None:
            log.debug("region: message %s is not for %s; ignored", s.event_id, self.district)
            return False
        if self.role_of(s.sender) is not Role.COORDINATOR:
            self._warn_once(s.sender, f"!{cmd.name} for {self.district} by a non-coordinator")
            return False
        return True

    # ---- applying ------------------------------------------------------------------------------

    async def apply(self, batch: Iterable[Seen]) -> int:
        """Apply a page of events in one transaction; returns how many were new."""
        now = self.clock()
        believed = [
            view.EventIn(
                ev.district, ev.seq, ev.kind, ev.at, s.server_ts or now, s.event_id, ev.data
            )
            for s in batch
            if (ev := self._believe(s)) is not None
        ]
        if not believed:
            return 0
        async with self.db.transaction() as conn:
            fresh = await view.record_events(conn, believed)
            of = {k: [e for e in fresh if e.kind == k] for k in ("case", "case_state", "sitrep")}
            await view.apply_cases(conn, of["case"])
            await view.apply_case_states(conn, of["case_state"])
            await view.apply_sitreps(conn, of["sitrep"])
            await view.apply_needs(conn, [e for e in fresh if e.kind == "need"])
            for e in fresh:
                await self._one_by_one(conn, e, now)
        if fresh:
            self.on_applied()
            log.debug("region: %d new event(s) applied", len(fresh))
        return len(fresh)

    async def _one_by_one(self, conn: aiosqlite.Connection, e: view.EventIn, now: float) -> None:
        """What takes one event at a time: a team list, mutual aid, notices for this district."""
        if e.kind == "teams":
            await view.apply_teams(conn, e.district, e.seq, list(e.data.get("teams") or []))
        if e.kind == "hello":
            return
        event = events.RegionEvent(e.district, e.seq, e.kind, int(e.at), e.data)
        changed = await self.aid.lend_state(conn, event)
        if e.district != self.district:
            await self.aid.on_peer_event(conn, event, changed, now)

    def _believe(self, s: Seen) -> events.RegionEvent | None:
        try:
            event = events.parse(s.content)
        except events.EventError as exc:
            self._warn_once(s.sender, f"invalid regional event ({exc.reason})")
            return None
        if event is None:
            return None
        bot = self.bots().get(event.district)
        if bot is None:
            self._warn_once(s.sender, f"event for unknown district {event.district}")
            return None
        if s.sender != bot:
            self._warn_once(s.sender, f"claims to speak for {event.district}, whose bot is {bot}")
            return None
        return event

    def _warn_once(self, sender: str, reason: str) -> None:
        if (sender, reason) in self._warned:
            return
        self._warned.add((sender, reason))
        log.warning("region: IGNORED event(s) from %s: %s (nothing changed)", sender, reason)

    # ---- rebuilding from the room's history ------------------------------------------------------

    async def rebuild(self, client: AsyncClient, room_id: str | None = None) -> int:
        """Drop the view and apply the room's whole history again (newest page first; order does
        not matter). Returns the number of events applied."""
        rid = room_id or self.room_id
        if rid is None:
            raise RegionUnreachable("the regional room is not joined yet")
        started = time.monotonic()
        async with self.db.transaction() as conn:
            await view.clear(conn)
        total, token = 0, ""
        while True:
            resp = await asyncio.wait_for(
                client.room_messages(
                    rid, start=token, direction=MessageDirection.back, limit=REBUILD_PAGE
                ),
                REQUEST_TIMEOUT_S,
            )
            if isinstance(resp, RoomMessagesError):
                raise RegionUnreachable(f"/messages failed: {resp.message}")
            page = [s for e in resp.chunk if (s := seen(e)) and events.FIELD in s.content]
            total += await self.apply(page)
            if not resp.chunk or not resp.end or resp.end == token:
                break
            token = resp.end
        log.info(
            "region: view rebuilt from the room's history: %d events in %.1f s",
            total,
            time.monotonic() - started,
        )
        return total
