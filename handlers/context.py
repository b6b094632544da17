"""What every handler and tool needs: the store, settings, the clock, and where to notify."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.models import Channel, Incident, Lane, Outbound, Role
from bot.store.db import Database
from bot.store.inbox import InboxRow
from config.settings import Settings


@dataclass
class Notifier:
    """Builds outbound messages for victims (on their own channel) and the coordination room."""

    coordination_room: str | None = None

    def to_victim(
        self,
        incident: Incident,
        text: str,
        key: str,
        lane: Lane = Lane.URGENT,
        meta: dict[str, Any] | None = None,
    ) -> Outbound:
        """``text`` must already be shaped for the victim's channel (handlers.dispatch
        .tell_victim does that); ``meta`` carries e.g. the SMS modem to prefer."""
        return Outbound(
            channel=incident.channel,
            peer=incident.reporter,
            conversation=incident.conversation,
            text=text,
            idem_key=key,
            lane=lane,
            meta=dict(meta or {}),
        )

    def to_coordinators(self, text: str, key: str, lane: Lane = Lane.REPLY) -> Outbound | None:
        if not self.coordination_room:
            return None
        return Outbound(
            channel=Channel.MATRIX,
            peer=self.coordination_room,
            conversation=self.coordination_room,
            text=text,
            idem_key=key,
            lane=lane,
        )


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
