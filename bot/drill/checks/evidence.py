"""What every drill check reads (the journal, a read-only snapshot of the gateway's database, the
dummy modems' sent record) and what it returns (a Result whose violations carry the time and the
evidence)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.drill.journal import FaultSpan, Injected, Journal
from bot.store.snapshot import Row, Snapshot

CRITICAL = 0  # bot.models.Priority.CRITICAL: lower value = more urgent
ACK_PARTS = 2.0  # an ack in Bengali/Hindi/Urdu (UCS-2, 70 chars a part) can take two parts
REPLY_PARTS = 3.0  # sms.segment_budget's default


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a dummy modem accepted (``<device>/sent/<ns>-<digest>``)."""

    t: float
    to: str
    text: str
    digest: str  # sha256(idempotency key)[:16]: the same outbox row sent twice repeats it


@dataclass(frozen=True, slots=True)
class Violation:
    promise: str
    at: float
    subject: str
    evidence: str


@dataclass
class Result:
    promise: str
    title: str
    checked: int = 0
    violations: list[Violation] = field(default_factory=list)
    worst: str = ""  # the worst case seen, violation or not
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, at: float, subject: str, evidence: str) -> None:
        self.violations.append(Violation(self.promise, at, subject, evidence))


@dataclass
class Evidence:
    journal: Journal
    db: Snapshot
    sent: list[Sent]

    def budget(self, key: str, default: float) -> float:
        return float(self.journal.budgets.get(key, default))

    def first_injections(self) -> dict[str, Injected]:
        first: dict[str, Injected] = {}
        for ev in sorted(self.journal.injected, key=lambda e: e.t):
            first.setdefault(ev.number, ev)
        return first

    def incident_of(self, number: str) -> Row | None:
        """The sender's (first) case: an SMS number and a Matrix user id never look alike."""
        rows = [i for i in self.db.incidents if i["reporter"] == number]
        return rows[0] if rows else None

    def answers_to(self, inj: Injected) -> list[float]:
        """When the sender saw an answer: an SMS the modems sent to the number, or a message of
        the bot the Matrix victim's own client saw in its DM."""
        if inj.channel == "matrix":
            return sorted(r.t for r in self.journal.replies if r.peer == inj.number)
        return sorted(s.t for s in self.sent if s.to == inj.number)


def short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def down_until(t: float, spans: Iterable[FaultSpan], end_default: float) -> float:
    """The first moment at or after ``t`` outside every span (spans may chain)."""
    moved = True
    while moved:
        moved = False
        for f in spans:
            end = f.end if f.end is not None else end_default
            if f.start <= t < end:
                t, moved = end, True
    return t
