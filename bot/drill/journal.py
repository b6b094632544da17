"""What happened during a drill, as the drill saw it from outside the gateway.

The runner appends one JSON line per event to ``journal.jsonl`` as it happens (so a crash of the
drill keeps what was recorded); the checks and the report read it back. Times are unix seconds
(wall clock)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True, slots=True)
class Injected:
    """One SMS the simulated network delivered to a modem."""

    t: float
    number: str
    text: str
    victim: str  # population/index, e.g. "rooftops/7"
    kind: str  # report | repeat | status | join | flood | hostile
    lang: str
    life_threat: bool = False
    people: int | None = None  # the head count the text states
    modem: str = ""
    # Matrix victims (``number`` is their user id): the event id of the message the homeserver
    # accepted, and how long their client had to keep retrying it (homeserver down). ``t`` is
    # when it was accepted: the ack budget counts from there.
    channel: str = "sms"
    event_id: str = ""
    waited_s: float = 0.0
    media: str = ""  # "voice" | "photo"
    lat: float | None = None  # a photo's EXIF GPS
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A staff message posted in the coordination room by a drill account."""

    t: float
    actor: str
    text: str
    case: str = ""


@dataclass(slots=True)
class FaultSpan:
    kind: str
    start: float
    end: float | None = None  # None: still on when the drill ended
    note: str = ""
    target: str = ""  # modem faults: the modem ("sim2")


@dataclass(frozen=True, slots=True)
class Notice:
    """A message the bot posted in the coordination room (server receive time)."""

    t: float
    body: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A message of the bot a Matrix victim's own client saw in its DM (server receive time)."""

    t: float
    peer: str  # the victim's user id
    body: str
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class ModelMedia:
    """The stand-in model received a victim's voice note or photo (images in the request)."""

    t: float
    peer: str
    kind: str  # "voice" | "photo"
    parts: int  # images (audio clips or photos) in the request


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    inbox_pending: int
    outbox_pending: int
    sent: int


@dataclass
class Journal:
    scenario: str = ""
    started: float = 0.0
    ended: float = 0.0
    humans: bool = False
    staff: list[str] = field(default_factory=list)
    send_per_minute: int = 20  # all modems together
    budgets: dict[str, float] = field(default_factory=dict)
    injected: list[Injected] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    faults: list[FaultSpan] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    model_media: list[ModelMedia] = field(default_factory=list)
    model_observed: bool = False  # the stand-in played the model (media it got is recorded)
    gateway_starts: list[float] = field(default_factory=list)

    def faults_of(self, kind: str) -> list[FaultSpan]:
        return [f for f in self.faults if f.kind == kind]


_KINDS: dict[str, type[Any]] = {
    "inject": Injected,
    "command": Command,
    "notice": Notice,
    "sample": Sample,
    "reply": Reply,
    "model_media": ModelMedia,
}
# Where each kind of event is kept on the Journal.
_LISTS = {
    "inject": "injected",
    "command": "commands",
    "notice": "notices",
    "sample": "samples",
    "reply": "replies",
    "model_media": "model_media",
}
Event = Injected | Command | Notice | Sample | Reply | ModelMedia


class JournalWriter:
    """Appends events to ``journal.jsonl`` and keeps them in memory."""

    def __init__(self, path: Path, journal: Journal) -> None:
        self.path = path
        self.journal = journal
        self._fh: TextIO = path.open("a", encoding="utf-8")

    def _write(self, kind: str, data: dict[str, Any]) -> None:
        self._fh.write(json.dumps({"event": kind, **data}, ensure_ascii=False) + "\n")
        self._fh.flush()

    def meta(self) -> None:
        j = self.journal
        self._write(
            "meta",
            {
                "scenario": j.scenario,
                "started": j.started,
                "ended": j.ended,
                "humans": j.humans,
                "staff": j.staff,
                "send_per_minute": j.send_per_minute,
                "budgets": j.budgets,
                "model_observed": j.model_observed,
            },
        )

    def _record(self, kind: str, ev: Event) -> None:
        getattr(self.journal, _LISTS[kind]).append(ev)
        self._write(kind, asdict(ev))

    def inject(self, ev: Injected) -> None:
        self._record("inject", ev)

    def command(self, ev: Command) -> None:
        self._record("command", ev)

    def notice(self, ev: Notice) -> None:
        self._record("notice", ev)

    def sample(self, ev: Sample) -> None:
        self._record("sample", ev)

    def reply(self, ev: Reply) -> None:
        self._record("reply", ev)

    def model_media(self, ev: ModelMedia) -> None:
        self._record("model_media", ev)

    def fault(self, span: FaultSpan) -> None:
        """Record a fault when it ends (or, with end None, when it starts)."""
        if span not in self.journal.faults:
            self.journal.faults.append(span)
        self._write("fault", asdict(span))

    def gateway_started(self, t: float) -> None:
        self.journal.gateway_starts.append(t)
        self._write("gateway_start", {"t": t})

    def close(self) -> None:
        self._fh.close()


def read(path: Path) -> Journal:
    j = Journal()
    faults: dict[tuple[str, float], FaultSpan] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        kind = data.pop("event")
        if kind == "meta":
            for key, value in data.items():
                setattr(j, key, value)
        elif kind == "fault":
            faults[(data["kind"], data["start"])] = FaultSpan(**data)  # the last record wins
        elif kind == "gateway_start":
            j.gateway_starts.append(data["t"])
        elif kind in _KINDS:
            getattr(j, _LISTS[kind]).append(_KINDS[kind](**data))
    j.faults = sorted(faults.values(), key=lambda f: f.start)
    return j
