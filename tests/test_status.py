"""The status report (bot/status.py): the exact text of `!status` and the sitrep's status section,
and the doctor's line format. Pure: no gateway, no database."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from bot.doctor import Report
from bot.llm import ModelHealth
from bot.status import Finding, Level, StatusFacts, findings, render, status_report

OK = ModelHealth(True, True, frozenset({"completion", "tools", "audio", "vision"}), "0.9", "ready")
DOWN = ModelHealth(False, False, frozenset(), None, "connection refused")


@dataclass(frozen=True)
class Modem:
    name: str
    state: str
    signal_percent: int | None
    last_ok_at: float | None
    last_error: str | None
    consecutive_errors: int


@dataclass(frozen=True)
class Matrix:
    state: str
    last_error: str | None


def facts(**over: object) -> StatusFacts:
    base: dict[str, object] = {
        "now": 1000.0,
        "inbox": {},
        "outbox": {},
        "oldest_waiting_at": None,
        "model_name": "gemma4:e4b",
        "model": OK,
        "median_turn_s": None,
    }
    return StatusFacts(**{**base, **over})  # type: ignore[arg-type]


def test_quiet_gateway_with_sms_and_matrix_off() -> None:
    assert status_report(facts()) == (
        "inbox: empty\n"
        "outbox: empty\n"
        "oldest waiting: none\n"
        "model gemma4:e4b: OK (ready)\n"
        "protocol library: loading or unavailable"
    )


def test_busy_gateway_every_section() -> None:
    text = status_report(
        facts(
            inbox={"queued": 3, "done": 10},
            outbox={"sent": 7, "dead": 1},
            oldest_waiting_at=958.6,
            model=DOWN,
            median_turn_s=4.25,
            modems=[
                Modem("sim1", "up", 80, 990.0, None, 0),
                Modem("sim2", "down", None, None, "no SIM", 3),
            ],
            matrix=Matrix("reconnecting", "HTTP 502"),
            protocols_ready=True,
        )
    )
    assert text == (
        "inbox: done 10, queued 3\n"  # sorted by status
        "outbox: dead 1, sent 7\n"
        "oldest waiting: 41 s\n"
        "model gemma4:e4b: DOWN (connection refused), median turn 4.2 s\n"
        "modem sim1: up, signal 80%, errors 0, last ok 10 s ago\n"
        "modem sim2: down, signal ?, errors 3, last ok never, last error: no SIM\n"
        "matrix: reconnecting, last error: HTTP 502\n"
        "protocol library: ready"
    )


def test_matrix_not_connected_wins_over_its_health() -> None:
    text = status_report(facts(matrix=Matrix("online", None), matrix_error="refused"))
    assert "matrix: NOT CONNECTED, retrying (refused)" in text.splitlines()
    assert status_report(facts(matrix=Matrix("online", None))).splitlines()[-2] == "matrix: online"


def test_levels_mark_what_needs_attention() -> None:
    levels = {
        f.what: f.level
        for f in findings(
            facts(model=DOWN, modems=[Modem("sim1", "down", 0, None, "x", 1)], matrix_error="x")
        )
    }
    assert levels["model gemma4:e4b"] is Level.BAD
    assert levels["modem sim1"] is Level.WARN
    assert levels["matrix"] is Level.BAD
    assert levels["inbox"] is Level.OK


def test_render_with_marks_escapes_and_adds_the_fix() -> None:
    assert render([Finding("config", "valid")], marks=True) == "[green]✓[/] config: valid"
    assert render([Finding("[model].host", "x", Level.BAD, "set [model].host")], marks=True) == (
        "[red]✗[/] \\[model].host: x\n    → set \\[model].host"
    )
    assert render([Finding("a", "b", Level.WARN, "c")], marks=True) == "[yellow]![/] a: b\n    → c"


def test_doctor_prints_its_checks_in_the_same_format() -> None:
    console = Console(record=True, width=200, color_system=None)
    r = Report(console)
    r.good("config", "valid (1 modem(s))")
    r.warn("teams", "no [[teams]] in the config", "add teams")
    r.bad("model m", "not installed", "`ollama pull m`")
    assert not r.ok
    assert console.export_text() == (
        "✓ config: valid (1 modem(s))\n"
        "! teams: no [[teams]] in the config\n    → add teams\n"
        "✗ model m: not installed\n    → `ollama pull m`\n"
    )
