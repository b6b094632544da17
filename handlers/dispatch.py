"""Dispatch tools and the approval policy. The model may *request*; approval follows config.

Idempotency: an incident has at most one active dispatch. A request while one is active updates
it; a new one carries the key `dispatch:<inbox id>`, so reprocessing a message after a crash finds
the dispatch it already made instead of making another."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

import aiosqlite
from pydantic import AfterValidator, Field

from bot import sms_text
from bot.models import Channel, Dispatch, Incident, Lane, Priority, Role
from bot.store import confirmations, outbox
from bot.store import incidents as store
from bot.tools import Tool, ToolArgs, ToolRefused
from handlers import authority
from handlers.context import Services, TurnContext
from handlers.public_text import UNTRUSTED_NOTE, inline, quoted
from handlers.texts import finish_note, say

log = logging.getLogger(__name__)

PriorityLabel = Literal["critical", "high", "medium", "low"]
STAFF = frozenset({Role.RESPONDER, Role.COORDINATOR})

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


# A location is a place: text that echoes the prompt around the sender's message (the model
# copying its instructions into an argument) is refused as an argument error, never stored.
_SCAFFOLDING = re.compile(
    r"<<<|>>>|message from the public sender|\(untrusted\)|untrusted public|public_text"
    r"|<\||\|>|<start_of_turn|<end_of_turn|\{[a-z_]*\}|protocols:|\bcase lf-\d+:|\[p\d\]",
    re.I,
)
LOCATION_MAX = 160


def check_location(value: str) -> str:
    if _SCAFFOLDING.search(value):
        raise ValueError("not a place: it repeats the prompt; ask the sender where they are")
    if "\n" in value or len(value) > LOCATION_MAX:
        raise ValueError(
            f"a location is one line of at most {LOCATION_MAX} characters: a village, landmark "
            "or roof"
        )
    return value


Location = Annotated[str, AfterValidator(check_location)]


def needs_approval(approval: str, priority: Priority) -> bool:
    if approval == "auto":
        return False
    if approval == "auto_critical":
        return priority is not Priority.CRITICAL
    return True


class DispatchArgs(ToolArgs):
    """An omitted argument means "not known": it never overwrites what the case already says."""

    location: Location = Field(
        min_length=2, description="Where the people are: village, landmark, roof"
    )
    priority: PriorityLabel | None = Field(None, description="critical = life in danger now")
    people_count: int | None = Field(
        None, ge=1, le=5000, description="How many people need help; omit if not known"
    )
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
    location: Location | None = Field(None, description="Corrected location")
    people_count: int | None = Field(None, ge=1, le=5000, description="Corrected head count")
    note: str | None = Field(None, max_length=300, description="Situation note for the case")


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


def alert_text(incident: Incident, headline: str, now: float) -> str:
    """The reporter's words are quoted ("> " on every line) and the one-line fields are kept on
    one line, so nothing a victim wrote can appear as a line of its own, like a command."""
    age_min = max(0, int((now - incident.created_at) // 60))
    return (
        f"[{incident.priority.label.upper()}] {incident.case} {headline}\n"
        f"where: {inline(incident.location) or '?'} | people: {incident.people_count or '?'} | "
        f"needs: {inline(incident.needs) or '?'}\n"
        f"{quoted(incident.summary)}\nvia {incident.channel.value}, {age_min} min ago"
    )


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
                dispatch = await _assign(conn, services, dispatch, None, "policy:auto", now)
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


async def _assign(
    conn: aiosqlite.Connection,
    services: Services,
    dispatch: Dispatch,
    team_id: str | None,
    actor: str,
    now: float,
) -> Dispatch:
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


async def set_priority(services: Services, case: str, label: str, actor: str) -> str:
    """A person's decision, in either direction (the assistant may only raise a priority)."""
    try:
        priority = Priority.from_label(label)
    except KeyError:
        raise DecisionError("priority is one of critical, high, medium, low") from None
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        incident = await _open_incident(conn, incident)
        old = incident.priority
        if old is priority:
            return f"{incident.case} is already {priority.label}."
        await store.update(conn, incident.id, now, priority=priority)
        await store.audit(
            conn,
            actor=actor,
            action="incident.priority_set",
            incident_id=incident.id,
            now=now,
            detail={"from": old.label, "to": priority.label},
        )
    log.info("%s priority %s -> %s by a person", incident.case, old.label, priority.label)
    return f"{incident.case}: priority {old.label} -> {priority.label}."


async def set_people(services: Services, case: str, count: str, actor: str) -> str:
    """A person's correction of the head count, up or down."""
    if not count.isdigit() or not 1 <= int(count) <= 5000:
        raise DecisionError("the head count is a whole number from 1 to 5000")
    incident = await _incident(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        incident = await _open_incident(conn, incident)
        old = incident.people_count
        await store.update(conn, incident.id, now, people_count=int(count))
        await store.audit(
            conn,
            actor=actor,
            action="incident.people_set",
            incident_id=incident.id,
            now=now,
            detail={"from": old, "to": int(count)},
        )
    return f"{incident.case}: people {old or '?'} -> {int(count)}."


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
                kind=team_kind(f"{incident.needs} {incident.summary}"),
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
            if approve_team is None:  # "!approve CODE TEAM" completes a waiting approval
                raise DecisionError(
                    f"{incident.case} is already approved and waiting for a free team; "
                    f"assign one with !assign {incident.case} <team> (see !teams)"
                )
        elif dispatch.status != "pending_approval" and not force:
            raise DecisionError(f"{incident.case} dispatch is already {dispatch.status}")
        completing = dispatch.status == "approved" and not dispatch.team_id
        if dispatch.team_id and force:
            await store.release_team(conn, dispatch.team_id, now)
        dispatch = await _assign(conn, services, dispatch, approve_team, actor, now)
        kind = await store.dispatch_kind(conn, dispatch.id)
        remark = await _kind_remark(conn, incident, dispatch, kind)
        await store.update(
            conn,
            incident.id,
            now,
            status="assigned" if dispatch.team_id else "dispatch_requested",
            owner=actor,
        )
        if force or (completing and dispatch.team_id):
            template, key = "team_assigned", f"victim:assigned:{_ref(ref, now)}"
        elif dispatch.team_id:
            template, key = "dispatch_approved", f"victim:approved:{dispatch.id}"
        else:
            template, key = "dispatch_approved_waiting", f"victim:approved:{dispatch.id}"
        await tell_victim(
            conn, services, incident, template, key, now, team=dispatch.team_id or "-"
        )
    if dispatch.team_id:
        return f"{incident.case}: approved, team {dispatch.team_id}; the reporter was told.{remark}"
    if remark:
        return remark.strip()
    return (
        f"{incident.case}: approved, but no team is free; the reporter was told a team will be "
        f"assigned as soon as one is free. Assign one with !assign {incident.case} <team>."
    )


async def _kind_remark(
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
