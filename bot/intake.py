"""Intake: every received message is triaged and committed before anything is acknowledged upstream.

One transaction per batch holds the inbox rows, the handler's intake effects (incident, auto-ack in
the outbox) and the channel cursor (Matrix sync token), so a crash either keeps all or none."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from bot.models import Channel, Inbound, Role
from bot.redact import mask_peer
from bot.store import inbox, kv
from bot.store.db import Database
from bot.triage import Triage, triage

log = logging.getLogger(__name__)

Route = Literal["model", "fast", "throttled", "merged"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that was new (not a duplicate) and is now durable."""

    inbox_id: int
    msg: Inbound
    role: Role
    triage: Triage
    route: Route


IntakeHook = Callable[[aiosqlite.Connection, Accepted, float], Awaitable[None]]
RouteFn = Callable[[Inbound, Role, Triage], Route]


class Intake:
    def __init__(
        self,
        db: Database,
        *,
        role_of: Callable[[Channel, str], Role],
        route: RouteFn,
        hook: IntakeHook,
        per_sender_per_hour: int,
        clock: Callable[[], float],
        on_committed: Callable[[list[Accepted]], None] = lambda _: None,
    ) -> None:
        self._db = db
        self._role_of = role_of
        self._route = route
        self._hook = hook
        self._per_hour = per_sender_per_hour
        self._clock = clock
        self._on_committed = on_committed

    async def accept(
        self, batch: Sequence[Inbound], cursor: tuple[str, str] | None = None
    ) -> list[Accepted]:
        """Persist a batch (and the cursor) atomically. Raises StorageError on failure: the
        transport must then NOT acknowledge upstream (no DeleteSMS, no token advance)."""
        now = self._clock()
        accepted: list[Accepted] = []
        async with self._db.transaction() as conn:
            for msg in batch:
                item = await self._accept_one(conn, msg, now)
                if item is not None:
                    accepted.append(item)
            if cursor is not None:
                await kv.put(conn, cursor[0], cursor[1], now)
        for item in accepted:
            log.info(
                "inbox #%d %s from %s: %s, %s (%s)",
                item.inbox_id,
                item.msg.channel.value,
                mask_peer(item.msg.peer),
                item.triage.priority.label,
                item.route,
                ",".join(item.triage.reasons) or "-",
            )
        if accepted:
            self._on_committed(accepted)
        return accepted

    async def _accept_one(
        self, conn: aiosqlite.Connection, msg: Inbound, now: float
    ) -> Accepted | None:
        role = self._role_of(msg.channel, msg.peer)
        verdict = triage(msg.text)
        route = self._route(msg, role, verdict)
        if route != "fast" and role is Role.PUBLIC:
            recent = await inbox.count_recent_from(conn, msg.channel, msg.peer, now - 3600)
            if recent >= self._per_hour:
                route = "throttled"  # kept, attached to the case, not sent to the model
        order_key = (
            f"{msg.channel.value}:{msg.peer}"
            if msg.channel is Channel.SMS
            else f"{msg.channel.value}:{msg.conversation}|{msg.peer}"
        )
        if (
            route == "model"
            and msg.text.strip()
            and not msg.attachments
            and await inbox.same_text_waiting(conn, order_key, msg.text)
        ):
            route = "merged"  # a panicking sender's repeat: the turn for the first answers both
        inbox_id = await inbox.insert(
            conn,
            msg,
            role=role,
            order_key=order_key,
            needs_model=route == "model",
            lang=verdict.lang,
            priority=verdict.priority,
            status=route if route in ("throttled", "merged") else "queued",
            now=now,
        )
        if inbox_id is None:
            log.info("duplicate %s message from %s ignored", msg.channel.value, mask_peer(msg.peer))
            return None
        raised = await inbox.raise_waiting_priority(conn, order_key, verdict.priority, inbox_id)
        if raised:
            log.info(
                "inbox #%d: %d earlier message(s) from the same sender raised to %s (they are "
                "answered first)",
                inbox_id,
                raised,
                verdict.priority.label,
            )
        item = Accepted(inbox_id, msg, role, verdict, route)
        await self._hook(conn, item, now)
        return item
