"""Drill promises about delivery: nothing lost, every sender answered and every critical case
alerted in time, no SMS sent twice outside the kill -9 window, queues drained after the faults."""

from __future__ import annotations

from collections import Counter, defaultdict

from bot.drill.checks.evidence import (
    ACK_PARTS,
    REPLY_PARTS,
    Evidence,
    Result,
    Sent,
    down_until,
    short,
)
from bot.drill.hardware import held, held_extra
from bot.drill.journal import Injected
from bot.store.snapshot import Row

# Faults during which the model cannot hear a voice note (or answers late).
MODEL_FAULTS = ("model_down", "model_garbage", "model_slow", "model_drop_tools")

# ---- 1. nothing lost --------------------------------------------------------------------------


def nothing_lost(ev: Evidence) -> Result:
    """Every injected SMS, every Matrix victim's message (by event id) and every staff command
    persisted exactly once."""
    r = Result("nothing_lost", "every message persisted exactly once")
    want: Counter[tuple[str, str, str]] = Counter()
    first_t: dict[tuple[str, str, str], float] = {}
    stored = {row["dedup_key"]: row for row in ev.db.inbox if row["channel"] == "matrix"}
    for inj in ev.journal.injected:
        if inj.channel == "matrix":
            _matrix_stored(r, inj, stored.get(inj.event_id))
            continue
        key = ("sms", inj.number, inj.text)
        want[key] += 1
        first_t.setdefault(key, inj.t)
    for cmd in ev.journal.commands:
        key = ("matrix", cmd.actor, cmd.text)
        want[key] += 1
        first_t.setdefault(key, cmd.t)
    have = Counter((row["channel"], row["peer"], row["text"]) for row in ev.db.inbox)
    r.checked += sum(want.values())
    for key, n in want.items():
        got = have.get(key, 0)
        if got != n:
            what = "lost" if got < n else "stored more than once"
            r.add(
                first_t[key],
                key[1],
                f"{key[0]} {short(key[2])!r}: sent {n}x, stored {got}x ({what})",
            )
    return r


def _matrix_stored(r: Result, inj: Injected, row: Row | None) -> None:
    """The event is in the inbox (the key is unique: once at most) from the victim, with the
    text they wrote (a photo's caption; a voice note has none)."""
    r.checked += 1
    if row is None:
        r.add(inj.t, inj.number, f"matrix {inj.event_id} {short(inj.text)!r}: lost")
    elif row["peer"] != inj.number:
        r.add(inj.t, inj.number, f"matrix {inj.event_id} stored as from {row['peer']}")
    elif inj.media != "voice" and row["text"] != inj.text:
        r.add(inj.t, inj.number, f"matrix {inj.event_id} stored as {short(row['text'])!r}")


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
    # A Matrix victim's answer waits on no SIM: the slack, plus any homeserver or gateway
    # outage (and the restart after it) during the wait. Its clock starts when the homeserver
    # accepted the message (while it was down, the victim's client kept retrying).
    matrix_out = kills + ev.journal.faults_of("homeserver_down")
    for first in firsts.values():
        if first.channel == "matrix":
            extra = held_extra(first.t, slack, matrix_out, ev.journal.ended, restart)
            budgets[first.number] = slack + extra
    queue = 0.0
    last_t: float | None = None
    # Staff decisions tell the victim by SMS too: one unit each.
    events: list[tuple[float, float, Injected | None]] = [
        (inj.t, ACK_PARTS + (REPLY_PARTS if inj.life_threat else 0), inj)
        for inj in ev.journal.injected
        if inj.channel != "matrix"
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
    worst = (-1.0, "", 0.0)
    for number, inj in ev.first_injections().items():
        r.checked += 1
        times = [t for t in ev.answers_to(inj) if t >= inj.t - 1.0]
        budget = budgets[number]
        if not times:
            what = (
                "no answer seen in the DM" if inj.channel == "matrix" else "no SMS ever sent back"
            )
            r.add(inj.t, number, f"{what} (budget {budget:.0f} s): {short(inj.text)!r}")
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
            r.add(first.t, number, f"no case opened for {short(first.text)!r}")
            continue
        case = inc["case_code"]
        # (an SMS on an unplugged modem is read once the modem is back; a voice note says
        # nothing without the model, so it is critical once the model can hear it)
        spans = outages + held(ev.journal, first.modem)
        if first.media == "voice":
            spans += [f for f in ev.journal.faults if f.kind in MODEL_FAULTS]
        reachable = down_until(first.t, spans, ev.journal.ended)
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
                f"{first.to}: {short(first.text)!r} repeated after the kill -9 "
                f"{kill.start - first.t:.2f} s after it was sent (documented window)"
            )
            continue
        r.add(first.t, first.to, f"sent {len(copies)}x: {short(first.text)!r} ({digest})")
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
