"""Frozen dataclasses that cross layers. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Channel(StrEnum):
    SMS = "sms"
    MATRIX = "matrix"


class Role(StrEnum):
    PUBLIC = "public"
    RESPONDER = "responder"
    COORDINATOR = "coordinator"


class Priority(IntEnum):
    """Lower value = more urgent; sorts naturally in SQL (ORDER BY priority)."""

    CRITICAL = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Priority:
        return cls[label.strip().upper()]


class InboxStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"  # leased by a worker
    DONE = "done"
    DEAD = "dead"
    THROTTLED = "throttled"  # kept and attached to its case, never sent to the model
    MERGED = "merged"  # a repeat answered by the turn for the first message


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # leased by a sender
    SENT = "sent"
    DEAD = "dead"
    CANCELLED = "cancelled"  # STOP, or a broadcast a coordinator cancelled


class IncidentStatus(StrEnum):
    OPEN = "open"
    DISPATCH_REQUESTED = "dispatch_requested"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


class DispatchStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    REJECTED = "rejected"


class TeamStatus(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    OFFLINE = "offline"  # no longer in the config; kept because dispatches name it
    LENT = "lent"  # lent to another district (bot/region): never picked here until returned


# Statuses are StrEnums: equal to their plain-string values, so SQL parameters, JSON output and
# comparisons with strings are unchanged.
OPEN_INCIDENT: tuple[IncidentStatus, ...] = (
    IncidentStatus.OPEN,
    IncidentStatus.DISPATCH_REQUESTED,
    IncidentStatus.ASSIGNED,
)
ACTIVE_DISPATCH: tuple[DispatchStatus, ...] = (
    DispatchStatus.PENDING_APPROVAL,
    DispatchStatus.APPROVED,
    DispatchStatus.ASSIGNED,
    DispatchStatus.EN_ROUTE,
    DispatchStatus.ARRIVED,
)


class Lane(IntEnum):
    """Outbound priority lanes: lower drains first (``for lane in Lane`` is that order)."""

    # Acks and replies to life-threat messages: in a surge the SIMs' send rate is the limit,
    # and a victim in danger must get their safety instructions before routine acks go out
    # (inside a lane, recipients take turns, so a new routine victim would always win).
    LIFE = -1
    URGENT = 0  # acks, notices to victims, critical alerts
    REPLY = 1  # other replies, coordinator alerts
    BROADCAST = 2  # advisories, sitreps


@dataclass(frozen=True, slots=True)
class Attachment:
    """Media received with a message, already stored on local disk."""

    kind: str  # "image" | "audio" | "video" | "file"
    mimetype: str
    path: str  # local file path under var/
    size: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a transport observed about a message, typed: routing and handlers decide on these,
    never on ``meta`` (which keeps the transport's own diagnostics: event id, SMSC time …)."""

    modem: str | None = None  # SMS: the modem it arrived on (replies prefer it)
    binary: bool = False  # SMS: 8-bit data, no text
    empty: bool = False  # SMS: no text at all
    partial: bool = False  # SMS: parts of a long message never came
    undecryptable: bool = False  # Matrix: E2EE event whose key is missing
    is_direct: bool | None = None  # Matrix: a DM (None: not said, e.g. SMS)
    addressed: bool = False  # Matrix: a pill mention of the bot or a reply to it
    edit_of: str | None = None  # Matrix: the event an m.replace edits
    in_reply_to: str | None = None  # Matrix: the event a reply answers
    msgtype: str = ""  # Matrix: m.text, m.image, m.location …
    voice: bool = False  # Matrix: an audio message marked as a voice note
    media_error: str | None = None  # "too_large" | "download_failed": media not usable
    lat: float | None = None  # a shared location (Matrix m.location)
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message received from a channel, before it is persisted."""

    channel: Channel
    peer: str  # E.164-ish phone number or Matrix user id
    conversation: str  # phone number (SMS) or room id (Matrix)
    text: str
    dedup_key: str  # SMS: sender+SMSC time+text hash; Matrix: event id
    received_at: float  # unix seconds
    attachments: tuple[Attachment, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)  # transport diagnostics: event id, SMSC …
    facts: Facts = field(default_factory=Facts)  # filled at intake (bot.facts) from ``meta``


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message to send; persisted in the outbox before any send attempt."""

    channel: Channel
    peer: str  # phone number or Matrix user id
    conversation: str  # phone number or room id
    text: str
    idem_key: str  # unique per logical message; Matrix tx_id
    lane: Lane = Lane.REPLY
    meta: dict[str, Any] = field(default_factory=dict)  # modem hint, msgtype, image path …


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    kind: str  # "boat" | "medical" | "supply"
    base: str
    capacity: int
    # A TeamStatus (bot.store.teams reads it as one); annotated str until the sitrep in
    # handlers/broadcasts.py counts teams by TeamStatus instead of by plain string.
    status: str = TeamStatus.AVAILABLE


@dataclass(frozen=True, slots=True)
class Dispatch:
    id: int
    incident_id: int
    team_id: str | None
    status: DispatchStatus  # active: ACTIVE_DISPATCH; then completed | rejected
    priority: Priority
    location: str
    idem_key: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    case: str  # short case code, e.g. LF-4821
    priority: Priority
    status: IncidentStatus
    location: str
    people_count: int
    needs: str
    summary: str
    reporter: str
    channel: Channel
    conversation: str
    lang: str
    created_at: float
    updated_at: float
    lat: float | None = None
    lon: float | None = None

    @property
    def peer(self) -> str:
        """The reporter, named as handlers.replies.Sender names a sender: a case is answered
        the way its first message came."""
        return self.reporter
