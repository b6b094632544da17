"""The sitrep's content: the text posted to the coordination room and the chart's data."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.charts import ChartData
from bot.models import Channel, Lane, Outbound, Priority
from bot.store import activity, incidents
from bot.store.broadcasts import Broadcast
from handlers import dispatch
from handlers.broadcasts.advisory import hhmm
from handlers.context import Services

log = logging.getLogger(__name__)

CHART_HOURS = 24


async def sitrep_text(
    services: Services, at: float, status: Callable[[], Awaitable[str]] | None
) -> str:
    now = services.clock()
    views = await incidents.views(services.db, status="open")
    by_priority = Counter(v.incident.priority for v in views)
    by_status = Counter(v.incident.status for v in views)
    unassigned = await dispatch.select_cases(services, "unassigned")
    overdue = await dispatch.select_cases(services, "overdue")
    teams = await incidents.list_teams(services.db)
    by_team = Counter(t.status for t in teams)
    overdue_min = services.settings.dispatch.overdue_after_min
    lines = [
        f"SITREP {hhmm(at)} - {len(views)} open case(s)",
        "by priority: " + ", ".join(f"{p.label} {by_priority[p]}" for p in Priority),
        "by status: " + (", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "-"),
        f"unassigned: {len(unassigned)}"
        + (f" (critical {sum(v.incident.priority is Priority.CRITICAL for v in unassigned)})")
        + f"; overdue (> {overdue_min} min, no team): {len(overdue)}"
        + (": " + ", ".join(v.incident.case for v in overdue[:10]) if overdue else "")
        + (" …" if len(overdue) > 10 else ""),
        f"teams: {by_team['available']} available, {by_team['busy']} busy"
        + (
            " (" + ", ".join(t.id for t in teams if t.status == "busy") + ")"
            if by_team["busy"]
            else ""
        )
        + (f", {by_team['offline']} offline" if by_team["offline"] else ""),
    ]
    if status is not None:
        try:
            lines.append(await status())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("sitrep: status section failed")
            lines.append(f"(status unavailable: {type(exc).__name__})")
    log.debug("sitrep text built at %s for slot %s", now, at)
    return "\n".join(lines)


async def chart_data(services: Services, at: float, hours: int = CHART_HOURS) -> ChartData:
    """Hourly buckets over the last ``hours``: new cases by priority, open cases, teams busy.

    Resolution and team release times are read from ``updated_at`` (the last change), which
    is exact for closed cases and released teams and a fair proxy otherwise."""
    end = (int(at // 3600) + 1) * 3600.0
    starts = [end - 3600.0 * (hours - i) for i in range(hours)]
    new: dict[str, list[int]] = {p.label: [0] * hours for p in Priority}
    open_count = [0] * hours
    for case in await activity.case_spans(services.db, starts[0]):
        created, closed = case.created_at, case.closed_at
        if created >= starts[0]:
            i = min(int((created - starts[0]) // 3600), hours - 1)
            new[case.priority.label][i] += 1
        for i, s in enumerate(starts):
            b_end = s + 3600.0
            if created < b_end and (closed is None or closed >= b_end):
                open_count[i] += 1
    busy: list[set[str]] = [set() for _ in range(hours)]
    for span in await activity.team_spans(services.db, starts[0]):
        t0, t1 = span.created_at, at if span.ended_at is None else span.ended_at
        for i, s in enumerate(starts):
            if t0 < s + 3600.0 and t1 >= s:
                busy[i].add(span.team_id)
    teams = await incidents.list_teams(services.db)
    return ChartData(
        title=f"Lifeline sitrep {hhmm(at)} — last {hours} h",
        bucket_starts=starts,
        new_by_priority=new,
        open_count=open_count,
        teams_busy=[len(b) for b in busy],
        teams_total=len(teams),
    )


def sitrep_messages(
    b: Broadcast, fire: str, room: str, text: str, chart: Path | None
) -> list[Outbound]:
    """The sitrep's posts for one fire: the text, then the chart when it rendered."""
    outs = [
        Outbound(
            channel=Channel.MATRIX,
            peer=room,
            conversation=room,
            text=text,
            idem_key=f"sitrep:{b.id}:{fire}:text",
            lane=Lane.BROADCAST,
        )
    ]
    if chart is not None:
        outs.append(
            Outbound(
                channel=Channel.MATRIX,
                peer=room,
                conversation=room,
                text="sitrep chart",
                idem_key=f"sitrep:{b.id}:{fire}:chart",
                lane=Lane.BROADCAST,
                meta={"image_path": str(chart), "body": "sitrep chart"},
            )
        )
    return outs
