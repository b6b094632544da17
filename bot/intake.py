"""Intake: every received message is triaged and committed before anything is acknowledged upstream.

One transaction per batch holds the inbox rows, the handler's intake effects (incident, auto-ack in
the outbox) and the channel cursor (Matrix sync token), so a crash either keeps all or none."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import aiosqlite

from bot.models import Channel, Inbound, Priority, Role
from bot.redact import mask_peer
from bot.route import Decision, Route
from bot.store import inbox, kv, routing
from bot.store.db import Database
from bot.triage import Triage, triage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that was new (not a duplicate) and is now durable."""

    inbox_id: int
    msg: Inbound  # with its typed facts
    triage: Triage
    decision: Decision  # as stored on the inbox row: its route and the sender's role


IntakeHook = Callable[[aiosqlite.Connection, Accepted, float], Awaitable[None]]
# The route table (handlers/router.py): message, the sender's role, triage → decision.
RouteFn = Callable[[Inbound, Role, Triage], Decision]


@dataclass(eq=False, kw_only=True)
class Intake:
    db: Database = field(kw_only=False)
    role_of: Callable[[Channel, str], Role]
    route: RouteFn
    hook: IntakeHook
    per_sender_per_hour: int
    clock: Callable[[], float]
    on_committed: Callable[[list[Accepted]], None] = lambda _: None
    # Commit the life threats of a batch (with their senders' other messages) before the rest:
    # off for ``[queue] order = "fifo"``, where rows are answered in the order they are stored.
    urgent_first: bool = True

    async def accept(
        self, batch: Sequence[Inbound], cursor: tuple[str, str] | None = None
    ) -> list[Accepted]:
        """Persist a batch (and the cursor). Raises StorageError on failure: the transport must
        then NOT acknowledge upstream (no DeleteSMS, no token advance).

        A burst read in one modem pass is 30+ messages whose commit takes a while: the life
        threats among them are committed (and the model slots woken) first, in their own
        transaction; the cursor goes with the last one. A failure after the first leaves the
        batch unacknowledged and its re-delivery is absorbed by the dedup key, as before."""
        order = {id(msg): i for i, msg in enumerate(batch)}
        accepted: list[Accepted] = []
        for chunk, last in _chunks(batch, urgent_first=self.urgent_first):
            accepted += await self._commit(chunk, cursor if last else None)
        return sorted(accepted, key=lambda item: order[id(item.msg)])  # as the batch came

    async def _commit(
        self, chunk: Sequence[tuple[Inbound, Triage]], cursor: tuple[str, str] | None
    ) -> list[Accepted]:
        now = self.clock()
        accepted: list[Accepted] = []
        async with self.db.transaction() as conn:
            for msg, verdict in chunk:
                item = await self._accept_one(conn, msg, verdict, now)
                if item is not None:
                    accepted.append(item)
            if cursor is not None:
                await kv.put(conn, cursor[0], cursor[1], now)
        for item in accepted:
            log.info(
                "inbox #%d %s from %s: %s, %s by rule %s (%s)",
                item.inbox_id,
                item.msg.channel.value,
                mask_peer(item.msg.peer),
                item.triage.priority.label,
                item.decision.route.value,
                item.decision.rule,
                ",".join(item.triage.reasons) or "-",
            )
        if accepted:
            self.on_committed(accepted)
        return accepted

    async def _accept_one(
        self, conn: aiosqlite.Connection, msg: Inbound, verdict: Triage, now: float
    ) -> Accepted | None:
        role = self.role_of(msg.channel, msg.peer)  # the one place a sender's role is decided
        order_key = order_key_of(msg)
        decision = await self._admit(conn, msg, self.route(msg, role, verdict), order_key, now)
        inbox_id = await inbox.insert(
            conn,
            msg,
            role=role,
            order_key=order_key,
            needs_model=decision.route is Route.MODEL,
            lang=verdict.lang,
            priority=verdict.priority,
            status="throttled"
            if decision.route is Route.THROTTLED
            else "merged"
            if decision.route is Route.MERGED
            else "queued",
            now=now,
        )
        if inbox_id is None:
            log.info("duplicate %s message from %s ignored", msg.channel.value, mask_peer(msg.peer))
            return None
        await routing.record_decision(conn, inbox_id, decision)
        raised = await inbox.raise_waiting_priority(conn, order_key, verdict.priority, inbox_id)
        if raised:
            log.info(
                "inbox #%d: %d earlier message(s) from the same sender raised to %s (they are "
                "answered first)",
                inbox_id,
                raised,
                verdict.priority.label,
            )
        item = Accepted(inbox_id, msg, verdict, decision)
        await self.hook(conn, item, now)
        return item

    async def _admit(
        self,
        conn: aiosqlite.Connection,
        msg: Inbound,
        decision: Decision,
        order_key: str,
        now: float,
    ) -> Decision:
        """After the table: a public sender over the hourly cap is throttled, and a repeat of a
        text still waiting for its turn is merged into it."""
        if decision.route is not Route.FAST and decision.role is Role.PUBLIC:
            recent = await inbox.count_recent_from(conn, msg.channel, msg.peer, now - 3600)
            if recent >= self.per_sender_per_hour:
                # kept, attached to the case, not sent to the model
                return replace(decision, route=Route.THROTTLED, rule="throttled")
        if (
            decision.route is Route.MODEL
            and msg.text.strip()
            and not msg.attachments
            and await inbox.same_text_waiting(conn, order_key, msg.text)
        ):
            # a panicking sender's repeat: the turn for the first answers both
            return replace(decision, route=Route.MERGED, rule="merged")
        return decision


def order_key_of(msg: Inbound) -> str:
    """The conversation whose messages are answered in order (the inbox row's ``order_key``)."""
    if msg.channel is Channel.SMS:
        return f"{msg.channel.value}:{msg.peer}"
    return f"{msg.channel.value}:{msg.conversation}|{msg.peer}"


def _chunks(
    batch: Sequence[Inbound], *, urgent_first: bool
) -> list[tuple[list[tuple[Inbound, Triage]], bool]]:
    """(messages with their triage, is the last chunk): the life threats first, each with every
    message of the same conversation in the batch (so they keep their order), then the rest;
    one chunk when there is nothing to put first (or ``urgent_first`` is off)."""
    judged = [(msg, triage(msg.text)) for msg in batch]
    urgent = {order_key_of(m) for m, v in judged if v.priority is Priority.CRITICAL}
    first = [(m, v) for m, v in judged if order_key_of(m) in urgent]
    if not urgent_first or not first or len(first) == len(judged):
        return [(judged, True)]
    rest = [(m, v) for m, v in judged if order_key_of(m) not in urgent]
    return [(first, False), (rest, True)]
