"""What a model tool call made on a staff member's behalf may change.

The model reads text written by the public (case summaries in tool results, history), so its
calls cannot carry the staff member's authority by themselves. A call changes a case only when
the staff member named that case (its code) in their own message, or after they answer "yes" to
the exact change the bot shows them. Even then a model call only adds or raises facts: lowering a
priority or a head count, closing a case and changing a dispatch are `!commands` by a person.
Every refused, limited or held call is written to the audit log with its reason."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from bot.addressing import mention_pattern, strip_reply_fallback
from bot.models import Incident, Priority
from bot.redact import mask_peer
from bot.store import confirmations
from bot.store import incidents as store
from bot.store.inbox import InboxRow
from handlers.context import Services
from handlers.public_text import inline

log = logging.getLogger(__name__)

CONFIRM_TTL_S = 600.0
SUMMARY_MAX = 1000  # the reporter's words plus staff notes; notes never cut the reporter's text
_CASE_IN_TEXT = re.compile(r"\b([A-Z][A-Z0-9]{1,7}?)[\s\-_]?(\d{4,8})\b", re.I)  # LF-/BHO-4821
_YES = frozenset({"yes", "confirm", "!yes", "!confirm"})


def named_cases(text: str) -> set[str]:
    """Case codes the staff member wrote themselves (a Matrix reply's quoted original, which
    may quote victim text, does not count)."""
    found = _CASE_IN_TEXT.finditer(strip_reply_fallback(text))
    return {f"{m.group(1).upper()}-{m.group(2)}" for m in found}


def is_yes(text: str, bot_user_id: str = "") -> bool:
    """ "yes", "Yes!", "lifeline, yes", "!confirm" — a bare answer to a confirmation question."""
    text = strip_reply_fallback(text).strip()
    m = mention_pattern(bot_user_id).match(text.lstrip("@"))
    if m:
        text = text.lstrip("@")[m.end() :]
        text = re.sub(r"\A(?::[\w.-]+(?::\d+)?)?\s*[:,]?\s*", "", text)
    return text.strip().rstrip(".!").strip().lower() in _YES


@dataclass
class Plan:
    """``changes``: what the call may add or raise (JSON-able: priority as its label);
    ``refused``: one reason per part the call may not do."""

    changes: dict[str, Any] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def plan_update(incident: Incident, requested: dict[str, Any]) -> Plan:
    plan = Plan()
    case = incident.case
    label = requested.get("priority")
    if label:
        wanted = Priority.from_label(str(label))
        if wanted > incident.priority:
            plan.refused.append(
                f"priority {wanted.label}: lowering a priority (now {incident.priority.label}) is "
                f"a person's decision, not the assistant's: a staff member sends "
                f"!priority {case} {wanted.label}"
            )
        elif wanted < incident.priority:
            plan.changes["priority"] = wanted.label
    count = requested.get("people_count")
    if count is not None:
        if int(count) < incident.people_count:
            plan.refused.append(
                f"people_count {count}: the case says {incident.people_count}; the assistant "
                f"never lowers a head count: a staff member sends !people {case} {count}"
            )
        elif int(count) > incident.people_count:
            plan.changes["people_count"] = int(count)
    location = requested.get("location")
    if location and location != incident.location:
        plan.changes["location"] = location
    note = requested.get("note")
    if note:
        if len(incident.summary) + len(note) + 15 > SUMMARY_MAX:
            plan.refused.append("note: the case's notes are full; add it with !say or by hand")
        else:
            plan.changes["note"] = note
    return plan


def describe(case: str, changes: dict[str, Any]) -> str:
    parts = []
    if "priority" in changes:
        parts.append(f"priority {changes['priority']}")
    if "people_count" in changes:
        parts.append(f"people {changes['people_count']}")
    if "location" in changes:
        parts.append(f'location "{inline(str(changes["location"]), 80)}"')
    if "note" in changes:
        parts.append(f'add note "{inline(str(changes["note"]), 120)}"')
    return f"{case}: " + ", ".join(parts)


def question(pending: confirmations.Pending) -> str:
    what = "; ".join(describe(c["case"], c["update"]) for c in pending.changes)
    minutes = int(CONFIRM_TTL_S // 60)
    return (
        f'Confirm? {what}. Reply "yes" within {minutes} min to make this change '
        f"(only you can confirm it); anything else leaves the case as it is."
    )


async def apply(
    conn: aiosqlite.Connection,
    incident: Incident,
    changes: dict[str, Any],
    *,
    actor: str,
    via: str,
    now: float,
) -> None:
    """Carry out planned changes; the SQL keeps them rising-only even if facts moved meanwhile."""
    if "priority" in changes:
        await store.escalate(conn, incident.id, Priority.from_label(changes["priority"]), now)
    await store.add_facts(conn, incident.id, now, people_count=changes.get("people_count"))
    fields: dict[str, Any] = {}
    if "location" in changes:
        fields["location"] = changes["location"]
    if "note" in changes:
        fields["summary"] = f"{incident.summary} | staff note: {changes['note']}"
    await store.update(conn, incident.id, now, **fields)
    await store.audit(
        conn,
        actor=actor,
        action="incident.updated",
        incident_id=incident.id,
        now=now,
        detail={**changes, "via": via},
    )
    log.info("%s updated by %s (%s): %s", incident.case, mask_peer(actor), via, sorted(changes))


async def audit_limits(
    conn: aiosqlite.Connection,
    row: InboxRow,
    incident: Incident,
    action: str,
    reasons: list[str],
    now: float,
    **detail: Any,
) -> None:
    for reason in reasons:
        await store.audit(
            conn,
            actor=row.peer,
            action=action,
            incident_id=incident.id,
            now=now,
            detail={"inbox": row.id, "tool": "update_incident", "reason": reason, **detail},
        )
    if reasons:
        log.warning("update_incident for %s %s: %s", incident.case, action, "; ".join(reasons))


async def pending_question(services: Services, row: InboxRow) -> str | None:
    """The confirmation question this message's model turn left waiting, if any."""
    async with services.db.transaction() as conn:
        pending = await confirmations.get(conn, row.peer, row.conversation)
    if pending is None or pending.inbox_id != row.id:
        return None
    return question(pending)


async def answer_yes(services: Services, row: InboxRow) -> str:
    """The staff member said "yes": carry out what they were shown, re-checked against the case
    as it is now (a priority raised meanwhile is not lowered by a stale proposal)."""
    now = services.clock()
    done: list[str] = []
    async with services.db.transaction() as conn:
        pending = await confirmations.take(conn, row.peer, row.conversation)
        if pending is None:
            return "Nothing is waiting for your confirmation."
        if pending.expires_at < now:
            await store.audit(
                conn,
                actor=row.peer,
                action="confirmation.expired",
                now=now,
                detail={"changes": pending.changes},
            )
            return "That confirmation expired; nothing was changed. Ask again if still needed."
        for change in pending.changes:
            incident = await store.by_case_in(conn, change["case"])
            if incident is None or incident.status == "resolved":
                done.append(f"{change['case']}: not changed (closed or unknown)")
                continue
            plan = plan_update(incident, change["update"])
            await audit_limits(conn, row, incident, "tool.refused", plan.refused, now)
            if plan.changes:
                await apply(conn, incident, plan.changes, actor=row.peer, via="confirmed", now=now)
                done.append(describe(incident.case, plan.changes))
            done += [f"{incident.case}: not done: {r}" for r in plan.refused]
    return "Done. " + "; ".join(done) if done else "Nothing to change any more."
