"""Matrix helpers for bench_matrix.py: a LocalSynapse in a temp dir, plain nio clients, a sender
that watches its own sync stream for replies, and a bare nio echo bot (the baseline)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    RoomCreateResponse,
    RoomMessageNotice,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)

from bot.synapse_local import Account, LocalSynapse, SynapseError

SYNC_TIMEOUT_MS = 30_000  # what Element and the gateway (matrix.sync_timeout_s default) use

# Timeline only: no presence, typing, receipts or account data; both sides of the comparison use it.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "timeline": {"limit": 50},
        "state": {"lazy_load_members": True},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
}


@contextlib.contextmanager
def local_synapse(workdir: Path) -> Iterator[LocalSynapse]:
    """Start a LocalSynapse in `workdir` (retried on a port race); always stopped on exit."""
    last: Exception | None = None
    for attempt in range(3):
        hs = LocalSynapse(workdir / f"synapse-{attempt}")
        try:
            hs.start()
            break
        except SynapseError as exc:
            last = exc
            hs.stop()
    else:
        raise RuntimeError(f"synapse did not start: {last}")
    try:
        yield hs
    finally:
        hs.stop()


def matrix_section(
    hs: LocalSynapse, bot: Account, room_id: str, coordinators: list[str], tmp: Path
) -> dict[str, Any]:
    """The gateway's `[matrix]` for a bench: this homeserver, this bot, one coordination room."""
    return {
        "enabled": True,
        "homeserver": hs.url,
        "user_id": bot.user_id,
        "password": bot.password,
        "store_path": str(tmp / "matrix-store"),
        "coordination_room": room_id,
        "coordinators": coordinators,
        "encryption": False,
        "sync_timeout_s": 2,
    }


def register(hs: LocalSynapse, prefix: str) -> Account:
    return hs.register(f"{prefix}{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex[:10])


def make_client(hs: LocalSynapse, acct: Account) -> AsyncClient:
    """A plain (unencrypted) nio client logged in as `acct`."""
    cfg = AsyncClientConfig(encryption_enabled=False, max_timeouts=2, max_limit_exceeded=5)
    c = AsyncClient(hs.url, acct.user_id, device_id=acct.device_id, config=cfg)
    c.restore_login(acct.user_id, acct.device_id, acct.access_token)
    return c


async def create_room(owner: AsyncClient, name: str, invite: list[str]) -> str:
    created = await owner.room_create(name=name, invite=invite)
    if isinstance(created, RoomCreateResponse):
        return str(created.room_id)
    raise RuntimeError(f"room_create: {created}")


async def join(client: AsyncClient, room_id: str) -> None:
    resp = await client.join(room_id)
    if isinstance(resp, JoinResponse):
        return
    raise RuntimeError(f"join {room_id}: {resp}")


async def send_text(client: AsyncClient, room_id: str, body: str) -> str:
    resp = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    if isinstance(resp, RoomSendResponse):
        return str(resp.event_id)
    raise RuntimeError(f"room_send: {resp}")


async def first_sync(client: AsyncClient) -> None:
    resp = await client.sync(timeout=0, sync_filter=SYNC_FILTER, full_state=True)
    if isinstance(resp, SyncResponse):
        return
    raise RuntimeError(f"first sync of {client.user_id}: {resp}")


@dataclass
class _Waiter:
    room_id: str
    sender: str
    future: asyncio.Future[tuple[float, Any]]


class Sender:
    """A user client with its own long-poll sync loop, like a person in Element.

    `round_trip(room, text, bot)`: send, then wait until the bot's next m.notice in that room
    comes down this client's own sync stream. Returns (milliseconds, reply event)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._waiters: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await first_sync(self.client)
        self._task = asyncio.create_task(self._loop(), name="bench-sender-sync")

    async def _loop(self) -> None:
        while True:
            resp = await self.client.sync(timeout=SYNC_TIMEOUT_MS, sync_filter=SYNC_FILTER)
            now = time.perf_counter()
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.2)
                continue
            for room_id, info in resp.rooms.join.items():
                for ev in info.timeline.events:
                    if not isinstance(ev, RoomMessageNotice):
                        continue
                    for w in list(self._waiters):
                        if w.room_id == room_id and w.sender == ev.sender and not w.future.done():
                            w.future.set_result((now, ev))
                            self._waiters.remove(w)
                            break

    async def round_trip(
        self, room_id: str, text: str, bot_user: str, wait_s: float = 60.0
    ) -> tuple[float, str, Any]:
        fut: asyncio.Future[tuple[float, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(room_id, bot_user, fut))
        t0 = time.perf_counter()
        event_id = await send_text(self.client, room_id, text)
        try:
            t1, reply = await asyncio.wait_for(fut, wait_s)
        finally:
            self._waiters = [w for w in self._waiters if w.future is not fut]
        return (t1 - t0) * 1000, event_id, reply

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()


class EchoBot:
    """The baseline: a minimal nio sync loop answering each text message with an m.notice."""

    def __init__(self, client: AsyncClient, on_error: Callable[[str], None] = print) -> None:
        self.client = client
        self.on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self.replied = 0

    async def start(self) -> None:
        await first_sync(self.client)  # history before the start is not answered
        self._task = asyncio.create_task(self._loop(), name="bench-echo-sync")

    async def _loop(self) -> None:
        me = self.client.user_id
        while True:
            resp = await self.client.sync(timeout=SYNC_TIMEOUT_MS, sync_filter=SYNC_FILTER)
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.2)
                continue
            for room_id, info in resp.rooms.join.items():
                for ev in info.timeline.events:
                    if not isinstance(ev, RoomMessageText) or ev.sender == me:
                        continue
                    content = {
                        "msgtype": "m.notice",
                        "body": f"echo: {ev.body}",
                        "m.relates_to": {"m.in_reply_to": {"event_id": ev.event_id}},
                    }
                    out = await self.client.room_send(room_id, "m.room.message", content)
                    if isinstance(out, RoomSendResponse):
                        self.replied += 1
                    else:
                        self.on_error(f"echo send failed: {out}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()
