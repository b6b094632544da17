"""Simulated victims on Matrix: real accounts on the drill's Synapse that open a DM with the
gateway's bot and write to it as Element would (text, a voice note, a photo with a caption), each
through its own client, and watch the DM for the bot's answers with their own sync.

While the homeserver is down a message cannot be sent: the victim's client keeps it and tries
again every second with the same transaction id (Element's unsent-message retry; the homeserver
drops a repeated transaction), so it is sent once, when it can be. The journal records the time
the homeserver accepted it (the ack budget counts from there) and how long it waited."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nio import (
    AsyncClient,
    RoomCreateResponse,
    RoomMessage,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)

from bot.drill import media
from bot.drill.journal import Injected, JournalWriter, Reply
from bot.drill.plan import PlannedSms
from bot.drill.staff import SYNC_FILTER, client
from bot.synapse_local import Account, LocalSynapse

log = logging.getLogger(__name__)

RETRY_S = 1.0


def register_victims(hs: LocalSynapse, user_ids: list[str]) -> dict[str, Account]:
    """Blocking (call through asyncio.to_thread): one account per Matrix victim."""

    def make(user_id: str) -> Account:
        return hs.register(user_id[1:].split(":", 1)[0], "victim-" + secrets.token_hex(6))

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(user_ids, pool.map(make, user_ids), strict=True))


@dataclass
class _Victim:
    acct: Account
    client: AsyncClient
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one message at a time, in order
    room_id: str = ""
    watcher: asyncio.Task[None] | None = None
    seen: set[str] = field(default_factory=set)


async def _until_ok(
    what: str, who: str, attempt: Callable[[], Awaitable[Any]], ok: type[Any]
) -> Any:
    """Try again every second until the homeserver answers with ``ok`` (as a person's client
    keeps an unsent message), logging now and then."""
    for n in itertools.count(1):
        try:
            resp = await attempt()
        except Exception as exc:  # noqa: BLE001  (homeserver down: any failure, retry)
            resp = exc
        if isinstance(resp, tuple):  # AsyncClient.upload answers (response, keys)
            resp = resp[0]
        if isinstance(resp, ok):
            return resp
        if n % 60 == 0:  # a homeserver outage: each waiting victim says so once a minute
            why = type(resp).__name__ if isinstance(resp, Exception) else resp
            log.warning("%s: %s still failing after %d tries: %s", who, what, n, why)
        await asyncio.sleep(RETRY_S)
    raise AssertionError("unreachable")


class MatrixVictims:
    def __init__(
        self,
        hs: LocalSynapse,
        accounts: dict[str, Account],
        bot_id: str,
        journal: JournalWriter,
        wall_of: Callable[[float], float],
    ) -> None:
        self.bot_id = bot_id
        self.journal = journal
        self.wall_of = wall_of  # scenario seconds → the wall time a message was planned for
        self.victims = {uid: _Victim(a, client(hs, a)) for uid, a in accounts.items()}
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        return bool(self.tasks)

    def send(self, p: PlannedSms) -> None:
        """Start sending (returns at once: a victim waiting for the homeserver blocks nobody)."""
        task = asyncio.create_task(self._send(p), name=f"drill-victim-{p.victim}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, p: PlannedSms) -> None:
        v = self.victims[p.number]
        async with v.lock:
            try:
                await self._deliver(v, p)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("simulated Matrix victim %s failed", p.victim)

    async def _deliver(self, v: _Victim, p: PlannedSms) -> None:
        if not v.room_id:
            created = await _until_ok(
                "creating the DM",
                p.victim,
                lambda: v.client.room_create(is_direct=True, invite=[self.bot_id]),
                RoomCreateResponse,
            )
            v.room_id = str(created.room_id)
            v.watcher = asyncio.create_task(self._watch(v), name=f"drill-victim-sync-{p.victim}")
        content = await self._content(v, p)
        tx_id = secrets.token_hex(8)  # the same for every retry: sent once
        resp = await _until_ok(
            "sending",
            p.victim,
            lambda: v.client.room_send(v.room_id, "m.room.message", content, tx_id=tx_id),
            RoomSendResponse,
        )
        now = time.time()
        self.journal.inject(
            Injected(
                now,
                p.number,
                p.text,
                p.victim,
                p.kind,
                p.lang,
                p.life_threat,
                p.people,
                "",
                channel="matrix",
                event_id=str(resp.event_id),
                waited_s=max(0.0, now - self.wall_of(p.at_s)),
                media=p.media,
                lat=p.lat,
                lon=p.lon,
            )
        )

    async def _content(self, v: _Victim, p: PlannedSms) -> dict[str, Any]:
        if not p.media:
            return {"msgtype": "m.text", "body": p.text}
        if p.media == "voice":
            data = await asyncio.to_thread(media.voice_note, p.tone_hz)
            mimetype, name = "audio/ogg", "Voice message.ogg"
        else:
            assert p.lat is not None and p.lon is not None
            data = await asyncio.to_thread(media.photo, p.lat, p.lon)
            mimetype, name = "image/jpeg", f"IMG_{p.victim.replace('/', '_')}.jpg"

        async def upload() -> Any:
            return await v.client.upload(
                io.BytesIO(data), content_type=mimetype, filename=name, filesize=len(data)
            )

        up = await _until_ok("uploading", p.victim, upload, UploadResponse)
        info: dict[str, Any] = {"mimetype": mimetype, "size": len(data)}
        if p.media == "voice":  # as Element sends a voice message: no caption
            ms = int(media.VOICE_S * 1000)
            return {
                "msgtype": "m.audio",
                "body": "Voice message",
                "url": up.content_uri,
                "info": {**info, "duration": ms},
                "org.matrix.msc1767.audio": {"duration": ms},
                "org.matrix.msc3245.voice": {},
            }
        return {  # a photo with the victim's words as its caption
            "msgtype": "m.image",
            "body": p.text,
            "filename": name,
            "url": up.content_uri,
            "info": info,
        }

    async def _watch(self, v: _Victim) -> None:
        """The victim's own client: every message of the bot it sees (and the bot's invites,
        which a person accepts)."""
        while True:
            try:
                resp = await v.client.sync(timeout=10000, sync_filter=SYNC_FILTER)
            except Exception as exc:  # noqa: BLE001  (homeserver down: any failure, retry)
                log.debug("victim sync failed (homeserver down?): %r", exc)
                resp = exc
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(RETRY_S)
                continue
            for room_id in resp.rooms.invite:
                with contextlib.suppress(Exception):
                    await v.client.join(room_id)
            for room in resp.rooms.join.values():
                for ev in room.timeline.events:
                    if (
                        isinstance(ev, RoomMessage)
                        and ev.sender == self.bot_id
                        and ev.event_id not in v.seen
                    ):
                        v.seen.add(ev.event_id)
                        t = ev.server_timestamp / 1000.0
                        body = str(getattr(ev, "body", ""))
                        self.journal.reply(Reply(t, v.acct.user_id, body, str(ev.event_id)))

    async def close(self) -> None:
        tasks = list(self.tasks) + [v.watcher for v in self.victims.values() if v.watcher]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for v in self.victims.values():
            await v.client.close()
