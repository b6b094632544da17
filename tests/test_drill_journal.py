"""bot/drill/journal.py: what the writer keeps in memory is what read() gets back from disk."""

from __future__ import annotations

from pathlib import Path

from bot.drill.journal import (
    Command,
    FaultSpan,
    Injected,
    Journal,
    JournalWriter,
    Notice,
    Sample,
    read,
)


def test_journal_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    live = Journal(scenario="night", started=1.0, staff=["@c:x"], budgets={"ack_slack_s": 9})
    w = JournalWriter(path, live)
    w.meta()
    w.inject(Injected(2.0, "+8801700000001", "help", "roofs/1", "report", "en", True, 5))
    w.command(Command(3.0, "@c:x", "!approve C-1", "C-1"))
    span = FaultSpan("gateway_kill", 4.0)
    w.fault(span)  # when it starts ...
    w.notice(Notice(5.0, "C-1 critical"))
    span.end = 6.0
    w.fault(span)  # ... and again when it ends: the last record wins
    w.sample(Sample(7.0, 1, 0, 3))
    w.gateway_started(8.0)
    w.close()
    back = read(path)
    assert back == live
    assert back.faults == [FaultSpan("gateway_kill", 4.0, 6.0)]
    assert [len(x) for x in (back.injected, back.commands, back.notices, back.samples)] == [1] * 4
