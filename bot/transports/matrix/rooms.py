"""Rooms the bot is in: invites (joined or refused by the inviter's role), #aliases, and direct
chats (``m.direct``, followed in sync and updated when the bot joins or opens a DM).

Direct chats (``facts.is_direct``): the configured coordination room is never one, whatever its
size. Otherwise a room is a DM when ``m.direct`` (the bot's account data, loaded at start and
followed in sync) lists it or the bot was invited with ``is_direct``; only a room nothing declares
falls back to membership (exactly two members).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    DirectRoomsResponse,
    ErrorResponse,
    InviteMemberEvent,
    JoinError,
    MatrixRoom,
    RoomCreateError,
    RoomPreset,
    SyncResponse,
)

from bot.models import Role
from bot.transports.matrix.errors import (
    MatrixSendTransient,
    SyncFailed,
    classify_send_error,
    err_text,
)
from bot.transports.matrix.session import REQUEST_TIMEOUT_S
from config.settings import MatrixSettings

log = logging.getLogger(__name__)

Invite = tuple[str, bool]  # (inviter, is_direct)


def invites_in(invite_rooms: Mapping[str, Any], me: str) -> dict[str, Invite]:
    """Room id → (who invited `me`, whether as a direct chat) from a sync's invited rooms."""
    out: dict[str, Invite] = {}
    for room_id, info in invite_rooms.items():
        inviter, is_direct = "", False
        for ev in info.invite_state:
            if (
                isinstance(ev, InviteMemberEvent)
                and ev.state_key == me
                and ev.membership == "invite"
            ):
                inviter = ev.sender
                is_direct = bool(ev.content.get("is_direct"))
        out[room_id] = (inviter, is_direct)
    return out


def direct_in(account_data: Iterable[Any]) -> dict[str, list[str]] | None:
    """The latest ``m.direct`` content (user → DM room ids) among account data events, if any."""
    found: dict[str, list[str]] | None = None
    for event in account_data:
        content = getattr(event, "content", None)
        if getattr(event, "type", None) == "m.direct" and isinstance(content, dict):
            found = {str(k): [str(r) for r in v] for k, v in content.items() if isinstance(v, list)}
    return found


class Rooms:
    def __init__(
        self,
        settings: MatrixSettings,
        client: Callable[[], AsyncClient],
        role_of: Callable[[str], Role],
        wanted: Callable[[str], bool] = lambda _room_id: False,
    ) -> None:
        self._wanted = wanted  # rooms joined whoever invites (the regional room, bot/region)
        self._coordination = settings.coordination_room
        self._encryption = settings.encryption
        self._client = client
        self._role_of = role_of
        self.pending_invites: dict[str, Invite] = {}
        self.direct_loaded = False
        self._lock = asyncio.Lock()  # m.direct read-modify-write
        self._created_dms: set[str] = set()
        self._aliases: dict[str, str] = {}  # #alias -> room id
        self._direct: dict[str, list[str]] = {}  # m.direct: user -> DM room ids
        self._invited_direct: set[str] = set()  # joined after an is_direct invite

    # ------------------------------------------------------------------ DMs
    def is_direct(self, room_id: str, room: MatrixRoom | None) -> bool:
        """Is this room a direct chat with one person (see the module docstring for the order)?"""
        if self.is_coordination_room(room_id, room):
            return False  # staff chatter there is recorded, never answered as a DM
        if room_id in self._invited_direct or any(room_id in r for r in self._direct.values()):
            return True
        return room is not None and room.member_count == 2

    def is_coordination_room(self, room_id: str, room: MatrixRoom | None) -> bool:
        configured = self._coordination
        if not configured:
            return False
        if configured.startswith("#"):
            aliases = {getattr(room, "canonical_alias", None)} if room is not None else set()
            return self._aliases.get(configured) == room_id or configured in aliases
        return configured == room_id

    async def load_direct(self) -> None:
        """m.direct at start: after a restart the sync resumes and does not repeat it."""
        resp = await asyncio.wait_for(self._client().list_direct_rooms(), REQUEST_TIMEOUT_S)
        if isinstance(resp, DirectRoomsResponse):
            self._direct = {k: list(v) for k, v in resp.rooms.items()}
        elif getattr(resp, "status_code", "") != "M_NOT_FOUND":  # none yet is fine
            raise SyncFailed(f"m.direct: {err_text(resp)}")
        self.direct_loaded = True
        log.info("matrix: %d direct chat(s) in m.direct", sum(map(len, self._direct.values())))

    def follow_direct(self, resp: SyncResponse) -> None:
        """Take up an m.direct change (from another of the bot's sessions, or our own write)."""
        direct = direct_in(resp.account_data_events)
        if direct is not None:
            self._direct = direct

    async def _remember_direct(self, user_id: str, room_id: str) -> None:
        """Record a DM we joined in m.direct, so it is still a DM after a restart."""
        async with self._lock:
            rooms = self._direct.setdefault(user_id, [])
            if room_id in rooms:
                return
            rooms.append(room_id)
            try:
                await self._put_account_data("m.direct", self._direct)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # the invite flag still holds for this run; membership decides after a restart
                log.warning("matrix: could not record DM %s in m.direct: %r", room_id, exc)

    async def dm_room_for(self, user_id: str) -> str:
        """A 1:1 room with `user_id`: m.direct, then any 2-member room, else a new DM (invite)."""
        client = self._client()
        async with self._lock:
            direct: dict[str, list[str]] = {}
            resp = await asyncio.wait_for(client.list_direct_rooms(), REQUEST_TIMEOUT_S)
            if isinstance(resp, DirectRoomsResponse):
                direct = {k: list(v) for k, v in resp.rooms.items()}
            for rid in direct.get(user_id, []):
                room = client.rooms.get(rid)
                # m.direct is ours: trust it while the room is still a 1:1 (the invite of a
                # freshly created DM may not be in the member list yet)
                if room is None or room.member_count > 2:
                    continue
                if user_id in room.users or rid in self._created_dms:
                    return rid
            for rid, room in client.rooms.items():
                if (
                    room.member_count == 2
                    and user_id in room.users
                    and not self.is_coordination_room(rid, room)
                ):
                    return str(rid)
            initial_state: list[dict[str, Any]] = []
            if self._encryption:
                initial_state.append(
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                )
            created = await asyncio.wait_for(
                client.room_create(
                    is_direct=True,
                    invite=[user_id],
                    preset=RoomPreset.trusted_private_chat,
                    initial_state=initial_state,
                ),
                REQUEST_TIMEOUT_S,
            )
            if isinstance(created, RoomCreateError):
                raise classify_send_error(created)
            rid = str(created.room_id)
            self._created_dms.add(rid)
            direct.setdefault(user_id, []).append(rid)
            await self._put_account_data("m.direct", direct)
            self._direct = direct
            log.info("matrix: created DM %s with %s", rid, user_id)
        return rid

    # ------------------------------------------------------------------ invites
    async def handle_invites(self, resp: SyncResponse) -> None:
        """Join (staff, or anyone's DM) or refuse each invite, new in `resp` or still pending
        (a failed join is retried after the next sync)."""
        self.pending_invites.update(invites_in(resp.rooms.invite, self._client().user_id))
        for room_id, (inviter, is_direct) in list(self.pending_invites.items()):
            await self._handle_invite(room_id, inviter, is_direct)

    async def _handle_invite(self, room_id: str, inviter: str, is_direct: bool) -> None:
        client = self._client()
        role = self._role_of(inviter) if inviter else Role.PUBLIC
        if role != Role.PUBLIC or is_direct or self._wanted(room_id):
            resp = await asyncio.wait_for(client.join(room_id), REQUEST_TIMEOUT_S)
            if isinstance(resp, JoinError):
                err = classify_send_error(resp)
                log.warning("matrix: join %s (invited by %s) failed: %s", room_id, inviter, resp)
                if not err.transient:
                    self.pending_invites.pop(room_id, None)
                return
            self.pending_invites.pop(room_id, None)
            if is_direct and inviter:
                self._invited_direct.add(room_id)
                await self._remember_direct(inviter, room_id)
            log.info(
                "matrix: joined %s (invited by %s, role %s, direct %s)",
                room_id,
                inviter,
                role,
                is_direct,
            )
        else:
            resp2 = await asyncio.wait_for(client.room_leave(room_id), REQUEST_TIMEOUT_S)
            if isinstance(resp2, ErrorResponse) and classify_send_error(resp2).transient:
                log.warning("matrix: rejecting invite %s failed, will retry: %s", room_id, resp2)
                return
            self.pending_invites.pop(room_id, None)
            log.warning(
                "matrix: refused group-room invite to %s from %s (public user, not a DM)",
                room_id,
                inviter,
            )

    # ------------------------------------------------------------------ aliases
    def remember_alias(self, alias: str, room_id: str) -> None:
        self._aliases[alias] = room_id

    async def resolve_room(self, room: str) -> str:
        """Room id for a room id or a #alias; cached. Raises MatrixSendError (transient while
        the homeserver is unreachable)."""
        if not room.startswith("#"):
            return room
        if room in self._aliases:
            return self._aliases[room]
        resp = await _call(f"resolving {room}", self._client().room_resolve_alias(room))
        log.info("matrix: %s is %s", room, resp.room_id)
        self._aliases[room] = str(resp.room_id)
        return self._aliases[room]

    async def join(self, room: str) -> str:
        """Join a room by id or #alias (the regional room; over federation when it lives on
        another homeserver) and return its id; a room the bot is already in is a no-op.
        Raises MatrixSendError of its kind."""
        resp = await _call(f"joining {room}", self._client().join(room))
        if room.startswith("#"):
            self._aliases[room] = str(resp.room_id)
        return str(resp.room_id)

    async def _put_account_data(self, kind: str, data: dict[str, Any]) -> None:
        client = self._client()
        path = f"/_matrix/client/v3/user/{urllib.parse.quote(client.user_id)}/account_data/{kind}"
        headers = {
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        }
        http = await asyncio.wait_for(
            client.send("PUT", path, json.dumps(data), headers=headers), REQUEST_TIMEOUT_S
        )
        try:
            if http.status != 200:
                log.warning("matrix: saving %s account data failed: HTTP %d", kind, http.status)
        finally:
            http.release()


async def _call(what: str, request: Awaitable[Any]) -> Any:
    """One room request, bounded; a failure raised as a MatrixSendError of its kind."""
    try:
        resp = await asyncio.wait_for(request, REQUEST_TIMEOUT_S)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise MatrixSendTransient(f"{what}: network: {exc!r}") from exc
    if isinstance(resp, ErrorResponse):
        raise classify_send_error(resp)
    return resp
