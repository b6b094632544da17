"""Dispatch tools and the approval policy. The model may *request*; approval follows config.

Idempotency: an incident has at most one active dispatch. A request while one is active updates
it; a new one carries the key `dispatch:<inbox id>`, so reprocessing a message after a crash finds
the dispatch it already made instead of making another."""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import aiosqlite
from pydantic import Field

from bot.models import Dispatch, Incident, Lane, Priority, Role
from bot.store import incidents as store
from bot.store import outbox
from bot.tools import Tool, ToolArgs, ToolRefused
from handlers.context import Services, TurnContext
from handlers.texts import say

log = logging.getLogger(__name__)

PriorityLabel = Literal["critical", "high", "medium", "low"]
STAFF = frozenset({Role.RESPONDER, Role.COORDINATOR})

_MEDICAL = re.compile(
    r"medic|doctor|injur|bleed|snake|unconscious|pregnan|labou?r|fever|diarrh|sick|wound|ors",
    re.I,
)
_SUPPLY = re.compile(r"food|water|ration|supply|supplies|medicine|blanket|tarp", re.I)


def team_kind(needs: str) -> str:
    if _MEDICAL.search(needs):
        return "medical"
    if _SUPPLY.search(needs) and not re.search(r"rescue|trapped|roof|boat|stranded", needs, re.I):
        return "supply"
    return "boat"


def needs_approval(approval: str, priority: Priority) -> bool:
    if approval == "auto":
        return False
    if approval == "auto_critical":
        return priority is not Priority.CRITICAL
    return True


class DispatchArgs(ToolArgs):
    location: str = Field(
        min_length=2, max_length=300, description="Where the people are: village, landmark, roof"
    )
    priority: PriorityLabel = Field(description="critical = life in danger now")
    people_count: int = Field(1, ge=1, le=5000, description="How many people need help")
    needs: str = Field("", max_length=300, description="What they need: rescue, medical, food…")


class NoArgs(ToolArgs):
    pass


class CaseArgs(ToolArgs):
    case: str = Field(pattern=r"(?i)^LF-\d{4,8}$", description="Case code like LF-4821")


class ListArgs(ToolArgs):
    filter: Literal["open", "unassigned", "overdue"] = Field("open", description="Which cases")


class UpdateArgs(ToolArgs):
    case: str = Field(pattern=r"(?i)^LF-\d{4,8}$", description="Case code like LF-4821")
    priority: PriorityLabel | None = Field(None, description="New priority")
    location: str | None = Field(None, max_length=300, description="Corrected location")
    people_count: int | None = Field(None, ge=1, le=5000, description="Corrected head count")
    note: str | None = Field(None, max_length=300, description="Situation note for the case")


def describe_dispatch(d: Dispatch) -> dict[str, Any]:
    return {"team": d.team_id, "status": d.status, "priority": d.priority.label}


async def incident_summary(conn: aiosqlite.Connection, incident: Incident) -> dict[str, Any]:
    ds = await store.dispatches_for(conn, incident.id)
    return {
        "case": incident.case,
        "status": incident.status,
        "priority": incident.priority.label,
        "location": incident.location,
        "people_count": incident.people_count,
        "needs": incident.needs,
        "dispatches": [describe_dispatch(d) for d in ds],
    }


def alert_text(incident: Incident, headline: str, now: float) -> str:
    age_min = max(0, int((now - incident.created_at) // 60))
    return (
        f"[{incident.priority.label.upper()}] {incident.case} {headline}\n"
        f"where: {incident.location or '?'} | people: {incident.people_count} | "
        f"needs: {incident.needs or '?'}\n"
        f"{incident.summary[:160]}\nvia {incident.channel.value}, {age_min} min ago"
    )


async def request_dispatch(ctx: TurnContext, args: DispatchArgs) -> dict[str, Any]:
    if ctx.incident_id is None:
        raise ToolRefused("no case is open for this sender")
    services = ctx.services
    now = ctx.now()
    # The message's own triage is a floor: the model may raise urgency, never lower it.
    priority = min(Priority.from_label(args.priority), ctx.row.priority)
    async with ctx.db.transaction() as conn:
        incident = await store.get(conn, ctx.incident_id)
        assert incident is not None
        dispatch = await store.dispatch_by_key(conn, f"dispatch:{ctx.row.id}")
        if dispatch is None:
            dispatch = await store.active_dispatch(conn, incident.id)
        created = False
        if dispatch is None:
            pending = needs_approval(services.settings.dispatch.approval, priority)
            dispatch = await store.create_dispatch(
                conn,
                incident_id=incident.id,
                kind=team_kind(f"{args.needs} {incident.summary}"),
                status="pending_approval" if pending else "approved",
                priority=priority,
                location=args.location,
                people_count=args.people_count,
                needs=args.needs,
                idem_key=f"dispatch:{ctx.row.id}",
                requested_by=ctx.row.peer,
                now=now,
            )
            created = True
            if not pending:
                dispatch = await _assign(conn, services, dispatch, None, "policy:auto", now)
        await store.update(
            conn,
            incident.id,
            now,
            location=args.location,
            people_count=args.people_count,
            needs=args.needs or incident.needs,
            status="assigned" if dispatch.team_id else "dispatch_requested",
        )
        await store.escalate(conn, incident.id, priority, now)
        incident = await store.get(conn, incident.id)
        assert incident is not None
        if created:
            await store.audit(
                conn,
                actor=ctx.row.peer,
                action="dispatch.requested",
                incident_id=incident.id,
                now=now,
                detail={"dispatch": dispatch.id, "status": dispatch.status},
            )
            headline = (
                "DISPATCH REQUEST - approve with !approve " + incident.case
                if dispatch.status == "pending_approval"
                else f"dispatched automatically: team {dispatch.team_id or 'none available'}"
            )
            alert = services.notifier.to_coordinators(
                alert_text(incident, headline, now), f"alert:dispatch:{dispatch.id}", Lane.URGENT
            )
            if alert is not None:
                await outbox.enqueue(conn, alert, now=now, incident_id=incident.id)
    log.info("dispatch #%d for %s: %s", dispatch.id, incident.case, dispatch.status)
    return {
        "case": incident.case,
        "dispatch_status": dispatch.status,
        "team": dispatch.team_id,
        "approval": "a coordinator must approve"
        if dispatch.status == "pending_approval"
        else "approved",
        "already_requested": not created,
    }


async def _assign(
    conn: aiosqlite.Connection,
    services: Services,
    dispatch: Dispatch,
    team_id: str | None,
    actor: str,
    now: float,
) -> Dispatch:
    kind = "boat"
    row = await conn.execute("SELECT kind FROM dispatches WHERE id=?", (dispatch.id,))
    found = await row.fetchone()
    if found:
        kind = found[0]
    team = await store.pick_team(conn, kind, team_id)
    if team is None:
        await store.set_dispatch(conn, dispatch.id, now, status="approved", decided_by=actor)
        log.warning("dispatch #%d approved but no team of kind %s is available", dispatch.id, kind)
    else:
        await store.set_dispatch(
            conn, dispatch.id, now, status="assigned", team_id=team.id, decided_by=actor
        )
        await store.set_team_status(conn, team.id, "busy", now)
    await store.audit(
        conn,
        actor=actor,
        action="dispatch.assigned",
        incident_id=dispatch.incident_id,
        now=now,
        detail={"dispatch": dispatch.id, "team": team.id if team else None},
    )
    refreshed = await store.dispatch_by_key(conn, dispatch.idem_key)
    assert refreshed is not None
    return refreshed


async def own_status(ctx: TurnContext, _: NoArgs) -> dict[str, Any]:
    if ctx.incident_id is None:
        return {"case": None, "status": "no open case"}
    async with ctx.db.transaction() as conn:
        incident = await store.get(conn, ctx.incident_id)
        assert incident is not None
        return await incident_summary(conn, incident)


async def case_status(ctx: TurnContext, args: CaseArgs) -> dict[str, Any]:
    incident = await store.by_case(ctx.db, args.case)
    if incident is None:
        raise ToolRefused(f"no case {args.case.upper()}")
    async with ctx.db.transaction() as conn:
        return await incident_summary(conn, incident)


async def list_open(ctx: TurnContext, args: ListArgs) -> dict[str, Any]:
    views = await select_cases(ctx.services, args.filter)
    return {"cases": [v.to_json() for v in views[:20]], "total": len(views)}


async def select_cases(services: Services, which: str) -> list[store.IncidentView]:
    views = await store.views(services.db, status="open")
    now = services.clock()
    overdue_s = services.settings.dispatch.overdue_after_min * 60
    if which == "unassigned":
        views = [v for v in views if not any(d.team_id for d in v.dispatches)]
    elif which == "overdue":
        views = [
            v
            for v in views
            if not any(d.team_id for d in v.dispatches) and now - v.incident.created_at > overdue_s
        ]
    return views


async def update_case(ctx: TurnContext, args: UpdateArgs) -> dict[str, Any]:
    incident = await store.by_case(ctx.db, args.case)
    if incident is None:
        raise ToolRefused(f"no case {args.case.upper()}")
    fields: dict[str, Any] = {}
    if args.priority:
        fields["priority"] = Priority.from_label(args.priority)
    if args.location:
        fields["location"] = args.location
    if args.people_count:
        fields["people_count"] = args.people_count
    if args.note:
        fields["summary"] = f"{incident.summary} | {args.note}"[-300:]
    now = ctx.now()
    async with ctx.db.transaction() as conn:
        await store.update(conn, incident.id, now, **fields)
        await store.audit(
            conn,
            actor=ctx.row.peer,
            action="incident.updated",
            incident_id=incident.id,
            now=now,
            detail={k: str(v) for k, v in fields.items()},
        )
        fresh = await store.get(conn, incident.id)
        assert fresh is not None
        return await incident_summary(conn, fresh)


VICTIM_TOOLS: list[Tool[Any, TurnContext]] = [
    Tool(
        name="dispatch_rescue_team",
        description="Request a rescue/medical/supply team for the sender's own case. Use when "
        "people need to be rescued or need urgent help on site.",
        args=DispatchArgs,
        roles=frozenset({Role.PUBLIC}),
        run=request_dispatch,
    ),
    Tool(
        name="get_incident_status",
        description="Status of the sender's own case and its dispatches.",
        args=NoArgs,
        roles=frozenset({Role.PUBLIC}),
        run=own_status,
    ),
]

RESPONDER_TOOLS: list[Tool[Any, TurnContext]] = [
    Tool(
        name="list_open_incidents",
        description="List open cases, most urgent first.",
        args=ListArgs,
        roles=STAFF,
        run=list_open,
    ),
    Tool(
        name="update_incident",
        description="Correct a case's priority, location, head count or add a note.",
        args=UpdateArgs,
        roles=STAFF,
        run=update_case,
    ),
    Tool(
        name="get_incident_status",
        description="Status of a case by its code.",
        args=CaseArgs,
        roles=STAFF,
        run=case_status,
    ),
]


# ---- coordinator decisions (deterministic commands, never the model) -------------------------


class DecisionError(Exception):
    """A coordinator command that cannot be carried out; the message says why."""


async def approve(services: Services, case: str, team_id: str | None, actor: str) -> str:
    return await _decide(services, case, actor, approve_team=team_id, approve=True)


async def assign(services: Services, case: str, team_id: str, actor: str) -> str:
    return await _decide(services, case, actor, approve_team=team_id, approve=True, force=True)


async def reject(services: Services, case: str, reason: str, actor: str) -> str:
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        dispatch = await store.active_dispatch(conn, incident.id)
        if dispatch is None or dispatch.status != "pending_approval":
            raise DecisionError(f"{incident.case} has no dispatch waiting for approval")
        await store.set_dispatch(
            conn, dispatch.id, now, status="rejected", decided_by=actor, reason=reason
        )
        await store.update(conn, incident.id, now, status="open")
        await store.audit(
            conn,
            actor=actor,
            action="dispatch.rejected",
            incident_id=incident.id,
            now=now,
            detail={"reason": reason},
        )
        text = say("dispatch_rejected", incident.lang, case=incident.case, note=reason)
        await tell_victim(conn, services, incident, text, f"victim:rejected:{dispatch.id}", now)
    return f"{incident.case}: dispatch rejected ({reason}); the reporter was told."


async def arrived(services: Services, case: str, actor: str) -> str:
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        dispatch = await store.active_dispatch(conn, incident.id)
        if dispatch is None or not dispatch.team_id:
            raise DecisionError(f"{incident.case} has no team assigned")
        await store.set_dispatch(conn, dispatch.id, now, status="arrived")
        await store.audit(
            conn,
            actor=actor,
            action="dispatch.arrived",
            incident_id=incident.id,
            now=now,
            detail={"team": dispatch.team_id},
        )
        text = say("team_arrived", incident.lang, case=incident.case, team=dispatch.team_id)
        await tell_victim(conn, services, incident, text, f"victim:arrived:{dispatch.id}", now)
    return f"{incident.case}: team {dispatch.team_id} arrived; the reporter was told."


async def resolve(services: Services, case: str, note: str, actor: str) -> str:
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        for d in await store.dispatches_for(conn, incident.id):
            if d.status in store.ACTIVE_DISPATCH:
                await store.set_dispatch(conn, d.id, now, status="completed", decided_by=actor)
                if d.team_id:
                    await store.release_team(conn, d.team_id, now)
        await store.update(conn, incident.id, now, status="resolved")
        await store.audit(
            conn,
            actor=actor,
            action="incident.resolved",
            incident_id=incident.id,
            now=now,
            detail={"note": note},
        )
        text = say("resolved", incident.lang, case=incident.case, note=note).strip()
        key = f"victim:resolved:{incident.id}:{int(now)}"
        await tell_victim(conn, services, incident, text, key, now, Lane.REPLY)
    return f"{incident.case} resolved; the reporter was told."


async def tell_victim(
    conn: aiosqlite.Connection,
    services: Services,
    incident: Incident,
    text: str,
    key: str,
    now: float,
    lane: Lane = Lane.URGENT,
) -> None:
    """Close the loop: the reporter hears every decision on their own channel, in the same
    transaction as the decision."""
    out = services.notifier.to_victim(incident, text, key, lane)
    await outbox.enqueue(conn, out, now=now, incident_id=incident.id)


async def _incident(services: Services, case: str) -> Incident:
    incident = await store.by_case(services.db, case)
    if incident is None:
        raise DecisionError(f"no case {case.upper()}")
    return incident


async def _decide(
    services: Services,
    case: str,
    actor: str,
    *,
    approve_team: str | None,
    approve: bool,
    force: bool = False,
) -> str:
    incident = await _incident(services, case)
    if incident.status == "resolved":
        raise DecisionError(f"{incident.case} is already resolved")
    now = services.clock()
    async with services.db.transaction() as conn:
        if approve_team is not None:
            team = await store.pick_team(conn, "boat", approve_team)
            if team is None:
                raise DecisionError(f"no team {approve_team} (see !teams)")
            if team.status != "available":
                raise DecisionError(f"team {team.id} is {team.status}")
        dispatch = await store.active_dispatch(conn, incident.id)
        if dispatch is None:
            if not force:
                raise DecisionError(f"{incident.case} has no dispatch request; use !assign")
            dispatch = await store.create_dispatch(
                conn,
                incident_id=incident.id,
                kind=team_kind(incident.needs),
                status="approved",
                priority=incident.priority,
                location=incident.location,
                people_count=incident.people_count,
                needs=incident.needs,
                idem_key=f"dispatch:manual:{incident.id}:{int(now * 1000)}",
                requested_by=actor,
                now=now,
            )
        elif dispatch.status != "pending_approval" and not force:
            raise DecisionError(f"{incident.case} dispatch is already {dispatch.status}")
        if dispatch.team_id and force:
            await store.release_team(conn, dispatch.team_id, now)
        dispatch = await _assign(conn, services, dispatch, approve_team, actor, now)
        await store.update(
            conn,
            incident.id,
            now,
            status="assigned" if dispatch.team_id else "dispatch_requested",
            owner=actor,
        )
        key = "approved" if not force else f"assigned:{dispatch.team_id}"
        text = (
            say(
                "dispatch_approved", incident.lang, case=incident.case, team=dispatch.team_id or "-"
            )
            if not force
            else say("team_assigned", incident.lang, case=incident.case, team=dispatch.team_id)
        )
        await tell_victim(conn, services, incident, text, f"victim:{key}:{dispatch.id}", now)
    team_txt = dispatch.team_id or "no team available yet"
    return f"{incident.case}: approved, team {team_txt}; the reporter was told."
