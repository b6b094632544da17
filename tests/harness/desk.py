"""The victim and public flows without the gateway: a real SQLite store, the real intake (route,
triage, the victim flow's intake hook) and, for model turns, the real LLM client against the
Ollama stand-in over HTTP. No transports, no workers, no outbox senders: a test drives the flow
and reads the rows the flow left behind. The clock is a number the test moves."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.conversation import Conversation
from bot.intake import Accepted, Intake
from bot.llm import LLM
from bot.models import Attachment, Channel, Facts, Inbound, Outbound, Role
from bot.store import inbox, outbox
from bot.store.db import Database
from bot.store.inbox import InboxRow
from bot.tools import ToolRegistry
from config.settings import Settings
from handlers.context import Notifier, Services, TurnContext
from handlers.dispatch import RESPONDER_TOOLS, VICTIM_TOOLS
from handlers.public import PublicCommands
from handlers.responder import ResponderFlow
from handlers.router import RouteTable
from handlers.victim import VictimFlow
from tests.harness.gateway import make_settings

if TYPE_CHECKING:
    from protocols.search import ProtocolSearch

VICTIM = "+8801712345678"
ROOM = "!coordination:localhost"
T0 = 1_800_000_000.0
_dedup = itertools.count(1)


@dataclass
class Desk:
    settings: Settings
    db: Database
    victim: VictimFlow
    public: PublicCommands
    intake: Intake
    responder: ResponderFlow
    staff: dict[str, Role] = field(default_factory=dict)  # Matrix senders' roles (else public)
    now: float = T0

    def clock(self) -> float:
        return self.now

    async def receive(
        self,
        text: str,
        peer: str = VICTIM,
        attachments: tuple[Attachment, ...] = (),
        **facts: Any,
    ) -> Accepted:
        """One SMS (or MMS, with ``attachments``) through the real intake (one transaction:
        inbox row, case, ack, alert)."""
        key = f"sms:{peer}:{next(_dedup)}"
        sms = Facts(**{"modem": "sim1", **facts})
        return await self._accept(Channel.SMS, peer, peer, text, key, sms, attachments)

    async def receive_staff(self, text: str, peer: str, role: Role = Role.RESPONDER) -> Accepted:
        """A staff member's message in the coordination room, through the same intake."""
        self.staff[peer] = role
        room = Facts(is_direct=False, addressed=True, msgtype="m.text")
        return await self._accept(Channel.MATRIX, peer, ROOM, text, f"mx:{next(_dedup)}", room)

    async def _accept(
        self,
        channel: Channel,
        peer: str,
        conversation: str,
        text: str,
        key: str,
        facts: Facts,
        attachments: tuple[Attachment, ...] = (),
    ) -> Accepted:
        msg = Inbound(channel, peer, conversation, text, key, self.now, attachments, facts=facts)
        [item] = await self.intake.accept([msg])
        return item

    async def row(self, item: Accepted) -> InboxRow:
        row = await inbox.get(self.db, item.inbox_id)
        assert row is not None
        return row

    async def finish(self, row: InboxRow, outs: list[Outbound]) -> None:
        """What the worker does with a handler's answer: queue it and mark the row done (so the
        exchange shows up as history in the sender's next turn)."""
        async with self.db.transaction() as conn:
            for out in outs:
                await outbox.enqueue(
                    conn, out, now=self.now, inbox_id=row.id, incident_id=row.incident_id
                )
            await inbox.complete(conn, row.id, self.now)

    async def outbox(self) -> list[aiosqlite.Row]:
        return await self.db.fetchall("SELECT * FROM outbox ORDER BY id")

    async def texts_to(self, peer: str) -> list[str]:
        return [r["text"] for r in await self.outbox() if r["peer"] == peer]


@asynccontextmanager
async def desk(
    tmp: Path, model_url: str = "http://127.0.0.1:9", protocols: ProtocolSearch | None = None
) -> AsyncIterator[Desk]:
    """A desk whose model is at ``model_url`` (the default: nothing listens there); the victim
    flow quotes ``protocols`` when given, and the responder flow answers staff."""
    settings = make_settings(tmp, model_url)
    db = Database(settings.storage.path)
    await db.open()
    clock: list[Desk] = []
    services = Services(
        db=db, settings=settings, clock=lambda: clock[0].now, notifier=Notifier(ROOM)
    )
    registry: ToolRegistry[TurnContext] = ToolRegistry()
    for tool in [*VICTIM_TOOLS, *RESPONDER_TOOLS]:
        registry.register(tool)
    staff: dict[str, Role] = {}
    try:
        async with LLM(settings.model) as llm:
            conversation = Conversation(llm, registry, max_rounds=settings.model.max_tool_rounds)
            victim = VictimFlow(services, llm, conversation, protocols)
            responder = ResponderFlow(services, conversation, status=_no_status)
            intake = Intake(
                db,
                role_of=lambda _channel, peer: staff.get(peer, Role.PUBLIC),
                route=RouteTable(settings.matrix.user_id).decide,
                hook=victim.on_intake,
                per_sender_per_hour=settings.queue.per_sender_per_hour,
                clock=lambda: clock[0].now,
            )
            d = Desk(settings, db, victim, PublicCommands(services), intake, responder, staff)
            clock.append(d)
            yield d
    finally:
        await db.close()


async def _no_status() -> str:
    return "status: (desk)"
