"""``!region`` and ``!region cases``: the regional view as plain "what: detail" lines, the shape
of ``!status`` (bot/status.py ``render``). Pure: rows and the time in, text out.

A district is SILENT when nothing came from it for ``silent_after_min`` (its heartbeat keeps a
quiet district heard); its last known figures are still shown, marked with their age. Nothing in
this gateway waits for any other district."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.status import Finding, Level, render
from bot.store.region_view import CaseRow, DistrictRow, LendRow, NeedRow, TeamRow
from handlers.public_text import inline

PRIORITIES = ("critical", "high", "medium", "low")
FREE = ("free", "available")
MAX_CASES = 40


@dataclass(frozen=True, slots=True)
class RegionFacts:
    now: float
    me: str  # this district
    expected: Sequence[str]  # this district and its configured peers
    silent_after_s: float
    districts: Sequence[DistrictRow]
    cases: Sequence[CaseRow]  # open ones
    teams: Sequence[TeamRow]
    needs: Sequence[NeedRow]
    lends: Sequence[LendRow]  # active ones


def ago(now: float, then: float) -> str:
    minutes = max(0, int((now - then) // 60))
    return "just now" if minutes == 0 else f"{minutes} min ago"


def heard(f: RegionFacts, d: DistrictRow | None) -> tuple[str, bool]:
    """("last heard 2 min ago" | "SILENT for 23 min" | "never heard from", silent?)."""
    if d is None or d.last_heard_at <= 0:
        return "never heard from", True
    quiet = f.now - d.last_heard_at
    if quiet >= f.silent_after_s:
        return f"SILENT for {int(quiet // 60)} min", True
    return f"last heard {ago(f.now, d.last_heard_at)}", False


def district_finding(f: RegionFacts, name: str) -> Finding:
    row = next((d for d in f.districts if d.district == name), None)
    cases = [c for c in f.cases if c.district == name]
    by_priority = Counter(c.priority for c in cases)
    open_part = ", ".join(f"{by_priority[p]} {p}" for p in PRIORITIES if by_priority[p])
    unassigned = sum(1 for c in cases if c.priority == "critical" and not c.team)
    free = Counter(t.kind for t in f.teams if t.district == name and t.status in FREE)
    free_part = ", ".join(f"{n} {k}" for k, n in sorted(free.items())) or "none"
    last, silent = heard(f, row)
    gaps = (
        ""
        if row is None or row.last_seq == row.events
        else f", {row.last_seq - row.events} event(s) not received yet"
    )
    detail = (
        f"{last}; open {len(cases)}"
        + (f" ({open_part})" if open_part else "")
        + f", unassigned critical {unassigned}, free teams {free_part}{gaps}"
    )
    mark = " (this district)" if name == f.me else ""
    return Finding(f"{name}{mark}", detail, Level.WARN if silent or unassigned else Level.OK)


def region_report(f: RegionFacts) -> str:
    """``!region``: one line per district, then open requests and lent teams."""
    names = list(dict.fromkeys([*f.expected, *(d.district for d in f.districts)]))
    lines = [district_finding(f, n) for n in names]
    for n in f.needs:
        to = "every district" if n.to_district == "*" else n.to_district
        note = f" ({inline(n.note, 60)})" if n.note else ""
        lines.append(
            Finding(
                "need", f"{n.district} asks {to} for {n.count} {n.kind}{note}, {ago(f.now, n.at)}"
            )
        )
    for lend in f.lends:
        lines.append(
            Finding(
                "lent", f"{lend.lender}/{lend.team} to {lend.borrower} since {ago(f.now, lend.at)}"
            )
        )
    return render(lines)


def cases_report(f: RegionFacts) -> str:
    """``!region cases``: every district's open cases, most urgent first."""
    if not f.cases:
        return "No open cases in the region's view."
    lines = [f"{len(f.cases)} open case(s) in the region:"]
    for c in f.cases[:MAX_CASES]:
        row = next((d for d in f.districts if d.district == c.district), None)
        _, silent = heard(f, row)
        lines.append(
            f"{c.code} {c.priority.upper()} {c.status} | {inline(c.area, 50) or '?'} | "
            f"{c.people or '?'}p | needs {inline(c.needs, 40) or '?'} | team {c.team or '-'} | "
            f"{ago(f.now, c.created_at)}" + (" | district SILENT" if silent else "")
        )
    if len(f.cases) > MAX_CASES:
        lines.append(f"… and {len(f.cases) - MAX_CASES} more")
    return "\n".join(lines)
