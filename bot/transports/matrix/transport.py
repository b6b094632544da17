"""Matrix transport: matrix-nio client, own sync loop, cursor committed with the inbox rows.

Invariants kept here (see docs/architecture.md):
  1. The sync token advances only through `on_batch(inbounds, next_batch)`, which commits the inbox
     rows and the token in one transaction. If it raises, the same window is synced again.
  2. dedup_key = event id, so a replayed window is absorbed by the inbox.
  7. Every network call is bounded by `asyncio.wait_for`/`asyncio.timeout`.
An event that cannot be decrypted is delivered at once (the sender is asked to resend), its key is
requested, and it is delivered again, decrypted, if the key arrives within LATE_KEY_WINDOW_S
(dedup_key ``<event id>:late-key``; pending events survive a restart via ``load_undecrypted``).

This front wires the parts: session.py (login, sync loop, health), mapping.py (events → Inbound,
pure), media.py (downloads), e2ee.py (keys, late keys), rooms.py (invites, aliases, DMs),
send.py (outbound) and errors.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from nio import AsyncClient, MatrixRoom, SyncResponse

from bot.models import Inbound, Outbound, Role
from bot.transports.matrix import e2ee, mapping, send
from bot.transports.matrix.media import with_media
from bot.transports.matrix.rooms import Rooms
from bot.transports.matrix.session import REQUEST_TIMEOUT_S, MatrixHealth, Session, SyncSteps
from config.settings import MatrixSettings, MediaSettings

log = logging.getLogger(__name__)

OnBatch = Callable[[list[Inbound], str], Awaitable[None]]
# Encrypted event sources (with "room_id") and when they arrived, for events still waiting a key.
LoadUndecrypted = Callable[[], Awaitable[list[tuple[dict[str, Any], float]]]]


class RoomTap(Protocol):
    """A room whose events are read by something else than the inbox (bot/region/reader.py):
    ``divert`` takes them before the window's commit and returns the ones still for the inbox."""

    def watches(self, room_id: str, room: MatrixRoom | None) -> bool: ...
    async def divert(self, timeline: list[Any]) -> list[Any]: ...


class MatrixTransport:
    def __init__(
        self,
        settings: MatrixSettings,
        media: MediaSettings,
        *,
        load_token: Callable[[], Awaitable[str | None]],
        on_batch: OnBatch,
        role_of: Callable[[str], Role],
        timeline_limit: int = 100,
        max_backfill_events: int = 2000,
        homeserver: str | None = None,
        load_undecrypted: LoadUndecrypted | None = None,
        tap: RoomTap | None = None,
    ) -> None:
        self._session = Session(
            settings,
            homeserver or settings.homeserver,
            timeline_limit=timeline_limit,
            max_backfill_events=max_backfill_events,
        )
        self._rooms = Rooms(
            settings,
            self._require_client,
            role_of,
            wanted=lambda room_id: tap is not None and tap.watches(room_id, None),
        )
        self._undecrypted = e2ee.Undecrypted()
        self._load_undecrypted = load_undecrypted
        self._load_token = load_token
        self._on_batch = on_batch
        self._media_root = Path(media.dir)
        self._max_bytes = min(media.max_bytes, settings.max_media_bytes)
        self._key_requests: list[Any] = []  # undecryptable events of the cycle being delivered
        self._caught_up = asyncio.Event()  # first sync of this run processed (invites joined)
        self._tap = tap

    # ------------------------------------------------------------------ state
    @property
    def health(self) -> MatrixHealth:
        return self._session.health

    @property
    def user_id(self) -> str:
        return self.health.user_id

    def _require_client(self) -> AsyncClient:
        return self._session.require_client()

    async def wait_back(self) -> None:
        """Returns each time the homeserver answers again after an outage."""
        await self._session.wait_back()

    async def wait_caught_up(self) -> None:
        """Returns once this run's first sync is processed: sending before it would hit rooms the
        bot is invited to but has not joined yet (M_FORBIDDEN, a permanent failure)."""
        await self._caught_up.wait()

    async def start(self) -> None:
        """Restore the session (or log in once with the password) and load the E2EE store."""
        await self._session.start()

    async def run(self) -> None:
        since = await self._load_token()
        log.info("matrix: sync loop starting (%s)", "resume" if since else "first sync")
        if self._load_undecrypted is not None:
            for source, seen in await self._load_undecrypted():
                self._undecrypted.remember(source, seen)
        steps = SyncSteps(before=self._before_sync, deliver=self._deliver, after=self._after)
        await self._session.run(since, steps)

    async def close(self) -> None:
        """Close HTTP; keep device, token and keys (no logout)."""
        await self._session.close()

    # ------------------------------------------------------------------ one sync cycle
    async def _before_sync(self) -> None:
        if not self._rooms.direct_loaded:
            await self._rooms.load_direct()
        await e2ee.key_maintenance(self._require_client())

    async def _deliver(self, resp: SyncResponse, since: str | None) -> None:
        """Map the window's events and commit them with its next_batch (invariant 1)."""
        self._rooms.follow_direct(resp)
        inbounds = await self._collect(resp, since)
        await self._on_batch(inbounds, resp.next_batch)

    async def _after(self, resp: SyncResponse, token: str) -> None:
        """After the commit: ask for missing keys, answer invites, deliver late-decrypted events."""
        client = self._require_client()
        undecryptable, self._key_requests = self._key_requests, []
        await self._undecrypted.request_keys(client, undecryptable, time.time())
        await self._rooms.handle_invites(resp)
        self._caught_up.set()
        await self._deliver_late_decrypted(token)

    async def _collect(self, resp: SyncResponse, since: str | None) -> list[Inbound]:
        client = self._require_client()
        inbounds: list[Inbound] = []
        self._key_requests = []
        skipped = 0
        for room_id, info in resp.rooms.join.items():
            events = list(info.timeline.events)
            if since is None:
                skipped += sum(1 for e in events if mapping.is_message(e))
                continue  # first sync ever: history from before the gateway existed
            if info.timeline.limited and info.timeline.prev_batch:
                older = await self._session.page_back(room_id, info.timeline.prev_batch, since)
                events = mapping.merge_backfill(older, events)
            room = client.rooms.get(room_id)
            if self._tap is not None and self._tap.watches(room_id, room):
                events = await self._tap.divert(events)
            for event in events:
                inbound = await self._to_inbound(event, room_id, room)
                if inbound is None:
                    continue
                inbounds.append(inbound)
                if inbound.facts.undecryptable:
                    event.room_id = room_id  # paged-back events lack it; key requests need it
                    self._key_requests.append(event)
        if skipped:
            log.info(
                "matrix: first sync, %d earlier messages not delivered (pre-start history)", skipped
            )
        return inbounds

    async def _to_inbound(
        self, event: Any, room_id: str, room: MatrixRoom | None
    ) -> Inbound | None:
        client = self._require_client()
        mapped = mapping.to_inbound(
            event,
            room_id,
            me=client.user_id,
            is_direct=self._rooms.is_direct(room_id, room),
            max_media_bytes=self._max_bytes,
            now=time.time(),
        )
        if mapped is None:
            return None
        return await with_media(client, mapped, self._media_root, self._max_bytes)

    async def _deliver_late_decrypted(self, token: str) -> None:
        """Deliver (as new inbox rows) events whose megolm key has arrived since they came in."""
        client = self._require_client()
        if not self._undecrypted:
            return
        keys, settled = self._undecrypted.settle(client, time.time())
        late: list[Inbound] = []
        for k in keys:
            inbound = await self._to_inbound(k.event, k.room_id, client.rooms.get(k.room_id))
            if inbound is not None:
                meta = {**inbound.meta, "late_key": True}
                late.append(
                    replace(inbound, dedup_key=k.event_id + e2ee.LATE_KEY_SUFFIX, meta=meta)
                )
        if late:
            await self._on_batch(late, token)  # committed before they leave the waiting list
            log.warning(
                "matrix: %d message(s) decrypted after their key arrived late; delivered now",
                len(late),
            )
        self._undecrypted.forget(settled)

    # ------------------------------------------------------------------ sending
    async def send(self, out: Outbound) -> str:
        content = send.message_content(out)
        room_id = await self.resolve_room(out.conversation)
        return await send.room_send(self._require_client(), room_id, content, out.idem_key)

    async def send_image(self, room_id: str, png_or_jpeg: bytes, body: str, *, tx_id: str) -> str:
        client = self._require_client()
        room_id = await self.resolve_room(room_id)
        content = await send.image_content(client, room_id, png_or_jpeg, body, tx_id=tx_id)
        return await send.room_send(client, room_id, content, tx_id)

    # ------------------------------------------------------------------ rooms
    def is_direct(self, room_id: str, room: MatrixRoom | None) -> bool:
        """Is this room a direct chat with one person (see bot/transports/matrix/rooms.py)?"""
        return self._rooms.is_direct(room_id, room)

    async def dm_room_for(self, user_id: str) -> str:
        """A 1:1 room with `user_id`: m.direct, then any 2-member room, else a new DM (invite)."""
        rid = await self._rooms.dm_room_for(user_id)
        await self._session.wait_room_known(rid, REQUEST_TIMEOUT_S)
        return rid

    def remember_alias(self, alias: str, room_id: str) -> None:
        """A local name for a room (e.g. the drill's coordination room before it was known)."""
        self._rooms.remember_alias(alias, room_id)

    async def join_room(self, room: str) -> str:
        """Join a room by id or #alias (e.g. ``[region] room``) and return its id."""
        return await self._rooms.join(room)

    async def resolve_room(self, room: str) -> str:
        """Room id for a room id or a #alias (e.g. settings.matrix.coordination_room); cached.
        Raises MatrixSendError (transient while the homeserver is unreachable)."""
        return await self._rooms.resolve_room(room)
