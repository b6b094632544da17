"""The board's JSON shapes (README, "The incident board"): a case, a team, a case's timeline.

Victims' numbers are masked for responders (bot.redact.mask_peer) and whole for coordinators.
Victim text is returned as it is, inside JSON: the page sets it with textContent only."""

from __future__ import annotations

import json
import re
from typing import Any

import aiosqlite

from bot import sms_text
from bot.models import Channel, Dispatch, Incident, Role, Team
from bot.redact import mask_peer
from bot.store.board import CaseRow, Story, TeamWork
from handlers.dispatch.teams import SERVES

_NEEDS_SPLIT = re.compile(r"\s*[;,]\s*")


def peer_for(role: Role, peer: str) -> str:
    return peer if role is Role.COORDINATOR else mask_peer(peer)


def dispatch_json(d: Dispatch | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "id": d.id,
        "status": str(d.status),
        "team": d.team_id,
        "priority": d.priority.label,
    }


def case_json(row: CaseRow, role: Role, now: float, overdue_s: float) -> dict[str, Any]:
    i: Incident = row.incident
    d = row.dispatch
    open_ = i.status != "resolved"
    return {
        "code": i.case,
        "priority": i.priority.label,
        "status": str(i.status),
        "opened_at": i.created_at,
        "updated_at": i.updated_at,
        "last_contact_at": row.last_contact_at,
        "location": i.location,
        "location_exact": i.lat is not None and i.lon is not None,
        "lat": i.lat,
        "lon": i.lon,
        "people": i.people_count or None,
        "needs": [n for n in _NEEDS_SPLIT.split(i.needs.strip()) if n],
        "team": d.team_id if d is not None else None,
        "channel": i.channel.value,
        "language": i.lang,
        "peer": peer_for(role, i.reporter),
        "summary": i.summary,
        "dispatch": dispatch_json(d),
        "overdue": open_ and (d is None or d.team_id is None) and now - i.created_at > overdue_s,
    }


def team_json(
    team: Team, work: TeamWork | None, base_at: tuple[float, float] | None = None
) -> dict[str, Any]:
    """``lat``/``lon``: the team's base (``[[teams]] base_at``; null when not configured);
    ``case_at``: where the case it is out on is, when that case has a position."""
    status = {"available": "free"}.get(str(team.status), str(team.status))
    return {
        "id": team.id,
        "kind": team.kind,
        "base": team.base,
        "capacity": team.capacity,
        "status": status,
        "case": None if work is None else work.case,
        "lat": None if base_at is None else base_at[0],
        "lon": None if base_at is None else base_at[1],
        "case_at": None if work is None or work.at is None else list(work.at),
    }


def team_choice(teams: list[Team], kind: str) -> list[str]:
    """Free teams for a case needing ``kind``: the kinds that serve it first (best kind first,
    then the largest), then free teams of other kinds (sent only by a person's explicit choice,
    as handlers/dispatch/teams.py says)."""
    serving = SERVES.get(kind, (kind,))
    free = [t for t in teams if t.status == "available"]
    right = sorted(
        (t for t in free if t.kind in serving), key=lambda t: (serving.index(t.kind), -t.capacity)
    )
    return [t.id for t in right] + [t.id for t in free if t.kind not in serving]


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


def _media(inbox_id: int, attachments: str) -> list[dict[str, Any]]:
    items = _json(attachments) if attachments else []
    return [
        {
            "id": f"{inbox_id}-{n}",
            "kind": a.get("kind", "file"),
            "mime": a.get("mimetype", "application/octet-stream"),
            "url": f"/media/{inbox_id}-{n}",
        }
        for n, a in enumerate(items if isinstance(items, list) else [])
        if isinstance(a, dict)
    ]


def _parts(channel: str, text: str) -> int | None:
    return sms_text.segments(sms_text.gsm_fold(text)) if channel == Channel.SMS.value else None


def timeline(story: Story, incident: Incident, role: Role) -> list[dict[str, Any]]:
    """The case's whole story in time order: messages in and out, model turns with their
    passages and tool calls, dispatches, audit entries."""
    entries: list[dict[str, Any]] = []

    def who(peer: str) -> str:
        return peer_for(role, peer) if peer == incident.reporter else peer

    for r in story.inbound:
        meta = _json(r["meta"])
        entries.append(
            {
                "at": r["received_at"],
                "kind": "in",
                "id": r["id"],
                "channel": r["channel"],
                "from": who(r["peer"]),
                "text": r["text"],
                "status": r["status"],
                "parts": meta.get("parts") if r["channel"] == Channel.SMS.value else None,
                "msgtype": r["msgtype"] or None,
                "lat": r["lat"],
                "lon": r["lon"],
                "media": _media(int(r["id"]), r["attachments"]),
            }
        )
    for r in story.outbound:
        to_reporter = r["peer"] == incident.reporter
        entries.append(
            {
                "at": r["created_at"],
                "kind": "out",
                "id": r["id"],
                "channel": r["channel"],
                "to": "reporter" if to_reporter else "coordinators",
                "text": r["text"],
                "status": r["status"],
                "sent_at": r["sent_at"],
                "error": r["error"],
                "parts": _parts(r["channel"], r["text"]) if to_reporter else None,
            }
        )
    for r in story.turns:
        detail = _json(r["detail"])
        entries.append(
            {
                "at": r["at"],
                "kind": "model_turn",
                "inbox_id": r["inbox_id"],
                "ok": bool(r["ok"]),
                "seconds": r["seconds"],
                "error": r["error"],
                "passages": detail.get("passages", []),
                "tool_calls": detail.get("tool_calls", []),
                "reply": detail.get("reply"),
            }
        )
    for r in story.dispatches:
        entries.append(
            {
                "at": r["created_at"],
                "kind": "dispatch",
                "id": r["id"],
                "status": r["status"],
                "team": r["team_id"],
                "priority": r["priority"],
                "by": who(r["decided_by"] or r["requested_by"]),
                "updated_at": r["updated_at"],
            }
        )
    for r in story.audit:
        entries.append(_audit_entry(r, who))
    entries.sort(key=lambda e: (e["at"], _ORDER[e["kind"]]))
    return entries


_ORDER = {"in": 0, "model_turn": 1, "dispatch": 2, "audit": 3, "out": 4}


def _audit_entry(r: aiosqlite.Row, who: Any) -> dict[str, Any]:
    return {
        "at": r["at"],
        "kind": "audit",
        "actor": who(r["actor"]),
        "action": r["action"],
        "detail": _json(r["detail"]),
    }
