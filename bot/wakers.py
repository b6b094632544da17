"""Who is woken when work is committed: the workers sleep on their `Waker` until then (or their
poll interval), so a new message or reply is picked up at once, not at the next poll."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.intake import Accepted
from bot.queue import Waker


@dataclass(frozen=True, slots=True)
class Wakers:
    model: Waker = field(default_factory=Waker)
    fast: Waker = field(default_factory=Waker)
    sms: Waker = field(default_factory=Waker)
    matrix: Waker = field(default_factory=Waker)
    region: Waker = field(default_factory=Waker)  # bot/region: a change may be publishable

    def outboxes(self) -> None:
        """Outbox rows were committed (replies, alerts, broadcasts): wake both senders."""
        self.sms.wake()
        self.matrix.wake()
        self.region.wake()

    def committed(self, items: Sequence[Accepted]) -> None:
        """Intake committed inbound messages (and maybe their acks): wake the senders, and the
        worker of each route that got work."""
        self.outboxes()
        if any(i.decision.route == "model" for i in items):
            self.model.wake()
        if any(i.decision.route == "fast" for i in items):
            self.fast.wake()
