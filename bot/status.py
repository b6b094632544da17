"""The status report, and the one line format every health report uses.

`!status` and the sitrep's status section are the same text: `status_report(facts)`, from the
facts the running gateway holds (queues, model, modems, Matrix, protocol library). `lifeline doctor`
checks without a running gateway, from the config, the files and live probes, so its findings are
its own; it prints them with the same `render`: one line per component, "what: detail", with a
mark and the fix when asked for.

Pure: no I/O here, so each wording is unit-tested (tests/test_status.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from rich.markup import escape

if TYPE_CHECKING:
    from bot.llm import HostStatus, ModelHealth


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    BAD = "bad"


_MARKS = {Level.OK: "[green]✓[/]", Level.WARN: "[yellow]![/]", Level.BAD: "[red]✗[/]"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One component's state: `what` names it ("model gemma4:e4b"), `fix` says what to do."""

    what: str
    detail: str
    level: Level = Level.OK
    fix: str = ""


def render(findings: Sequence[Finding], *, marks: bool = False) -> str:
    """Plain "what: detail" lines (chat, sitrep), or with `marks` rich markup for the terminal:
    ✓/!/✗ and the fix on its own line. Reported text is escaped, never read as markup."""
    if not marks:
        return "\n".join(f"{f.what}: {f.detail}" for f in findings)
    return "\n".join(
        f"{_MARKS[f.level]} {escape(f.what)}: {escape(f.detail)}"
        + (f"\n    → {escape(f.fix)}" if f.fix else "")
        for f in findings
    )


class ModemView(Protocol):
    """What the report reads of a modem's health (bot/transports: ModemHealth)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def signal_percent(self) -> int | None: ...
    @property
    def last_ok_at(self) -> float | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def consecutive_errors(self) -> int: ...


class MatrixView(Protocol):
    """What the report reads of the Matrix channel's health (MatrixHealth)."""

    @property
    def state(self) -> str: ...
    @property
    def last_error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StatusFacts:
    """A snapshot of the running gateway, taken by the composition root (bot/app.py)."""

    now: float
    inbox: Mapping[str, int]  # status -> rows
    outbox: Mapping[str, int]
    oldest_waiting_at: float | None
    model_name: str
    model: ModelHealth
    median_turn_s: float | None  # of the last successful model turns
    modems: Sequence[ModemView] | None = None  # None: SMS is off
    matrix: MatrixView | None = None  # None: Matrix is off or not started yet
    matrix_error: str | None = None  # why Matrix is not connected yet (it keeps retrying)
    protocols_ready: bool = False
    model_hosts: Sequence[HostStatus] = ()  # the model pool's servers (bot/llm/pool.py)
    model_warming: bool = False  # no server up yet, one is loading the model


def findings(f: StatusFacts) -> list[Finding]:
    """The lines, in the order coordinators know: queues, model, modems, Matrix, library."""
    h = f.model
    out = [
        Finding("inbox", _counts(f.inbox)),
        Finding("outbox", _counts(f.outbox)),
        Finding(
            "oldest waiting",
            f"{int(f.now - f.oldest_waiting_at)} s" if f.oldest_waiting_at else "none",
        ),
        Finding(
            f"model {f.model_name}",
            ("WARMING (loading the model; messages wait for it)" if f.model_warming else "")
            or f"{'OK' if h.usable else 'DOWN'} ({h.detail})"
            + (f", median turn {f.median_turn_s:.1f} s" if f.median_turn_s is not None else ""),
            Level.WARN if f.model_warming else Level.OK if h.usable else Level.BAD,
        ),
        *(host_finding(m) for m in f.model_hosts),
    ]
    for m in f.modems or ():
        out.append(
            Finding(
                f"modem {m.name}",
                f"{m.state}, signal {_pct(m.signal_percent)}, errors {m.consecutive_errors}, "
                "last ok "
                + (f"{int(f.now - m.last_ok_at)} s ago" if m.last_ok_at else "never")
                + (f", last error: {m.last_error}" if m.last_error else ""),
                Level.OK if m.state == "up" else Level.WARN,
            )
        )
    if f.matrix_error is not None:
        out.append(Finding("matrix", f"NOT CONNECTED, retrying ({f.matrix_error})", Level.BAD))
    elif f.matrix is not None:
        out.append(
            Finding(
                "matrix",
                f.matrix.state
                + (f", last error: {f.matrix.last_error}" if f.matrix.last_error else ""),
                Level.OK if f.matrix.state == "online" else Level.WARN,
            )
        )
    out.append(
        Finding(
            "protocol library",
            "ready" if f.protocols_ready else "loading or unavailable",
            Level.OK if f.protocols_ready else Level.WARN,
        )
    )
    return out


def host_finding(m: HostStatus) -> Finding:
    """One model server: state (and why not up), slots, in flight, median turn, last error."""
    state = m.state if m.state == "up" else f"{m.state.upper()} ({m.reason})"
    median = f"{m.median_turn_s:.1f} s" if m.median_turn_s is not None else "-"
    caps = "/".join(sorted(m.capabilities & {"audio", "vision"})) or "text only"
    return Finding(
        f"model host {m.name}",
        f"{state}, {m.slots} slot(s), {m.in_flight} in flight, median turn {median}, {caps}"
        + (f", last error: {m.last_error}" if m.last_error else ""),
        Level.OK if m.state == "up" else Level.WARN if m.state == "warming" else Level.BAD,
        "" if m.state == "up" else f"check the Ollama server at {m.url}",
    )


def status_report(f: StatusFacts) -> str:
    """The text of `!status` and of the sitrep's status section."""
    return render(findings(f))


def _counts(by_status: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "empty"


def _pct(value: int | None) -> str:
    return "?" if value is None else f"{value}%"
