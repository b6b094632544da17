"""Team inventory for dispatch: which kind of team a case needs, which free team serves it, and
what the coordinator must hear when the team they chose is of another kind."""

from __future__ import annotations

import logging
import re

import aiosqlite

from bot.models import Dispatch, Incident, Priority
from bot.store import incidents as store
from handlers.dispatch.transition import CaseStep
from handlers.public_text import inline

log = logging.getLogger(__name__)

_RESCUE = re.compile(
    r"rescue|trapped|roof|boat|stranded|stuck|drown|evacuat|marooned|surrounded", re.I
)
_MEDICAL = re.compile(
    r"medic|doctor|injur|bleed|snake|unconscious|pregnan|labou?r|fever|diarrh|sick|wound"
    r"|\bors\b",
    re.I,
)
_SUPPLY = re.compile(r"food|water|ration|supply|supplies|medicine|blanket|tarp", re.I)
# Kinds that can do a job, best first: a boat can carry supplies, but nothing replaces a boat
# for a rescue or a medical team for the sick.
SERVES: dict[str, tuple[str, ...]] = {
    "boat": ("boat",),
    "medical": ("medical",),
    "supply": ("supply", "boat"),
}


def team_kind(needs: str) -> str:
    """What a case needs first. People who must be taken off a roof need a boat even when one
    of them is hurt (the medical team cannot reach them without it)."""
    if _RESCUE.search(needs):
        return "boat"
    if _MEDICAL.search(needs):
        return "medical"
    if _SUPPLY.search(needs):
        return "supply"
    return "boat"


def needs_approval(approval: str, priority: Priority) -> bool:
    if approval == "auto":
        return False
    if approval == "auto_critical":
        return priority is not Priority.CRITICAL
    return True


async def assign_team(step: CaseStep, dispatch: Dispatch, team_id: str | None) -> Dispatch:
    """Give ``dispatch`` the named team, or the first free team of a kind that serves it; with
    none free it stays approved and waits."""
    conn, actor, now = step.conn, step.actor, step.now
    kind = await store.dispatch_kind(conn, dispatch.id)
    team = await store.pick_team(conn, kind, team_id) if team_id else None
    for serving in () if team_id else SERVES.get(kind, (kind,)):
        team = await store.pick_team(conn, serving)
        if team is not None:
            break
    if team is None:
        await store.set_dispatch(conn, dispatch.id, now, status="approved", decided_by=actor)
        log.warning("dispatch #%d approved but no team of kind %s is available", dispatch.id, kind)
    else:
        await store.set_dispatch(
            conn, dispatch.id, now, status="assigned", team_id=team.id, decided_by=actor
        )
        await store.set_team_status(conn, team.id, "busy", now)
    assigned = team.id if team else None
    await step.audit("dispatch.assigned", {"dispatch": dispatch.id, "team": assigned})
    refreshed = await store.dispatch_by_key(conn, dispatch.idem_key)
    assert refreshed is not None
    return refreshed


async def kind_remark(
    conn: aiosqlite.Connection, incident: Incident, dispatch: Dispatch, kind: str
) -> str:
    """What the coordinator must know about the team's kind: a warning when the team they
    named is not the kind the case needs; when no team of that kind is free but others are,
    the whole answer (nothing of another kind is sent without their explicit choice)."""
    serving = SERVES.get(kind, (kind,))
    teams = await store.list_teams(conn)
    if dispatch.team_id:
        team = next((t for t in teams if t.id == dispatch.team_id), None)
        if team is None or team.kind in serving:
            return ""
        return (
            f" WARNING: {team.id} is a {team.kind} team, but this case needs a {kind} team "
            f"(needs: {inline(incident.needs, 60) or '?'})."
        )
    others = [t for t in teams if t.status == "available" and t.kind not in serving]
    if not others:
        return ""
    listed = ", ".join(f"{t.id} ({t.kind})" for t in others)
    return (
        f" {incident.case}: approved, but no {kind} team is free, and this case needs a {kind} "
        f"team. The request waits for one; the reporter was told a team will be assigned as "
        f"soon as one is free. Free teams of another kind: {listed}. To send one anyway: "
        f"!approve {incident.case} <team>."
    )
