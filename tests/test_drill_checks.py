"""Each drill promise check catches a planted violation (and passes the clean record), with no
gateway: the evidence is built by hand, the way a drill records it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.drill import checks
from bot.drill.checks import Evidence, Result, Sent
from bot.drill.journal import Command, FaultSpan, Injected, Journal, Notice, Sample
from bot.store.snapshot import Snapshot

A, B = "+8801700000001", "+8801700000002"
COORD, RESP = "@coord1:localhost", "@resp1:localhost"
ROOF = "Water rising, 5 of us on the roof of the school in Ulipur, send boat"
WATER = "We are 3 people at the Ulipur shelter, no drinking water"
T0 = 1_000_000.0


def clean() -> Evidence:
    """A small drill in which every promise was kept."""
    journal = Journal(
        scenario="unit",
        started=T0,
        ended=T0 + 300,
        staff=[COORD, RESP],
        send_per_minute=60,
        budgets={
            "ack_slack_s": 30,
            "alert_within_s": 60,
            "drain_within_s": 120,
            "duplicate_window_s": 2.0,
            "restart_allowance_s": 30,
        },
        injected=[
            Injected(T0 + 1, A, ROOF, "p/0", "report", "en", True, 5, "sim1"),
            Injected(T0 + 2, B, WATER, "p/1", "report", "en", False, 3, "sim1"),
            Injected(T0 + 40, A, "status", "p/0", "status", "en", False, None, "sim1"),
        ],
        commands=[Command(T0 + 20, COORD, "!approve LF-1000", "LF-1000")],
        notices=[
            Notice(T0 + 3, "[CRITICAL] LF-1000 new case\nwhere: ? | people: 5"),
            Notice(T0 + 10, "[CRITICAL] LF-1000 DISPATCH REQUEST - approve with !approve LF-1000"),
        ],
        samples=[Sample(T0 + 5, 2, 3, 1), Sample(T0 + 60, 0, 0, 6)],
    )
    inbox = [
        _in(1, "sms", A, ROOF, T0 + 1.2, needs_model=1),
        _in(2, "sms", B, WATER, T0 + 2.2, needs_model=1),
        _in(3, "matrix", COORD, "!approve LF-1000", T0 + 20.5, needs_model=0),
        _in(4, "sms", A, "status", T0 + 40.2, needs_model=0),
    ]
    outbox = [
        _out(1, "ack:1", A, 0, T0 + 4, inbox_id=1),
        _out(2, "ack:2", B, 0, T0 + 5, inbox_id=2),
        _out(3, "reply:1", A, 0, T0 + 8, inbox_id=1),
        _out(4, "reply:2", B, 1, T0 + 9, inbox_id=2),
        _out(5, "alert:case:1:critical", "!room", 0, T0 + 3, channel="matrix"),
    ]
    db = Snapshot(
        inbox=inbox,
        outbox=outbox,
        incidents=[
            _case(1, "LF-1000", A, priority=0, people=5),
            _case(2, "LF-1001", B, priority=2, people=3),
        ],
        dispatches=[
            {
                "id": 1,
                "incident_id": 1,
                "team_id": "boat-1",
                "kind": "boat",
                "status": "assigned",
                "priority": 0,
                "people_count": 5,
                "requested_by": A,
                "decided_by": COORD,
                "created_at": T0 + 9,
                "updated_at": T0 + 21,
            }
        ],
        audit=[
            _audit(1, T0 + 1.2, "gateway", "incident.created", 1),
            _audit(2, T0 + 9, A, "dispatch.requested", 1, {"dispatch": 1}),
            _audit(3, T0 + 21, COORD, "dispatch.assigned", 1, {"dispatch": 1, "team": "boat-1"}),
        ],
    )
    sent = [
        Sent(T0 + 4, A, "Lifeline LF-1000: we got your message", "aaaa"),
        Sent(T0 + 5, B, "Lifeline LF-1001: we got your message", "bbbb"),
        Sent(T0 + 8, A, "Boat requested", "cccc"),
        Sent(T0 + 9, B, "Boil water", "dddd"),
        Sent(T0 + 41, A, "LF-1000: dispatch assigned", "eeee"),
    ]
    return Evidence(journal, db, sent)


def _in(
    rid: int, channel: str, peer: str, text: str, at: float, *, needs_model: int
) -> dict[str, object]:
    return {
        "id": rid,
        "channel": channel,
        "peer": peer,
        "text": text,
        "status": "done",
        "error": None,
        "order_key": f"{channel}:{peer}",
        "priority": 2,
        "incident_id": None,
        "needs_model": needs_model,
        "received_at": at,
        "created_at": at,
        "updated_at": at + 1,
        "done_at": at + 1,
    }


def _out(
    rid: int,
    key: str,
    peer: str,
    lane: int,
    sent_at: float,
    *,
    inbox_id: int | None = None,
    channel: str = "sms",
) -> dict[str, object]:
    return {
        "id": rid,
        "idem_key": key,
        "channel": channel,
        "peer": peer,
        "text": key,
        "lane": lane,
        "status": "sent",
        "attempts": 1,
        "error": None,
        "inbox_id": inbox_id,
        "incident_id": None,
        "created_at": sent_at - 1,
        "updated_at": sent_at,
        "sent_at": sent_at,
    }


def _case(iid: int, code: str, reporter: str, *, priority: int, people: int) -> dict[str, object]:
    return {
        "id": iid,
        "case_code": code,
        "priority": priority,
        "status": "open",
        "people_count": people,
        "reporter": reporter,
        "channel": "sms",
        "created_at": T0 + 1,
        "updated_at": T0 + 21,
    }


def _audit(
    aid: int, at: float, actor: str, action: str, incident: int, detail: object = None
) -> dict[str, object]:
    return {
        "id": aid,
        "at": at,
        "actor": actor,
        "action": action,
        "incident_id": incident,
        "detail": json.dumps(detail or {}),
    }


def only_failure(ev: Evidence) -> Result:
    """The one check that failed (every other promise must still hold)."""
    failed = [r for r in checks.run_all(ev) if not r.ok]
    assert len(failed) == 1, [(r.promise, r.violations) for r in failed]
    return failed[0]


def test_the_clean_record_keeps_every_promise() -> None:
    results = checks.run_all(clean())
    assert [r.promise for r in results if not r.ok] == []
    assert all(r.checked for r in results), [r.promise for r in results if not r.checked]


Plant = Callable[[Evidence], None]


def _lose_b(ev: Evidence) -> None:
    ev.db.inbox[:] = [r for r in ev.db.inbox if r["peer"] != B]


def _store_twice(ev: Evidence) -> None:
    ev.db.inbox.append({**ev.db.inbox[0], "id": 99})


def _lose_command(ev: Evidence) -> None:
    ev.db.inbox[:] = [r for r in ev.db.inbox if r["channel"] != "matrix"]


def _late_ack(ev: Evidence) -> None:
    ev.sent[1] = Sent(T0 + 500, B, "late ack", "bbbb")
    ev.sent[3] = Sent(T0 + 501, B, "Boil water", "dddd")


def _no_answer(ev: Evidence) -> None:
    ev.sent[:] = [s for s in ev.sent if s.to != B]


def _no_alert(ev: Evidence) -> None:
    ev.journal.notices.clear()


def _late_alert(ev: Evidence) -> None:
    ev.journal.notices[:] = [Notice(T0 + 200, "[CRITICAL] LF-1000 new case")]


def _dead_transient(ev: Evidence) -> None:
    ev.db.outbox[4].update(status="dead", error="SendError: network: ClientConnectorError(...)")


def _dead_unexplained(ev: Evidence) -> None:
    ev.db.inbox[1].update(status="dead", error=None)


def _count_lowered(ev: Evidence) -> None:
    ev.db.incidents[0]["people_count"] = 1


def _dispatch_lowered(ev: Evidence) -> None:
    ev.db.dispatches[0]["people_count"] = 1


def _assigned_by_victim(ev: Evidence) -> None:
    ev.db.audit[2]["actor"] = A


def _closed_without_command(ev: Evidence) -> None:
    ev.db.incidents[1]["status"] = "resolved"


def _critical_lowered(ev: Evidence) -> None:
    ev.db.incidents[0]["priority"] = 3


def _model_update_by_public(ev: Evidence) -> None:
    ev.db.audit.append(_audit(9, T0 + 30, B, "incident.updated", 1, {"priority": "low"}))


def _stored_out_of_order(ev: Evidence) -> None:
    ev.db.inbox[0]["text"], ev.db.inbox[3]["text"] = "status", ROOF


def _answered_out_of_order(ev: Evidence) -> None:
    ev.db.inbox.append(_in(5, "sms", B, "second question", T0 + 3, needs_model=1))
    ev.journal.injected.append(
        Injected(T0 + 2.5, B, "second question", "p/1", "report", "en", False, None, "sim1")
    )
    ev.db.outbox.append(_out(6, "reply:5", B, 1, T0 + 7, inbox_id=5))  # before reply:2 (T0+9)


def _model_turns_out_of_order(ev: Evidence) -> None:
    ev.db.inbox.append({**_in(5, "sms", B, "second question", T0 + 3, needs_model=1)})
    ev.db.inbox[-1]["done_at"] = T0 + 2.5  # finished before inbox 2 (done at T0 + 3.2)
    ev.journal.injected.append(
        Injected(T0 + 2.5, B, "second question", "p/1", "report", "en", False, None, "sim1")
    )


def _sent_twice(ev: Evidence) -> None:
    ev.sent.append(Sent(T0 + 30, A, "Boat requested", "cccc"))


def _sent_three_times_around_a_kill(ev: Evidence) -> None:
    ev.journal.faults.append(FaultSpan("gateway_kill", T0 + 8.5, T0 + 12))
    ev.sent += [Sent(T0 + 13, A, "Boat requested", "cccc"), Sent(T0 + 14, A, "Boat", "cccc")]


def _never_drained(ev: Evidence) -> None:
    ev.journal.samples[-1] = Sample(T0 + 60, 0, 4, 6)


def _drained_late(ev: Evidence) -> None:
    ev.journal.samples[-1] = Sample(T0 + 40 + 500, 0, 0, 6)


@pytest.mark.parametrize(
    ("plant", "promise"),
    [
        (_lose_b, "nothing_lost"),
        (_store_twice, "nothing_lost"),
        (_lose_command, "nothing_lost"),
        (_late_ack, "ack_in_time"),
        (_no_answer, "ack_in_time"),
        (_no_alert, "critical_alerted"),
        (_late_alert, "critical_alerted"),
        (_dead_transient, "no_transient_dead"),
        (_dead_unexplained, "no_transient_dead"),
        (_count_lowered, "facts_kept"),
        (_dispatch_lowered, "facts_kept"),
        (_assigned_by_victim, "staff_authority"),
        (_closed_without_command, "staff_authority"),
        (_critical_lowered, "staff_authority"),
        (_model_update_by_public, "staff_authority"),
        (_stored_out_of_order, "conversation_order"),
        (_answered_out_of_order, "conversation_order"),
        (_model_turns_out_of_order, "conversation_order"),
        (_sent_twice, "duplicates"),
        (_sent_three_times_around_a_kill, "duplicates"),
        (_never_drained, "queue_drained"),
        (_drained_late, "queue_drained"),
    ],
)
def test_a_planted_violation_is_caught_with_its_evidence(plant: Plant, promise: str) -> None:
    ev = clean()
    plant(ev)
    failed = only_failure(ev)
    assert failed.promise == promise
    v = failed.violations[0]
    assert v.promise == promise and v.subject and v.evidence and v.at > 0


def test_an_alert_is_timed_from_when_the_homeserver_came_back() -> None:
    ev = clean()
    ev.journal.faults.append(FaultSpan("homeserver_down", T0, T0 + 150))
    ev.journal.notices[:] = [Notice(T0 + 170, "[CRITICAL] LF-1000 new case")]
    assert checks.critical_alerted(ev).ok
    ev.journal.notices[:] = [Notice(T0 + 150 + 61, "[CRITICAL] LF-1000 new case")]
    assert not checks.critical_alerted(ev).ok


def test_one_repeat_right_after_a_kill_is_the_documented_window() -> None:
    ev = clean()
    ev.journal.faults.append(FaultSpan("gateway_kill", T0 + 8.5, T0 + 12))
    ev.sent.append(Sent(T0 + 13, A, "Boat requested", "cccc"))
    result = checks.duplicates(ev)
    assert result.ok and result.notes


def test_a_gateway_outage_extends_the_ack_budget() -> None:
    ev = clean()
    ev.sent[1] = Sent(T0 + 80, B, "ack after the restart", "bbbb")
    ev.sent[3] = Sent(T0 + 81, B, "Boil water", "dddd")
    assert not checks.acked_in_time(ev).ok
    ev.journal.faults.append(FaultSpan("gateway_kill", T0 + 1.5, T0 + 40))
    assert checks.acked_in_time(ev).ok


def test_a_permanent_reason_is_not_a_transient_dead_letter() -> None:
    ev = clean()
    ev.db.outbox[1].update(status="dead", error="invalid number")
    result = checks.no_transient_dead(ev)
    assert result.ok and result.notes


def test_an_unknown_head_count_is_not_a_lowered_one() -> None:
    ev = clean()
    ev.db.incidents[1]["people_count"] = 0
    assert checks.facts_kept(ev).ok


def test_the_journal_reads_back_what_was_written(tmp_path: Path) -> None:
    from bot.drill.journal import JournalWriter, read

    original = clean().journal
    writer = JournalWriter(tmp_path / "journal.jsonl", Journal(scenario="unit", started=T0))
    writer.meta()
    for inj in original.injected:
        writer.inject(inj)
    for cmd in original.commands:
        writer.command(cmd)
    for n in original.notices:
        writer.notice(n)
    span = FaultSpan("homeserver_down", T0 + 5)
    writer.fault(span)  # started…
    span.end = T0 + 9
    writer.fault(span)  # …and over: the last record wins
    writer.close()
    again = read(tmp_path / "journal.jsonl")
    assert again.injected == original.injected and again.commands == original.commands
    assert again.notices == original.notices and again.started == T0
    assert again.faults == [FaultSpan("homeserver_down", T0 + 5, T0 + 9)]


def test_an_unplugged_modem_extends_the_ack_and_alert_budgets_of_its_own_senders() -> None:
    ev = clean()
    ev.sent[0] = Sent(T0 + 100, A, "ack after the modem came back", "aaaa")
    ev.sent[2] = Sent(T0 + 101, A, "Boat requested", "cccc")
    ev.journal.notices[:] = [Notice(T0 + 120, "[CRITICAL] LF-1000 new case")]
    assert not checks.acked_in_time(ev).ok
    assert not checks.critical_alerted(ev).ok
    other = FaultSpan("modem_unplugged", T0 + 0.5, T0 + 70, target="sim2")
    ev.journal.faults.append(other)  # another modem's outage excuses nothing
    assert not checks.acked_in_time(ev).ok
    ev.journal.faults.append(FaultSpan("modem_unplugged", T0 + 0.5, T0 + 70, target="sim1"))
    assert checks.acked_in_time(ev).ok
    assert checks.critical_alerted(ev).ok
