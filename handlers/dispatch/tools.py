"""The dispatch tools the model may call: a victim's own dispatch request and case status; staff
look-ups and rising-only case updates (handlers.authority decides what a call may change).

Idempotency: an incident has at most one active dispatch. A request while one is active updates
it; a new one carries the key `dispatch:<inbox id>`, so reprocessing a message after a crash finds
the dispatch it already made instead of making another."""

from __future__ import annotations

import logging
from typing import Any

import aiosqlite

from bot.models import Dispatch, Incident, Lane, Priority, Role
from bot.store import confirmations, outbox
from bot.store import incidents as store
from bot.tools import Tool, ToolRefused
from handlers import authority
from handlers.context import Services, TurnContext
from handlers.dispatch.notices import alert_text
from handlers.dispatch.teams import assign_team, needs_approval, team_kind
from handlers.dispatch.tool_args import CaseArgs, DispatchArgs, ListArgs, NoArgs, UpdateArgs
from handlers.dispatch.transition import CaseStep
from handlers.public_text import UNTRUSTED_NOTE

log = logging.getLogger(__name__)

STAFF = frozenset({Role.RESPONDER, Role.COORDINATOR})


def describe_dispatch(d: Dispatch) -> dict[str, Any]:
    return {"team": d.team_id, "status": d.status, "priority": d.priority.label}


def case_for_model(
    incident: Incident, dispatches: list[Dispatch], *, with_summary: bool = True
) -> dict[str, Any]:
    """A case as a tool result: the backend's facts, and the public's words under public_text.
    A victim's own status leaves the summary out (their own words, nothing they need back)."""
    public = {"location": incident.location, "needs": incident.needs}
    if with_summary:
        public["summary"] = incident.summary
    return {
        "case": incident.case,
        "status": incident.status,
        "priority": incident.priority.label,
        "people_count": incident.people_count or None,  # None: not known yet
        "dispatches": [describe_dispatch(d) for d in dispatches],
        "public_text": public,
    }


async def incident_summary(
    conn: aiosqlite.Connection, incident: Incident, *, with_summary: bool = True
) -> dict[str, Any]:
    ds = await store.dispatches_for(conn, incident.id)
    return {**case_for_model(incident, ds, with_summary=with_summary), "note": UNTRUSTED_NOTE}


async def request_dispatch(ctx: TurnContext, args: DispatchArgs) -> dict[str, Any]:
    if ctx.incident_id is None:
        raise ToolRefused("no case is open for this sender")
    services = ctx.services
    now = ctx.now()
    async with ctx.db.transaction() as conn:
        incident = await store.get(conn, ctx.incident_id)
        assert incident is not None
        # The message's triage and the case are floors: the model may raise urgency, never
        # lower it; an omitted priority means "as the case says".
        priority = min(ctx.row.priority, incident.priority)
        if args.priority is not None:
            priority = min(priority, Priority.from_label(args.priority))
        people = max(args.people_count or 0, incident.people_count)
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
                people_count=people,
                needs=store.merge_needs(incident.needs, args.needs),
                idem_key=f"dispatch:{ctx.row.id}",
                requested_by=ctx.row.peer,
                now=now,
            )
            created = True
            if not pending:
                auto = CaseStep(services, conn, incident, "policy:auto", now)
                dispatch = await assign_team(auto, dispatch, None)
        await store.add_facts(
            conn,
            incident.id,
            now,
            people_count=args.people_count,
            needs=args.needs,
            location=args.location,
        )
        await store.update(
            conn, incident.id, now, status="assigned" if dispatch.team_id else "dispatch_requested"
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
                else f"dispatched automatically: team {dispatch.team_id}"
                if dispatch.team_id
                else f"approved automatically, but no team of the kind it needs is free: "
                f"assign one with !assign {incident.case} <team>"
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


async def own_status(ctx: TurnContext, _: NoArgs) -> dict[str, Any]:
    if ctx.incident_id is None:
        return {"case": None, "status": "no open case"}
    async with ctx.db.transaction() as conn:
        incident = await store.get(conn, ctx.incident_id)
        assert incident is not None
        return await incident_summary(conn, incident, with_summary=False)


async def case_status(ctx: TurnContext, args: CaseArgs) -> dict[str, Any]:
    incident = await store.by_case(ctx.db, args.case)
    if incident is None:
        raise ToolRefused(f"no case {args.case.upper()}")
    async with ctx.db.transaction() as conn:
        return await incident_summary(conn, incident)


async def list_open(ctx: TurnContext, args: ListArgs) -> dict[str, Any]:
    views = await select_cases(ctx.services, args.filter)
    cases = [case_for_model(v.incident, v.dispatches) for v in views[:20]]
    return {"cases": cases, "total": len(views), "note": UNTRUSTED_NOTE}


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
    """A staff member's model turn asks to change a case: only added or raised facts, and only
    for a case the staff member named; anything else waits for their "yes" (handlers.authority).
    """
    requested = args.model_dump(exclude={"case"}, exclude_none=True)
    now = ctx.now()
    async with ctx.db.transaction() as conn:
        incident = await store.by_case_in(conn, args.case)
        if incident is None:
            raise ToolRefused(f"no case {args.case.upper()}")
        if incident.status == "resolved":
            raise ToolRefused(f"{incident.case} is resolved; only a person reopens or changes it")
        if not requested:
            raise ToolRefused(
                "nothing to change: update_incident raises a priority or head count, corrects "
                "a location or adds a note; closing a case and dispatch decisions are !commands "
                "for people"
            )
        plan = authority.plan_update(incident, requested)
        if not plan.changes:
            # Raised, the whole call is refused: the tool-error path audits it with the reason.
            raise ToolRefused("; ".join(plan.refused) or f"{incident.case} already says that")
        await authority.audit_limits(conn, ctx.row, incident, "tool.limited", plan.refused, now)
        if incident.case not in authority.named_cases(ctx.row.text):
            await confirmations.hold(
                conn,
                peer=ctx.row.peer,
                conversation=ctx.row.conversation,
                inbox_id=ctx.row.id,
                change={"case": incident.case, "update": plan.changes},
                now=now,
                ttl_s=authority.CONFIRM_TTL_S,
            )
            reason = (
                f"{incident.case} was not named in the staff member's own message, so nothing "
                f"was changed; the bot asks them to confirm the change"
            )
            await authority.audit_limits(
                conn, ctx.row, incident, "tool.held", [reason], now, change=plan.changes
            )
            return {
                "applied": False,
                "reason": reason,
                "awaiting_confirmation": authority.describe(incident.case, plan.changes),
                "refused": plan.refused,
            }
        await authority.apply(
            conn, incident, plan.changes, actor=ctx.row.peer, via="model, case named", now=now
        )
        fresh = await store.get(conn, incident.id)
        assert fresh is not None
        summary = await incident_summary(conn, fresh)
        return {**summary, "applied": plan.changes, "refused": plan.refused}


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
        description="Raise a case's priority or head count, correct its location or add a "
        "note. It changes only a case the staff member named by its code; otherwise they are "
        "asked to confirm. Lowering, closing and dispatch changes are !commands for people.",
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
