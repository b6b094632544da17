"""The promises a drill checks, each a pure function of what the drill recorded (journal), the
gateway's database (snapshot, read-only) and the dummy modems' sent record.

Every check returns a :class:`Result` whose violations carry the time and the evidence. Budgets
come from the scenario (``[promises]``) and, for acks, from the SIM send rate."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.drill.hardware import held, held_extra
from bot.drill.journal import FaultSpan, Injected, Journal
from bot.store.snapshot import Row, Snapshot

CRITICAL = 0  # bot.models.Priority.CRITICAL: lower value = more urgent
ACK_PARTS = 2.0  # an ack in Bengali/Hindi/Urdu (UCS-2, 70 chars a part) can take two parts
REPLY_PARTS = 3.0  # sms.segment_budget's default


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a dummy modem accepted (``<device>/sent/<ns>-<digest>``)."""

    t: float
    to: str
    text: str
    digest: str  # sha256(idempotency key)[:16]: the same outbox row sent twice repeats it


@dataclass(frozen=True, slots=True)
class Violation:
    promise: str
    at: float
    subject: str
    evidence: str


@dataclass
class Result:
    promise: str
    title: str
    checked: int = 0
    violations: list[Violation] = field(default_factory=list)
    worst: str = ""  # the worst case seen, violation or not
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, at: float, subject: str, evidence: str) -> None:
        self.violations.append(Violation(self.promise, at, subject, evidence))


@dataclass
class Evidence:
    journal: Journal
    db: Snapshot
    sent: list[Sent]

    def budget(self, key: str, default: float) -> float:
        return float(self.journal.budgets.get(key, default))

    def first_injections(self) -> dict[str, Injected]:
        first: dict[str, Injected] = {}
        for ev in sorted(self.journal.injected, key=lambda e: e.t):
            first.setdefault(ev.number, ev)
        return first

    def incident_of(self, number: str) -> Row | None:
        rows = [i for i in self.db.incidents if i["reporter"] == number and i["channel"] == "sms"]
        return rows[0] if rows else None


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _down_until(t: float, spans: Iterable[FaultSpan], end_default: float) -> float:
    """The first moment at or after ``t`` outside every span (spans may chain)."""
    moved = True
    while moved:
        moved = False
        for f in spans:
            end = f.end if f.end is not None else end_default
            if f.start <= t < end:
                t, moved = end, True
    return t


# ---- 1. nothing lost --------------------------------------------------------------------------


def nothing_lost(ev: Evidence) -> Result:
    """Every injected SMS and every staff command persisted exactly once."""
    r = Result("nothing_lost", "every message persisted exactly once")
    want: Counter[tuple[str, str, str]] = Counter()
    first_t: dict[tuple[str, str, str], float] = {}
    for inj in ev.journal.injected:
        key = ("sms", inj.number, inj.text)
        want[key] += 1
        first_t.setdefault(key, inj.t)
    for cmd in ev.journal.commands:
        key = ("matrix", cmd.actor, cmd.text)
        want[key] += 1
        first_t.setdefault(key, cmd.t)
    have = Counter((row["channel"], row["peer"], row["text"]) for row in ev.db.inbox)
    r.checked = sum(want.values())
    for key, n in want.items():
        got = have.get(key, 0)
        if got != n:
            what = "lost" if got < n else "stored more than once"
            r.add(
                first_t[key],
                key[1],
                f"{key[0]} {_short(key[2])!r}: sent {n}x, stored {got}x ({what})",
            )
    return r


# ---- 2. every victim acknowledged within the SIM-rate budget -----------------------------------


def ack_budgets(ev: Evidence) -> dict[str, float]:
    """Per number: the wall seconds its first SMS may wait for an answer.

    A fluid queue drained at the SIMs' rate (``send_per_minute`` counts SMS *parts*): every
    injected SMS may cause an urgent answer of up to ``ACK_PARTS`` parts (an ack, a keyword
    reply), a life threat also an urgent model reply of up to ``REPLY_PARTS``, every staff
    command a notice to the victim. The budget is the queue's wait at the victim's arrival, plus
    the slack, plus every gateway outage (and its restart) that overlaps the wait."""
    rate = max(ev.journal.send_per_minute, 1) / 60.0
    slack = ev.budget("ack_slack_s", 45)
    restart = ev.budget("restart_allowance_s", 60)
    kills = ev.journal.faults_of("gateway_kill")
    firsts = {inj.number: inj for inj in ev.first_injections().values()}
    budgets: dict[str, float] = {}
    queue = 0.0
    last_t: float | None = None
    # Staff decisions tell the victim by SMS too: one unit each.
    events: list[tuple[float, float, Injected | None]] = [
        (inj.t, ACK_PARTS + (REPLY_PARTS if inj.life_threat else 0), inj)
        for inj in ev.journal.injected
    ] + [(c.t, ACK_PARTS, None) for c in ev.journal.commands]
    for t, units, inj in sorted(events, key=lambda e: e[0]):
        if last_t is not None:
            queue = max(0.0, queue - rate * (t - last_t))
        last_t = t
        queue += units
        if inj is None or firsts.get(inj.number) is not inj:
            continue
        budget = slack + queue / rate
        for f in kills:  # the gateway was dead (and starting) for part of the wait
            end = (f.end if f.end is not None else ev.journal.ended) + restart
            if f.start < inj.t + budget and end > inj.t:
                budget += end - max(f.start, inj.t)
        # its modem was unplugged: the SMS waited on the SIM until the modem was back
        spans = held(ev.journal, inj.modem)
        budget += held_extra(inj.t, budget, spans, ev.journal.ended, restart)
        budgets[inj.number] = budget
    return budgets


def acked_in_time(ev: Evidence) -> Result:
    r = Result("ack_in_time", "every sender answered within the SIM-rate budget")
    budgets = ack_budgets(ev)
    by_to: dict[str, list[float]] = defaultdict(list)
    for s in ev.sent:
        by_to[s.to].append(s.t)
    worst = (-1.0, "", 0.0)
    for number, inj in ev.first_injections().items():
        r.checked += 1
        times = sorted(t for t in by_to.get(number, []) if t >= inj.t - 1.0)
        budget = budgets[number]
        if not times:
            r.add(
                inj.t,
                number,
                f"no SMS ever sent back (budget {budget:.0f} s): {_short(inj.text)!r}",
            )
            continue
        delay = times[0] - inj.t
        if delay > worst[0]:
            worst = (delay, number, budget)
        if delay > budget:
            r.add(inj.t, number, f"first answer after {delay:.0f} s > budget {budget:.0f} s")
    if worst[1]:
        r.worst = f"slowest {worst[0]:.1f} s ({worst[1]}, budget {worst[2]:.0f} s)"
    return r


# ---- 3. every critical case alerted ------------------------------------------------------------


def critical_alerted(ev: Evidence) -> Result:
    """Each life-threat sender's case reaches the coordination room within the budget, counted
    from when the homeserver (and the gateway) could first have carried it."""
    r = Result("critical_alerted", "every critical case alerted to coordinators in time")
    within = ev.budget("alert_within_s", 90)
    outages = ev.journal.faults_of("homeserver_down") + ev.journal.faults_of("gateway_kill")
    worst = (-1.0, "")
    for number in ev.first_injections():
        threats = [i for i in ev.journal.injected if i.number == number and i.life_threat]
        if not threats:
            continue
        first = threats[0]
        r.checked += 1
        inc = ev.incident_of(number)
        if inc is None:
            r.add(first.t, number, f"no case opened for {_short(first.text)!r}")
            continue
        case = inc["case_code"]
        # (an SMS on an unplugged modem is read once the modem is back)
        spans = outages + held(ev.journal, first.modem)
        reachable = _down_until(first.t, spans, ev.journal.ended)
        seen = [n.t for n in ev.journal.notices if case in n.body and n.t >= first.t - 1.0]
        if not seen:
            r.add(first.t, case, f"no alert for {case} in the coordination room ({number})")
            continue
        delay = min(seen) - reachable
        if delay > worst[0]:
            worst = (delay, case)
        if delay > within:
            r.add(
                first.t, case, f"alert {delay:.0f} s after the room was reachable > {within:.0f} s"
            )
    if worst[1]:
        r.worst = f"slowest {max(worst[0], 0):.1f} s after reachable ({worst[1]})"
    return r


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
            label = row.get("idem_key") or _short(row.get("text") or "")
            r.add(
                row["updated_at"],
                f"{table} #{row['id']}",
                f"{row['channel']} {label!r} dead: {_short(error, 120)}",
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
                f"{_short(inj.text)!r}",
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
    sent_order: dict[str, list[str]] = defaultdict(list)
    times: dict[str, float] = {}
    for inj in sorted(ev.journal.injected, key=lambda e: e.t):
        sent_order[inj.number].append(inj.text)
        times.setdefault(inj.number, inj.t)
    stored: dict[str, list[str]] = defaultdict(list)
    for row in ev.db.inbox:
        if row["channel"] == "sms":
            stored[row["peer"]].append(row["text"])
    for number, texts in sent_order.items():
        r.checked += 1
        got = stored.get(number, [])
        if got != texts and Counter(got) == Counter(texts):  # losses are nothing_lost's
            r.add(times[number], number, f"stored out of order: {[_short(t, 20) for t in got]}")
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
        if (
            row["channel"] == "sms"
            and row["sent_at"]
            and row["inbox_id"]
            and kind
            in (
                "reply",
                "fallback",
            )
        ):
            replies[(row["peer"], row["lane"], kind)].append((row["sent_at"], row["inbox_id"]))
    for (peer, _lane, _kind), rows in replies.items():
        ids = [i for _, i in sorted(rows)]
        if ids != sorted(ids):
            r.add(min(t for t, _ in rows), peer, f"answers sent for inbox {ids} (not in order)")
    return r


# ---- 8. duplicate SMS only within the documented window ----------------------------------------


def duplicates(ev: Evidence) -> Result:
    """The same outbound message (same idempotency key) sent twice only when a kill -9 hit it
    right after the modem accepted it, at most once per kill."""
    r = Result("duplicates", "no SMS sent twice outside the kill -9 window")
    window = ev.budget("duplicate_window_s", 2.0)
    kills = ev.journal.faults_of("gateway_kill")
    groups: dict[str, list[Sent]] = defaultdict(list)
    for s in ev.sent:
        groups[s.digest].append(s)
    r.checked = len(groups)
    used: Counter[float] = Counter()
    for digest, copies in groups.items():
        if len(copies) < 2:
            continue
        copies.sort(key=lambda s: s.t)
        first = copies[0]
        kill = next((k for k in kills if first.t <= k.start <= first.t + window), None)
        if kill is not None and len(copies) == 2 and used[kill.start] == 0:
            used[kill.start] += 1
            r.notes.append(
                f"{first.to}: {_short(first.text)!r} repeated after the kill -9 "
                f"{kill.start - first.t:.2f} s after it was sent (documented window)"
            )
            continue
        r.add(first.t, first.to, f"sent {len(copies)}x: {_short(first.text)!r} ({digest})")
    return r


# ---- 9. queue drained after the last fault -----------------------------------------------------


def queue_drained(ev: Evidence) -> Result:
    r = Result("queue_drained", "queues drained soon after the last fault and message")
    within = ev.budget("drain_within_s", 180)
    marks = [f.end if f.end is not None else ev.journal.ended for f in ev.journal.faults]
    marks += [i.t for i in ev.journal.injected] + [c.t for c in ev.journal.commands]
    if not marks:
        return r
    since = max(marks)
    r.checked = 1
    after = [s for s in ev.journal.samples if s.t >= since]
    drained = next((s for s in after if s.inbox_pending == 0 and s.outbox_pending == 0), None)
    if drained is None:
        last = after[-1] if after else None
        detail = (
            f"still {last.inbox_pending} in / {last.outbox_pending} out at the end"
            if last
            else "no sample after the last event"
        )
        r.add(since, "queues", f"never drained ({detail})")
        return r
    took = drained.t - since
    r.worst = f"drained {took:.1f} s after the last fault/message"
    if took > within:
        r.add(since, "queues", f"drained after {took:.0f} s > {within:.0f} s")
    return r


CHECKS: list[Callable[[Evidence], Result]] = [
    nothing_lost,
    acked_in_time,
    critical_alerted,
    no_transient_dead,
    facts_kept,
    staff_authority,
    conversation_order,
    duplicates,
    queue_drained,
]


def run_all(ev: Evidence) -> list[Result]:
    return [check(ev) for check in CHECKS]
