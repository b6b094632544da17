"""The Matrix side of a drill: real accounts on the drill's own Synapse, the coordination room,
an observer that records every notice the bot posts, and simulated staff who act on them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    RoomCreateResponse,
    RoomMessageNotice,
    RoomSendResponse,
    SyncResponse,
)

from bot.drill.journal import Command, JournalWriter, Notice
from bot.drill.scenario import Coordinators
from bot.synapse_local import Account, LocalSynapse

log = logging.getLogger(__name__)

SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "timeline": {"limit": 100},
        "state": {"lazy_load_members": True},
        "ephemeral": {"not_types": ["*"]},
    },
}
REQUEST = re.compile(r"^\[(CRITICAL|HIGH|MEDIUM|LOW)\] (LF-\d+) DISPATCH REQUEST", re.M)
APPROVED = re.compile(r"^(LF-\d+): approved, team ([A-Za-z0-9_-]+)")
NO_TEAM = re.compile(r"^(LF-\d+): approved, but no team is free")


class MatrixSetupError(RuntimeError):
    """The drill homeserver refused to set up the coordination room."""


@dataclass
class Accounts:
    bot: Account
    coordinators: list[Account]
    responders: list[Account]
    observer: Account

    def staff_ids(self) -> list[str]:
        return [a.user_id for a in self.coordinators + self.responders]

    def as_json(self) -> dict[str, Any]:
        def one(a: Account) -> dict[str, str]:
            return {"user_id": a.user_id, "password": a.password}

        return {
            "coordinators": [one(a) for a in self.coordinators],
            "responders": [one(a) for a in self.responders],
        }


def register_accounts(hs: LocalSynapse, plan: Coordinators) -> Accounts:
    """Blocking (LocalSynapse is synchronous): call through asyncio.to_thread."""

    def make(localpart: str) -> Account:
        return hs.register(localpart, "drill-" + secrets.token_hex(6))

    return Accounts(
        bot=make("lifeline"),
        coordinators=[make(f"coord{i + 1}") for i in range(plan.coordinators)],
        responders=[make(f"resp{i + 1}") for i in range(plan.responders)],
        observer=make("drill-observer"),
    )


def client(hs: LocalSynapse, acct: Account) -> AsyncClient:
    cfg = AsyncClientConfig(encryption_enabled=False, max_timeouts=2, max_limit_exceeded=5)
    c = AsyncClient(hs.url, acct.user_id, device_id=acct.device_id, config=cfg)
    c.restore_login(acct.user_id, acct.device_id, acct.access_token)
    return c


async def create_room(hs: LocalSynapse, accounts: Accounts, name: str) -> str:
    """The coordination room: created by the first coordinator, staff and observer joined, the
    bot invited (the gateway joins by itself)."""
    owner = client(hs, accounts.coordinators[0])
    others = accounts.coordinators[1:] + accounts.responders + [accounts.observer]
    try:
        created = await owner.room_create(
            name=name, invite=[accounts.bot.user_id] + [a.user_id for a in others]
        )
        if not isinstance(created, RoomCreateResponse):
            raise MatrixSetupError(f"creating the coordination room failed: {created}")
        room_id = str(created.room_id)
    finally:
        await owner.close()
    for acct in others:
        c = client(hs, acct)
        try:
            joined = await c.join(room_id)
            if not isinstance(joined, JoinResponse):
                raise MatrixSetupError(f"{acct.user_id} could not join the room: {joined}")
        finally:
            await c.close()
    return room_id


class Observer:
    """A member of the room that records the bot's notices (server receive time) and hands
    them to the simulated staff. Survives homeserver outages (retries the sync)."""

    def __init__(
        self,
        hs: LocalSynapse,
        acct: Account,
        room_id: str,
        bot_id: str,
        journal: JournalWriter,
        on_notice: Callable[[Notice], None],
    ) -> None:
        self.c = client(hs, acct)
        self.room_id = room_id
        self.bot_id = bot_id
        self.journal = journal
        self.on_notice = on_notice
        self.synced = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                try:
                    resp = await self.c.sync(timeout=5000, sync_filter=SYNC_FILTER)
                except Exception as exc:  # noqa: BLE001  (homeserver down: any failure, retry)
                    log.debug("observer sync failed (homeserver down?): %r", exc)
                    await asyncio.sleep(1.0)
                    continue
                if not isinstance(resp, SyncResponse):
                    await asyncio.sleep(1.0)
                    continue
                room = resp.rooms.join.get(self.room_id)
                for ev in room.timeline.events if room else []:
                    if isinstance(ev, RoomMessageNotice) and ev.sender == self.bot_id:
                        notice = Notice(ev.server_timestamp / 1000.0, ev.body)
                        self.journal.notice(notice)
                        self.on_notice(notice)
                self.synced.set()
        finally:
            await self.c.close()


@dataclass
class _Team:
    case: str
    team: str


@dataclass
class Staff:
    """Simulated coordinators and responders with the scenario's simple policy. Times in the
    policy are scenario seconds, divided by ``speed``."""

    hs: LocalSynapse
    accounts: Accounts
    room_id: str
    plan: Coordinators
    speed: float
    journal: JournalWriter
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    waiting: list[str] = field(default_factory=list)  # approved cases with no team free
    seen: set[str] = field(default_factory=set)
    clients: dict[str, AsyncClient] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._coord = itertools.cycle(self.accounts.coordinators)
        self._resp = itertools.cycle(self.accounts.responders or self.accounts.coordinators)

    def _client(self, acct: Account) -> AsyncClient:
        if acct.user_id not in self.clients:
            self.clients[acct.user_id] = client(self.hs, acct)
        return self.clients[acct.user_id]

    def _later(self, delay_scenario_s: float, action: Callable[[], Awaitable[None]]) -> None:
        async def go() -> None:
            await asyncio.sleep(delay_scenario_s / self.speed)
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("simulated staff action failed")

        task = asyncio.create_task(go(), name="drill-staff")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @property
    def busy(self) -> bool:
        return bool(self.tasks)

    async def say(self, acct: Account, text: str, case: str = "") -> None:
        """Post like a person: if the homeserver is down, try again until it is back."""
        c = self._client(acct)
        for attempt in itertools.count(1):
            try:
                resp: Any = await c.room_send(
                    self.room_id, "m.room.message", {"msgtype": "m.text", "body": text}
                )
            except Exception as exc:  # noqa: BLE001  (homeserver down: any failure, retry)
                resp = exc
            if isinstance(resp, RoomSendResponse):
                self.journal.command(Command(time.time(), acct.user_id, text, case))
                return
            if attempt % 30 == 0:
                log.warning("%s could not post %r for %d s: %r", acct.user_id, text, attempt, resp)
            await asyncio.sleep(1.0)

    def on_notice(self, notice: Notice) -> None:
        if m := REQUEST.search(notice.body):
            level, case = m.group(1), m.group(2)
            if case in self.seen:
                return
            self.seen.add(case)
            after = (
                self.plan.approve_critical_after_s
                if level == "CRITICAL"
                else self.plan.approve_other_after_s
            )
            if after is not None:
                acct = next(self._coord)
                self._later(after, lambda: self.say(acct, f"!approve {case}", case))
        elif m := APPROVED.search(notice.body):
            self._work(m.group(1), m.group(2))
        elif m := NO_TEAM.search(notice.body):
            self.waiting.append(m.group(1))

    def _work(self, case: str, team: str) -> None:
        resp = next(self._resp)

        async def arrive() -> None:
            await self.say(resp, f"!arrived {case}", case)
            self._later(self.plan.resolve_after_s, resolve)

        async def resolve() -> None:
            await self.say(resp, f"!resolve {case} everyone safe at the shelter", case)
            if self.waiting:  # the team is free again: give it to a case that waits
                nxt = self.waiting.pop(0)
                await self.say(next(self._coord), f"!assign {nxt} {team}", nxt)
                self._work(nxt, team)

        self._later(self.plan.arrive_after_s, arrive)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for c in self.clients.values():
            await c.close()
