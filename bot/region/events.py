"""Regional events: the schema every Lifeline gateway publishes to, and reads from, the federated
regional room. This module is the contract: readers and writers use the same checks.

Pure: no I/O, no clock. Numbers are whole (``at`` and ``until`` in unix seconds, coordinates as
text): Matrix's canonical JSON has no floats, and a homeserver refuses an event with one. One event
is an ``m.room.message`` with ``msgtype: m.notice``; its ``body`` is a line for people (Element
shows it) and the machine part sits in the namespaced field ``"org.lifeline.region": {"v": 1,
"district", "seq", "kind", "at", "data"}``. ``seq`` is per district and strictly increasing; the
send's ``txn_id`` is ``lifeline-region-{district}-{seq}``, so a republish is one event on the
homeserver and readers dedupe on (district, seq).

What may leave a district is decided here: free text (location, needs, summary, note) is cut and
loses anything that looks like a phone number; there is no field for a reporter, a number or a
victim's message, and ``build`` refuses unknown data keys, so none can be added by mistake."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

VERSION: Final = 1
FIELD: Final = "org.lifeline.region"
MSGTYPE: Final = "m.notice"
KINDS: Final = ("case", "case_state", "teams", "sitrep", "need", "lend", "return", "hello")
PRIORITIES: Final = ("critical", "high", "medium", "low")
TEAM_STATES: Final = ("free", "busy", "lent", "borrowed", "offline")
ANY_DISTRICT: Final = "*"  # a `need` addressed to every district
DISTRICT_RE: Final = re.compile(r"[A-Z][A-Z0-9]{1,7}")
TEXT_MAX: Final = 200  # free-text fields are cut here (a summary line, not a message)
MAX_TEAMS: Final = 200


class EventError(ValueError):
    """Content that is not a valid regional event; ``reason`` says which part and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A phone number: 7+ digits, maybe with +, spaces, dots, dashes or brackets between them. A case
# code (BHO-4821) is never free text, and its 4-8 digits follow a letter and a dash.
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[\s().-]{0,2}\d){6,}(?!\w)")


def scrub(text: str, limit: int = TEXT_MAX) -> str:
    """Free text fit to leave the district: one line, phone numbers replaced, at most `limit`."""
    flat = " ".join(str(text).split())
    return _PHONE.sub("[number]", flat)[:limit]


def txn_id(district: str, seq: int) -> str:
    """The Matrix transaction id of an event: the same change is the same send."""
    return f"lifeline-region-{district}-{seq}"


# ---- per-kind data: (required keys with their checks), optional keys --------------------------

_Check = Any  # a callable (name, value) -> value, raising EventError


def _str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise EventError(f"{name}: expected text, got {type(v).__name__}")
    return v


def _text(name: str, v: Any) -> str:
    return scrub(_str(name, v))


def _code(name: str, v: Any) -> str:
    code = _str(name, v)
    if not re.fullmatch(r"[A-Z][A-Z0-9]{1,7}-\d{4,8}", code):
        raise EventError(f"{name}: not a case code like BHO-4821: {code!r}")
    return code


def _district(name: str, v: Any) -> str:
    code = _str(name, v)
    if not DISTRICT_RE.fullmatch(code):
        raise EventError(f"{name}: not a district code (2-8 capitals/digits): {code!r}")
    return code


def _target(name: str, v: Any) -> str:
    return v if v == ANY_DISTRICT else _district(name, v)


def _int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise EventError(f"{name}: expected a whole number >= 0, got {v!r}")
    return v


def _count(name: str, v: Any) -> int:
    if _int(name, v) < 1:
        raise EventError(f"{name}: expected at least 1")
    return int(v)


def _num(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise EventError(f"{name}: expected a number, got {v!r}")
    return float(v)


def _coord(name: str, v: Any) -> str:
    """Degrees as text ("23.81030"): Matrix events carry no floats (canonical JSON)."""
    try:
        value = float(_str(name, v))
    except ValueError:
        raise EventError(f'{name}: expected degrees as text, e.g. "23.81030"') from None
    if not math.isfinite(value) or abs(value) > 180:
        raise EventError(f"{name}: out of range: {v!r}")
    return str(v)


def degrees(value: float) -> str:
    return f"{value:.5f}"


def _opt(check: _Check) -> _Check:
    def opt(name: str, v: Any) -> Any:
        return None if v is None else check(name, v)

    return opt


def _priority(name: str, v: Any) -> str:
    if v not in PRIORITIES:
        raise EventError(f"{name}: one of {', '.join(PRIORITIES)}, got {v!r}")
    return str(v)


def _counts(name: str, v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        raise EventError(f"{name}: expected a table of counts")
    return {_str(name, k): _int(f"{name}.{k}", n) for k, n in v.items()}


def _team(name: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise EventError(f"{name}: expected a team table")
    return _fields(name, v, _TEAM)


def _teams(name: str, v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list) or len(v) > MAX_TEAMS:
        raise EventError(f"{name}: expected a list of at most {MAX_TEAMS} teams")
    return [_team(f"{name}[{i}]", t) for i, t in enumerate(v)]


def _state(name: str, v: Any) -> str:
    if v not in TEAM_STATES:
        raise EventError(f"{name}: one of {', '.join(TEAM_STATES)}, got {v!r}")
    return str(v)


_Spec = tuple[dict[str, _Check], dict[str, _Check]]
_TEAM: _Spec = (
    {"id": _str, "kind": _str, "status": _state},
    {"lender": _opt(_district), "borrower": _opt(_district), "until": _opt(_int)},
)
_CASE_STATE: dict[str, _Check] = {
    "code": _code,
    "status": _str,
    "priority": _priority,
    "team": _opt(_str),
}
SPECS: Final[dict[str, _Spec]] = {
    "case": (
        {**_CASE_STATE, "location": _text, "people": _int, "needs": _text, "summary": _text},
        {"lat": _opt(_coord), "lon": _opt(_coord)},
    ),
    "case_state": (_CASE_STATE, {}),
    "teams": ({"teams": _teams}, {}),
    "sitrep": ({"open": _int, "by_priority": _counts, "by_status": _counts}, {}),
    "need": ({"to": _target, "kind": _str, "count": _count, "note": _text}, {}),
    "lend": ({"team": _str, "to": _district}, {"until": _opt(_int)}),
    "return": ({"team": _str}, {"to": _opt(_district)}),
    "hello": ({"every_s": _int}, {}),
}


def _fields(where: str, data: dict[str, Any], spec: _Spec) -> dict[str, Any]:
    required, optional = spec
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise EventError(f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise EventError(f"{where}: missing {', '.join(missing)}")
    out = {k: check(f"{where}.{k}", data[k]) for k, check in required.items()}
    out.update({k: check(f"{where}.{k}", data[k]) for k, check in optional.items() if k in data})
    return out


# ---- the event ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegionEvent:
    district: str
    seq: int
    kind: str
    at: int  # unix seconds; whole numbers only (Matrix events carry no floats)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def txn_id(self) -> str:
        return txn_id(self.district, self.seq)

    def to_field(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "district": self.district,
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at,
            "data": self.data,
        }

    def content(self) -> dict[str, Any]:
        """The m.room.message content: a line for people plus the machine field."""
        return {"msgtype": MSGTYPE, "body": body(self), FIELD: self.to_field()}


def build(district: str, seq: int, kind: str, at: float, data: dict[str, Any]) -> RegionEvent:
    """A checked event (free text scrubbed); raises EventError naming the bad part."""
    _district("district", district)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise EventError(f"seq: expected a whole number >= 1, got {seq!r}")
    if kind not in SPECS:
        raise EventError(f"kind: one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(data, dict):
        raise EventError("data: expected a table")
    checked = _fields(kind, data, SPECS[kind])
    return RegionEvent(district, seq, kind, int(_num("at", at)), checked)


def validate(fields: Any) -> RegionEvent:
    """The ``org.lifeline.region`` field as received; a newer ``v`` is refused (not guessed)."""
    if not isinstance(fields, dict):
        raise EventError(f"{FIELD}: expected a table")
    v = fields.get("v")
    if v != VERSION:
        raise EventError(f"v: this gateway reads version {VERSION}, got {v!r}")
    missing = [k for k in ("district", "seq", "kind", "at", "data") if k not in fields]
    if missing:
        raise EventError(f"missing {', '.join(missing)}")
    return build(fields["district"], fields["seq"], fields["kind"], fields["at"], fields["data"])


def parse(content: Any) -> RegionEvent | None:
    """A room message's content → its regional event; None for an ordinary message (no field).
    Raises EventError for a field that is there but invalid."""
    if not isinstance(content, dict) or FIELD not in content:
        return None
    return validate(content[FIELD])


# ---- the human line ----------------------------------------------------------------------------


def _case_line(d: dict[str, Any]) -> str:
    team = f", team {d['team']}" if d.get("team") else ""
    return f"{d['code']} {d['status'].replace('_', ' ')}{team} ({d['priority']})"


def body(event: RegionEvent) -> str:
    """One line per event, e.g. "BHO: new CRITICAL case BHO-4821 at Ulipur ghat, 6 people,
    needs boat"."""
    d, who = event.data, event.district
    match event.kind:
        case "case":
            where = f" at {d['location']}" if d["location"] else ""
            people = f", {d['people']} people" if d["people"] else ""
            needs = f", needs {d['needs']}" if d["needs"] else ""
            return f"{who}: new {d['priority'].upper()} case {d['code']}{where}{people}{needs}"
        case "case_state":
            return f"{who}: case {_case_line(d)}"
        case "teams":
            states = [t["status"] for t in d["teams"]]
            parts = [f"{states.count(s)} {s}" for s in TEAM_STATES if states.count(s)]
            return f"{who} teams: {', '.join(parts) or 'none'}"
        case "sitrep":
            crit, high = d["by_priority"].get("critical", 0), d["by_priority"].get("high", 0)
            return f"{who} sitrep: {d['open']} open ({crit} critical, {high} high)"
        case "need":
            to = "any district" if d["to"] == ANY_DISTRICT else d["to"]
            note = f": {d['note']}" if d["note"] else ""
            return f"{who} needs {d['count']} {d['kind']} from {to}{note}"
        case "lend":
            return f"{who} lends {d['team']} to {d['to']}"
        case "return":
            return f"{who}: {d['team']} returned"
        case _:
            return f"{who}: gateway alive (seq {event.seq})"
