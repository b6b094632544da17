"""Each drill promise check catches a planted violation (and passes the clean record), with no
gateway: the evidence is built by hand, the way a drill records it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.drill import checks
from bot.drill.checks import Evidence, Result, Sent
from bot.drill.journal import FaultSpan, Injected, Journal, Notice, Sample
from tests.harness.drill_evidence import (
    ROOF,
    T0,
    A,
    B,
    audit_row,
    clean,
    inbox_row,
    outbox_row,
)


def alert_lf1000_at(ev: Evidence, t: float) -> None:
    """LF-1000's only alert comes at ``t`` (the other cases' alerts stay)."""
    keep = [n for n in ev.journal.notices if "LF-1000" not in n.body]
    ev.journal.notices[:] = [*keep, Notice(t, "[CRITICAL] LF-1000 new case")]


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
    alert_lf1000_at(ev, T0 + 200)


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
    ev.db.audit.append(audit_row(9, T0 + 30, B, "incident.updated", 1, {"priority": "low"}))


def _stored_out_of_order(ev: Evidence) -> None:
    ev.db.inbox[0]["text"], ev.db.inbox[3]["text"] = "status", ROOF


def _answered_out_of_order(ev: Evidence) -> None:
    ev.db.inbox.append(inbox_row(5, "sms", B, "second question", T0 + 3, needs_model=1))
    ev.journal.injected.append(
        Injected(T0 + 2.5, B, "second question", "p/1", "report", "en", False, None, "sim1")
    )
    ev.db.outbox.append(outbox_row(6, "reply:5", B, 1, T0 + 7, inbox_id=5))  # before reply:2 (T0+9)


def _model_turns_out_of_order(ev: Evidence) -> None:
    ev.db.inbox.append({**inbox_row(5, "sms", B, "second question", T0 + 3, needs_model=1)})
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
    alert_lf1000_at(ev, T0 + 170)
    assert checks.critical_alerted(ev).ok
    alert_lf1000_at(ev, T0 + 150 + 61)
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
    alert_lf1000_at(ev, T0 + 120)
    assert not checks.acked_in_time(ev).ok
    assert not checks.critical_alerted(ev).ok
    other = FaultSpan("modem_unplugged", T0 + 0.5, T0 + 70, target="sim2")
    ev.journal.faults.append(other)  # another modem's outage excuses nothing
    assert not checks.acked_in_time(ev).ok
    ev.journal.faults.append(FaultSpan("modem_unplugged", T0 + 0.5, T0 + 70, target="sim1"))
    assert checks.acked_in_time(ev).ok
    assert checks.critical_alerted(ev).ok
