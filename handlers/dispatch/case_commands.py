"""Case state commands by a person (never the model): reject a dispatch request, a team
arrived, close a case, set the priority or the head count (up or down)."""

from __future__ import annotations

import logging

from bot.models import Lane, Priority
from bot.store import incidents as store
from handlers.context import Services
from handlers.dispatch.transition import DecisionError, command_ref, decision

log = logging.getLogger(__name__)


async def reject(services: Services, case: str, reason: str, actor: str) -> str:
    async with decision(services, case, actor) as step:
        incident, conn, now = step.incident, step.conn, step.now
        dispatch = await store.active_dispatch(conn, incident.id)
        if dispatch is None or dispatch.status != "pending_approval":
            raise DecisionError(f"{incident.case} has no dispatch waiting for approval")
        await store.set_dispatch(
            conn, dispatch.id, now, status="rejected", decided_by=actor, reason=reason
        )
        await store.update(conn, incident.id, now, status="open")
        await step.audit("dispatch.rejected", {"reason": reason})
        await step.notify("dispatch_rejected", f"victim:rejected:{dispatch.id}", note=reason)
    return f"{incident.case}: dispatch rejected ({reason}); the reporter was told."


async def arrived(services: Services, case: str, actor: str, *, ref: str | None = None) -> str:
    async with decision(services, case, actor) as step:
        incident = step.incident
        dispatch = await store.active_dispatch(step.conn, incident.id)
        if dispatch is None or not dispatch.team_id:
            raise DecisionError(f"{incident.case} has no team assigned")
        if dispatch.status == "arrived":
            raise DecisionError(f"team {dispatch.team_id} is already marked arrived")
        await store.set_dispatch(step.conn, dispatch.id, step.now, status="arrived")
        await step.audit("dispatch.arrived", {"team": dispatch.team_id})
        key = f"victim:arrived:{command_ref(ref, step.now)}"
        await step.notify("team_arrived", key, team=dispatch.team_id)
    return f"{incident.case}: team {dispatch.team_id} arrived; the reporter was told."


async def resolve(services: Services, case: str, note: str, actor: str) -> str:
    async with decision(services, case, actor) as step:
        incident, conn, now = step.incident, step.conn, step.now
        for d in await store.dispatches_for(conn, incident.id):
            if d.status in store.ACTIVE_DISPATCH:
                await store.set_dispatch(conn, d.id, now, status="completed", decided_by=actor)
                if d.team_id:
                    await store.release_team(conn, d.team_id, now)
        await store.update(conn, incident.id, now, status="resolved")
        await step.audit("incident.resolved", {"note": note})
        # A resolved case stays resolved (new messages open a new case): one close per incident.
        await step.notify("resolved", f"victim:resolved:{incident.id}", Lane.REPLY, note=note)
    return f"{incident.case} resolved; the reporter was told."


async def set_priority(services: Services, case: str, label: str, actor: str) -> str:
    """A person's decision, in either direction (the assistant may only raise a priority)."""
    try:
        priority = Priority.from_label(label)
    except KeyError:
        raise DecisionError("priority is one of critical, high, medium, low") from None
    async with decision(services, case, actor) as step:
        incident, old = step.incident, step.incident.priority
        if old is priority:
            return f"{incident.case} is already {priority.label}."
        await store.update(step.conn, incident.id, step.now, priority=priority)
        await step.audit("incident.priority_set", {"from": old.label, "to": priority.label})
    log.info("%s priority %s -> %s by a person", incident.case, old.label, priority.label)
    return f"{incident.case}: priority {old.label} -> {priority.label}."


async def set_people(services: Services, case: str, count: str, actor: str) -> str:
    """A person's correction of the head count, up or down."""
    if not count.isdigit() or not 1 <= int(count) <= 5000:
        raise DecisionError("the head count is a whole number from 1 to 5000")
    async with decision(services, case, actor) as step:
        incident, old = step.incident, step.incident.people_count
        await store.update(step.conn, incident.id, step.now, people_count=int(count))
        await step.audit("incident.people_set", {"from": old, "to": int(count)})
    return f"{incident.case}: people {old or '?'} -> {int(count)}."
