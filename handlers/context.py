"""What every handler and tool needs: the store, settings, the clock, and where to notify."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.models import Channel, Lane, Outbound, Role
from bot.store.db import Database
from bot.store.inbox import InboxRow
from config.settings import Settings


@dataclass
class Notifier:
    """Builds outbound messages for the coordination room (victims are answered with
    handlers.replies.reply_to on the channel their case came from)."""

    coordination_room: str | None = None

    def to_coordinators(self, text: str, key: str, lane: Lane = Lane.REPLY) -> Outbound | None:
        if not self.coordination_room:
            return None
        room = self.coordination_room
        return Outbound(Channel.MATRIX, room, room, text=text, idem_key=key, lane=lane)


@dataclass
class Services:
    """Long-lived collaborators shared by handlers (built once in bot.app)."""

    db: Database
    settings: Settings
    clock: Callable[[], float]
    notifier: Notifier = field(default_factory=Notifier)


@dataclass
class TurnContext:
    """Per-message context handed to tools."""

    services: Services
    row: InboxRow
    role: Role
    incident_id: int | None

    @property
    def db(self) -> Database:
        return self.services.db

    def now(self) -> float:
        return self.services.clock()
