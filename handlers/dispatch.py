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

from bot import sms_text
from bot.models import Channel, Dispatch, Incident, Lane, Priority, Role
from bot.store import incidents as store
from bot.store import outbox
from bot.tools import Tool, ToolArgs, ToolRefused
from handlers.context import Services, TurnContext
from handlers.texts import finish_note, say

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
    case: str = Field(pattern=r"(?i)^(LF)?-?\d{4,8}$", description="Case code like LF-4821")


class ListArgs(ToolArgs):
    filter: Literal["open", "unassigned", "overdue"] = Field("open", description="Which cases")


class UpdateArgs(ToolArgs):
    case: str = Field(pattern=r"(?i)^(LF)?-?\d{4,8}$", description="Case code like LF-4821")
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
        "people_count": incident.people_count or None,  # None: not known yet
        "needs": incident.needs,
        "dispatches": [describe_dispatch(d) for d in ds],
    }


def alert_text(incident: Incident, headline: str, now: float) -> str:
    age_min = max(0, int((now - incident.created_at) // 60))
    return (
        f"[{incident.priority.label.upper()}] {incident.case} {headline}\n"
        f"where: {incident.location or '?'} | people: {incident.people_count or '?'} | "
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
#
# Every decision tells the reporter in the same transaction. A notice's idempotency key names
# what makes it unique: the dispatch for once-per-dispatch decisions (approve, reject), the
# incident for the one-time close, and the coordinator's command (its inbox row, ``ref``) for
# decisions that can recur on the same dispatch (a reassignment back to boat-1, a second team
# arriving). Replaying a command after a crash reuses its key, so the reporter hears it once.


class DecisionError(Exception):
    """A coordinator command that cannot be carried out; the message says why."""


def _ref(ref: str | None, now: float) -> str:
    # Callers without an inbox row (tests, scripts) make a one-off decision per call.
    return ref if ref is not None else f"t{int(now * 1000)}"


async def approve(
    services: Services, case: str, team_id: str | None, actor: str, *, ref: str | None = None
) -> str:
    return await _decide(services, case, actor, approve_team=team_id, force=False, ref=ref)


async def assign(
    services: Services, case: str, team_id: str, actor: str, *, ref: str | None = None
) -> str:
    return await _decide(services, case, actor, approve_team=team_id, force=True, ref=ref)


async def reject(services: Services, case: str, reason: str, actor: str) -> str:
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        incident = await _open_incident(conn, incident)
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
        await tell_victim(
            conn,
            services,
            incident,
            "dispatch_rejected",
            f"victim:rejected:{dispatch.id}",
            now,
            note=reason,
        )
    return f"{incident.case}: dispatch rejected ({reason}); the reporter was told."


async def arrived(services: Services, case: str, actor: str, *, ref: str | None = None) -> str:
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        incident = await _open_incident(conn, incident)
        dispatch = await store.active_dispatch(conn, incident.id)
        if dispatch is None or not dispatch.team_id:
            raise DecisionError(f"{incident.case} has no team assigned")
        if dispatch.status == "arrived":
            raise DecisionError(f"team {dispatch.team_id} is already marked arrived")
        await store.set_dispatch(conn, dispatch.id, now, status="arrived")
        await store.audit(
            conn,
            actor=actor,
            action="dispatch.arrived",
            incident_id=incident.id,
            now=now,
            detail={"team": dispatch.team_id},
        )
        await tell_victim(
            conn,
            services,
            incident,
            "team_arrived",
            f"victim:arrived:{_ref(ref, now)}",
            now,
            team=dispatch.team_id,
        )
    return f"{incident.case}: team {dispatch.team_id} arrived; the reporter was told."


async def resolve(services: Services, case: str, note: str, actor: str) -> str:
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        # Checked inside the transaction: two people closing the same case at once (or a
        # resend) must not tell the reporter twice.
        incident = await _open_incident(conn, incident)
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
        # A resolved case stays resolved (new messages open a new case): one close per incident.
        key = f"victim:resolved:{incident.id}"
        await tell_victim(conn, services, incident, "resolved", key, now, Lane.REPLY, note=note)
    return f"{incident.case} resolved; the reporter was told."


def victim_text(
    services: Services, incident: Incident, template: str, **values: object
) -> tuple[str, bool]:
    """A notice in the reporter's language, shaped for their channel; True when it was cut.

    On SMS it is plain text, GSM-7 where possible (curly quotes and dashes folded), within
    ``sms.segment_budget``; a coordinator's ``note`` (the free text inside the template) is what
    gets cut, so the case code before it and the template's closing words after it survive."""
    note = finish_note(template, incident.lang, str(values.pop("note", "")))
    if incident.channel is not Channel.SMS:
        text = say(template, incident.lang, case=incident.case, note=note, **values)
        return re.sub(r" {2,}", " ", text).strip(), False  # an empty note leaves two spaces
    marker = "\x00"
    rendered = say(template, incident.lang, case=incident.case, note=marker, **values)
    head, _, tail = rendered.partition(marker)
    tail = sms_text.gsm_fold(sms_text.to_plain(tail))
    if tail and tail[0] not in ".,;:!?)।۔":
        tail = " " + tail
    fitted = sms_text.fit(head + note, services.settings.sms.segment_budget, suffix=tail)
    return fitted, fitted != sms_text.gsm_fold(sms_text.to_plain(head + note)) + tail


async def tell_victim(
    conn: aiosqlite.Connection,
    services: Services,
    incident: Incident,
    template: str,
    key: str,
    now: float,
    lane: Lane = Lane.URGENT,
    **values: object,
) -> bool:
    """Close the loop: the reporter hears every decision on their own channel, in the same
    transaction as the decision. SMS goes out on the modem they last wrote to, when known
    (their operator reached it; a reply from the same number reads as the same conversation).
    Returns True when the text had to be shortened to fit the reporter's SMS budget."""
    text, shortened = victim_text(services, incident, template, **values)
    meta: dict[str, Any] = {}
    if incident.channel is Channel.SMS:
        modem = await _last_modem(conn, incident.reporter)
        if modem:
            meta["modem"] = modem
    out = services.notifier.to_victim(incident, text, key, lane, meta=meta)
    await outbox.enqueue(conn, out, now=now, incident_id=incident.id)
    return shortened


async def _last_modem(conn: aiosqlite.Connection, number: str) -> str | None:
    cur = await conn.execute(
        """SELECT json_extract(meta, '$.modem') FROM inbox
           WHERE channel=? AND peer=? AND json_extract(meta, '$.modem') IS NOT NULL
           ORDER BY received_at DESC, id DESC LIMIT 1""",
        (Channel.SMS.value, number),
    )
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def _incident(services: Services, case: str) -> Incident:
    incident = await store.by_case(services.db, case)
    if incident is None:
        raise DecisionError(f"no case {case.strip().upper()}")
    return incident


async def _open_incident(conn: aiosqlite.Connection, incident: Incident) -> Incident:
    """The incident as it is now (inside the decision's transaction); refuses a closed case."""
    fresh = await store.get(conn, incident.id)
    assert fresh is not None
    if fresh.status == "resolved":
        raise DecisionError(f"{fresh.case} is already resolved")
    return fresh


async def _decide(
    services: Services,
    case: str,
    actor: str,
    *,
    approve_team: str | None,
    force: bool,
    ref: str | None,
) -> str:
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        incident = await _open_incident(conn, incident)
        if approve_team is not None:
            team = await store.pick_team(conn, "boat", approve_team)
            if team is None:
                raise DecisionError(f"no team {approve_team} (see !teams)")
            if team.status != "available":
                raise DecisionError(f"team {team.id} is {team.status} (see !teams)")
            approve_team = team.id
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
        elif dispatch.status == "approved" and not dispatch.team_id and not force:
            raise DecisionError(
                f"{incident.case} is already approved and waiting for a free team; "
                f"assign one with !assign {incident.case} <team> (see !teams)"
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
        if force:
            template, key = "team_assigned", f"victim:assigned:{_ref(ref, now)}"
        elif dispatch.team_id:
            template, key = "dispatch_approved", f"victim:approved:{dispatch.id}"
        else:
            template, key = "dispatch_approved_waiting", f"victim:approved:{dispatch.id}"
        await tell_victim(
            conn, services, incident, template, key, now, team=dispatch.team_id or "-"
        )
    if dispatch.team_id:
        return f"{incident.case}: approved, team {dispatch.team_id}; the reporter was told."
    return (
        f"{incident.case}: approved, but no team is free; the reporter was told a team will be "
        f"assigned as soon as one is free. Assign one with !assign {incident.case} <team>."
    )
