"""Drill promises about integrity: nothing dead-lettered for a transient reason, victim-stated
facts never lowered, no decision without a staff command, each conversation kept in order."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from typing import Any

from bot.drill.checks.evidence import CRITICAL, Evidence, Result, short
from bot.drill.journal import Injected
from bot.store.snapshot import Row

# ---- 4. nothing dead-lettered for a transient reason -------------------------------------------

PERMANENT = re.compile(
    r"invalid (number|recipient|destination)|unknown (number|subscriber)|sim blocked|"
    r"M_FORBIDDEN|M_UNKNOWN_TOKEN|M_TOO_LARGE|M_NOT_FOUND|too large|not allowed|"
    r"permanent|opted out|refused by policy",
    re.IGNORECASE,
)


def no_transient_dead(ev: Evidence) -> Result:
    r = Result("no_transient_dead", "nothing dead-lettered for a transient reason")
    for table, rows in (("inbox", ev.db.inbox), ("outbox", ev.db.outbox)):
        r.checked += len(rows)
        for row in rows:
            if row["status"] != "dead":
                continue
            error = row.get("error") or "(no reason recorded)"
            if PERMANENT.search(error):
                r.notes.append(f"{table} #{row['id']} dead for a permanent reason: {error}")
                continue
            label = row.get("idem_key") or short(row.get("text") or "")
            r.add(
                row["updated_at"],
                f"{table} #{row['id']}",
                f"{row['channel']} {label!r} dead: {short(error, 120)}",
            )
    return r


# ---- 5. victim-stated facts never lowered ------------------------------------------------------


def facts_kept(ev: Evidence) -> Result:
    """A head count the victim stated is never replaced by a smaller one (0 = unknown is not a
    lowering: it only means the gateway did not read it)."""
    r = Result("facts_kept", "no victim-stated head count lowered")
    stated: dict[str, tuple[int, Injected]] = {}
    for inj in ev.journal.injected:
        if inj.people and inj.people > stated.get(inj.number, (0, inj))[0]:
            stated[inj.number] = (inj.people, inj)
    for number, (people, inj) in stated.items():
        inc = ev.incident_of(number)
        if inc is None:
            continue
        r.checked += 1
        if 0 < inc["people_count"] < people:
            r.add(
                inc["updated_at"],
                inc["case_code"],
                f"case says {inc['people_count']} people, the victim said {people}: "
                f"{short(inj.text)!r}",
            )
        for d in ev.db.dispatches:
            if d["incident_id"] == inc["id"] and 0 < (d["people_count"] or 0) < people:
                r.add(
                    d["updated_at"],
                    inc["case_code"],
                    f"dispatch #{d['id']} for {d['people_count']} people, the victim said {people}",
                )
    return r


# ---- 6. no authority from message text ---------------------------------------------------------

STAFF_ACTIONS = {
    "dispatch.assigned",
    "dispatch.rejected",
    "dispatch.arrived",
    "incident.resolved",
    "incident.closed",
    "incident.updated",
}
CLOSED = {"resolved", "closed"}


def staff_authority(ev: Evidence) -> Result:
    """Dispatch decisions, closing a case and lowering its priority come from a staff command
    (a staff account in the audit log, or a configured policy), never from public text."""
    r = Result("staff_authority", "no decision without a staff command")
    staff = set(ev.journal.staff)

    def allowed(actor: str) -> bool:
        return actor in staff or actor.startswith("policy:")

    by_case: dict[int, list[Row]] = defaultdict(list)
    for a in ev.db.audit:
        if a["incident_id"] is not None:
            by_case[a["incident_id"]].append(a)
        if a["action"] in STAFF_ACTIONS:
            r.checked += 1
            if not allowed(a["actor"]):
                r.add(
                    a["at"], str(a["actor"]), f"{a['action']} by a non-staff actor: {a['detail']}"
                )
    codes = {i["id"]: i["case_code"] for i in ev.db.incidents}
    for inc in ev.db.incidents:
        staff_acts = {a["action"] for a in by_case[inc["id"]] if allowed(a["actor"])}
        if inc["status"] in CLOSED and not staff_acts & {"incident.resolved", "incident.closed"}:
            r.add(
                inc["updated_at"],
                inc["case_code"],
                f"case is {inc['status']} with no staff command",
            )
        threat = any(i.life_threat for i in ev.journal.injected if i.number == inc["reporter"])
        if threat and inc["priority"] > CRITICAL and "incident.updated" not in staff_acts:
            r.add(
                inc["updated_at"],
                inc["case_code"],
                f"life-threat case now priority {inc['priority']} (not critical) with no staff "
                "command",
            )
    for d in ev.db.dispatches:
        if d["status"] in ("pending_approval", "cancelled"):
            continue
        acts = [
            a
            for a in by_case[d["incident_id"]]
            if a["action"] in ("dispatch.assigned", "dispatch.rejected")
            and _detail(a).get("dispatch") == d["id"]
        ]
        if not any(allowed(a["actor"]) for a in acts):
            r.add(
                d["updated_at"],
                codes.get(d["incident_id"], str(d["incident_id"])),
                f"dispatch #{d['id']} is {d['status']} with no staff decision in the audit log",
            )
    return r


def _detail(a: Row) -> dict[str, Any]:
    try:
        value = json.loads(a.get("detail") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ---- 7. per-conversation order -----------------------------------------------------------------


def conversation_order(ev: Evidence) -> Result:
    """Each sender's messages are stored in the order sent, and answered in that order."""
    r = Result("conversation_order", "each conversation kept in order")
    # An SMS is known by its text, a Matrix message by its event id.
    sent_order: dict[str, list[str]] = defaultdict(list)
    times: dict[str, float] = {}
    for inj in sorted(ev.journal.injected, key=lambda e: e.t):
        sent_order[inj.number].append(inj.event_id if inj.channel == "matrix" else inj.text)
        times.setdefault(inj.number, inj.t)
    stored: dict[str, list[str]] = defaultdict(list)
    for row in ev.db.inbox:
        stored[row["peer"]].append(row["dedup_key"] if row["channel"] == "matrix" else row["text"])
    for number, texts in sent_order.items():
        r.checked += 1
        got = stored.get(number, [])
        if got != texts and Counter(got) == Counter(texts):  # losses are nothing_lost's
            r.add(times[number], number, f"stored out of order: {[short(t, 20) for t in got]}")
    model_done: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for row in ev.db.inbox:
        if row["needs_model"] and row["done_at"] and row["status"] == "done":
            model_done[row["order_key"]].append((row["done_at"], row["id"]))
    for key, rows in model_done.items():
        ids = [i for _, i in sorted(rows)]
        if ids != sorted(ids):
            r.add(min(t for t, _ in rows), key, f"model turns finished for inbox {ids}")
    # Outbound: answers of one kind within one lane (an urgent answer may overtake a routine
    # one, and a model's late reply follows the library fallback sent while it was down).
    replies: dict[tuple[str, int, str], list[tuple[float, int]]] = defaultdict(list)
    for row in ev.db.outbox:
        kind = str(row["idem_key"]).split(":", 1)[0]
        if row["sent_at"] and row["inbox_id"] and kind in ("reply", "fallback"):
            replies[(row["peer"], row["lane"], kind)].append((row["sent_at"], row["inbox_id"]))
    for (peer, _lane, _kind), rows in replies.items():
        ids = [i for _, i in sorted(rows)]
        if ids != sorted(ids):
            r.add(min(t for t, _ in rows), peer, f"answers sent for inbox {ids} (not in order)")
    return r
