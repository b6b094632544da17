"""Approve and assign: a coordinator sends a team (approving a request, completing an approval
that waited for a free team, or assigning/reassigning one directly)."""

from __future__ import annotations

from bot.store import incidents as store
from handlers.context import Services
from handlers.dispatch.teams import assign_team, kind_remark, team_kind
from handlers.dispatch.transition import DecisionError, command_ref, decision


async def approve(
    services: Services, case: str, team_id: str | None, actor: str, *, ref: str | None = None
) -> str:
    return await _decide(services, case, actor, approve_team=team_id, force=False, ref=ref)


async def assign(
    services: Services, case: str, team_id: str, actor: str, *, ref: str | None = None
) -> str:
    return await _decide(services, case, actor, approve_team=team_id, force=True, ref=ref)


async def _decide(
    services: Services,
    case: str,
    actor: str,
    *,
    approve_team: str | None,
    force: bool,
    ref: str | None,
) -> str:
    async with decision(services, case, actor) as step:
        incident, conn, now = step.incident, step.conn, step.now
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
        dispatch = await assign_team(step, dispatch, approve_team)
        kind = await store.dispatch_kind(conn, dispatch.id)
        remark = await kind_remark(conn, incident, dispatch, kind)
        await store.update(
            conn,
            incident.id,
            now,
            status="assigned" if dispatch.team_id else "dispatch_requested",
            owner=actor,
        )
        if force or (completing and dispatch.team_id):
            template, key = "team_assigned", f"victim:assigned:{command_ref(ref, now)}"
        elif dispatch.team_id:
            template, key = "dispatch_approved", f"victim:approved:{dispatch.id}"
        else:
            template, key = "dispatch_approved_waiting", f"victim:approved:{dispatch.id}"
        await step.notify(template, key, team=dispatch.team_id or "-")
    if dispatch.team_id:
        return f"{incident.case}: approved, team {dispatch.team_id}; the reporter was told.{remark}"
    if remark:
        return remark.strip()
    return (
        f"{incident.case}: approved, but no team is free; the reporter was told a team will be "
        f"assigned as soon as one is free. Assign one with !assign {incident.case} <team>."
    )
