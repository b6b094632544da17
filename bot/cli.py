"""`lifeline` command line: run the gateway, inspect cases and messages, simulate SMS."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from bot import redact
from bot.cli_table import Col, render, short_coding, short_time
from bot.drill.cli import drill_app
from bot.store import incidents as incident_store
from bot.store import messages as message_store
from bot.store.db import Database, DatabaseMissing, StorageError
from bot.textclean import clean_text, escape_unsafe
from config.settings import ConfigError, Settings, load_settings

T = TypeVar("T")

app = typer.Typer(
    help="Lifeline: offline disaster-response gateway (SMS + Matrix + local model).",
    no_args_is_help=True,
    add_completion=False,
)
sim_app = typer.Typer(
    help="Simulated GSM network for drills, demos and tests.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")
app.add_typer(drill_app, name="drill")  # scenario drills: bot/drill/

console = Console()
err = Console(stderr=True)


class _State:
    config: Path | None = None


state = _State()


@app.callback()
def main_options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML config (default: $LIFELINE_CONFIG or "
            "config/lifeline.toml; embedded defaults when absent)",
        ),
    ] = None,
) -> None:
    state.config = config


def settings() -> Settings:
    try:
        return load_settings(state.config)
    except ConfigError as exc:
        err.print(f"[red]config error[/]: {escape(str(exc))}")
        raise typer.Exit(2) from exc


def setup_logging(s: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, s.logging.level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "nio", "chromadb", "peewee", "aiosqlite", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    redact.configure(log_bodies=s.logging.log_bodies)


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(fn())  # type: ignore[arg-type]
    except DatabaseMissing as exc:
        err.print(escape(f"{exc} — run from the Lifeline directory or set [storage].path"))
        raise typer.Exit(2) from exc
    except StorageError as exc:
        err.print(f"[red]storage error[/]: {escape(str(exc))}")
        raise typer.Exit(3) from exc


async def with_db(s: Settings, fn: Callable[[Database], Awaitable[T]]) -> T:
    """For inspecting commands: a missing database is an error (exit 2), never created."""
    db = Database(s.storage.path)
    await db.open(create=False)
    try:
        return await fn(db)
    finally:
        await db.close()


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def emit(
    rows: list[dict[str, Any]],
    as_json: bool,
    columns: list[Col],
    title: str,
    *,
    wide: bool = False,
) -> None:
    if as_json:
        # Values as stored; controls and bidi marks as \u escapes, never raw on the terminal.
        out = json.dumps(rows, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write(escape_unsafe(out) + "\n")
        return
    render(console, rows, columns, title, wide=wide, cell=_cell)
    if not rows:
        console.print("(none)")


WIDE = Annotated[
    bool, typer.Option("--wide", help="every column and the whole text (wraps long lines)")
]


def _cell(value: Any) -> str:
    """Display text of a value: what people typed is never terminal control (ANSI escapes,
    bidi overrides in an SMS); cli_table shows it as plain text, never as rich markup."""
    if isinstance(value, list):
        return clean_text(
            ", ".join(
                f"{v.get('team') or '-'}:{v.get('status')}" if isinstance(v, dict) else str(v)
                for v in value
            )
        )
    return "" if value is None else clean_text(str(value))


# ---- commands ----------------------------------------------------------------------------------


@app.command()
def run() -> None:
    """Run the gateway (SMS modems, Matrix, model worker, scheduler) until Ctrl-C."""
    from bot.app import run_until_stopped

    s = settings()
    setup_logging(s)
    run_async(lambda: run_until_stopped(s))


@app.command()
def incidents(
    as_json: Annotated[bool, typer.Option("--json", help="JSON list (stable contract)")] = False,
    status: Annotated[str | None, typer.Option(help="open | resolved | …")] = None,
    wide: WIDE = False,
) -> None:
    """List cases, most urgent first."""
    s = settings()

    async def go(db: Database) -> list[dict[str, Any]]:
        views = await incident_store.views(db, status=status)
        rows = []
        for v in views:
            row = v.to_json()
            row["created_at"] = iso(row["created_at"])
            row["updated_at"] = iso(row["updated_at"])
            rows.append(row)
        return rows

    rows = run_async(lambda: with_db(s, go))
    if not as_json:
        for r in rows:
            r["reporter"] = redact.mask_peer(r["reporter"])
    emit(
        rows,
        as_json,
        [
            Col("case"),
            Col("priority"),
            Col("status"),
            Col("location", flex=2),
            Col("people_count", header="people"),
            Col("needs", flex=2),
            Col("reporter", narrow=False),
            Col("channel", narrow=False),
            Col("created_at", header="created (UTC)", short=short_time),
            Col("dispatches", flex=1),
        ],
        "Incidents",
        wide=wide,
    )


@app.command()
def messages(
    as_json: Annotated[bool, typer.Option("--json", help="JSON list (stable contract)")] = False,
    limit: Annotated[int, typer.Option(help="most recent N")] = 200,
    wide: WIDE = False,
) -> None:
    """Messages in and out, newest last, with their status."""
    s = settings()

    async def go(db: Database) -> list[dict[str, Any]]:
        return [
            {**asdict(m), "created_at": iso(m.created_at)}
            for m in await message_store.recent(db, limit=limit)
        ]

    rows = run_async(lambda: with_db(s, go))
    if not as_json:
        for r in rows:
            r["peer"] = redact.mask_peer(r["peer"])
    emit(
        rows,
        as_json,
        [
            Col("created_at", header="time (UTC)", short=short_time),
            Col("direction", header="dir"),
            Col("channel", narrow=False),
            Col("peer"),
            Col("status"),
            Col("case"),
            Col("text", flex=3),
            Col("error", flex=1),
        ],
        "Messages",
        wide=wide,
    )


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="a directory (e.g. a USB stick) or a .db file")],
) -> None:
    """Copy the database consistently while the gateway runs (SQLite online backup)."""
    import sqlite3

    s = settings()
    src_path = s.storage.path.resolve()
    if not src_path.exists():
        err.print(escape(f"no Lifeline database at {src_path}; nothing to back up"))
        raise typer.Exit(2)
    target = (
        dest / f"lifeline-{datetime.now().strftime('%Y%m%d-%H%M%S')}.db" if dest.is_dir() else dest
    )
    if target.exists():
        err.print(escape(f"{target} exists; not overwriting a backup"))
        raise typer.Exit(2)
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    try:
        out = sqlite3.connect(target)
        try:
            src.backup(out)
            ok = out.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            out.close()
    except sqlite3.Error as exc:
        err.print(escape(f"backup to {target} failed: {exc}"))
        raise typer.Exit(3) from exc
    finally:
        src.close()
    if ok != "ok":
        err.print(escape(f"backup {target} failed its integrity check: {ok}"))
        raise typer.Exit(3)
    console.print(escape(f"backed up {src_path} → {target} ({target.stat().st_size} bytes, ok)"))


@app.command()
def teams(
    as_json: Annotated[bool, typer.Option("--json", help="JSON list")] = False,
) -> None:
    """Teams from the inventory and whether they are free."""
    s = settings()

    async def go(db: Database) -> list[dict[str, Any]]:
        from bot.models import Team

        now = datetime.now(UTC).timestamp()
        await incident_store.sync_teams(
            db, [Team(t.id, t.kind, t.base, t.capacity) for t in s.teams], now
        )
        return [
            {"id": t.id, "kind": t.kind, "base": t.base, "capacity": t.capacity, "status": t.status}
            for t in await incident_store.list_teams(db)
        ]

    rows = run_async(lambda: with_db(s, go))
    emit(
        rows,
        as_json,
        [Col("id"), Col("kind"), Col("base", flex=1), Col("capacity"), Col("status")],
        "Teams",
    )


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="files or folders (default: library)")
    ] = None,
) -> None:
    """Index protocol documents (Markdown, text, PDF); unchanged chunks are skipped."""
    from protocols.embedders import make_embedder
    from protocols.index import ProtocolIndex
    from protocols.ingest import ingest as do_ingest
    from protocols.ingest import render_report
    from protocols.prebuilt import ingest_library

    s = settings()
    setup_logging(s)

    async def go() -> int:
        index = ProtocolIndex(s.protocols.index_path, make_embedder(s.protocols, s.model.host))
        await index.open()
        try:
            if paths:
                report = await do_ingest(paths, index, progress=True)
            else:  # the library: also records its hash, so the next start has nothing to do
                report = await ingest_library(index, s.protocols, progress=True)
        finally:
            await index.close()
        console.print(render_report(report))
        return int(report.errors)

    errors = run_async(go)
    if errors:
        raise typer.Exit(1)


@app.command()
def doctor() -> None:
    """Check config, database, modems, model server and homeserver; say how to fix each."""
    from bot.doctor import run_doctor

    try:
        s = load_settings(state.config)
    except ConfigError as exc:
        console.print(f"[red]✗ config[/]: {escape(str(exc))}")
        raise typer.Exit(1) from exc
    # Doctor reports each check itself: a component's own log line ("model health: …") would
    # repeat it out of place among the ✓/✗ lines. Errors still reach stderr.
    logging.basicConfig(
        level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ok = run_async(lambda: run_doctor(s, console))
    raise typer.Exit(0 if ok else 1)


# ---- simulated network ---------------------------------------------------------------------


def _dummy_modems(s: Settings) -> dict[str, Path]:
    return {m.name: Path(m.device) for m in s.sms.modems if m.is_dummy}


@sim_app.command("sms")
def sim_sms(
    text: Annotated[str, typer.Argument(help="message text")],
    sender: Annotated[str, typer.Option("--from", help="sender number, e.g. +8801712345678")],
    modem: Annotated[str | None, typer.Option(help="dummy modem name (default: first)")] = None,
) -> None:
    """Inject an incoming SMS into a simulated (dummy-driver) modem."""
    from bot.instance_lock import holder_pid, modem_lock_path
    from bot.sim import inject_sms

    modems = _dummy_modems(settings())
    if not modems:
        err.print(
            'no simulated modem configured (sms.modems with connection = "none", model = "dummy")'
        )
        raise typer.Exit(2)
    name = modem or next(iter(modems))
    if name not in modems:
        err.print(escape(f"unknown simulated modem {name!r}; have: {', '.join(modems)}"))
        raise typer.Exit(2)
    device = modems[name].absolute()
    if not device.is_dir():
        # Run from another directory, a relative device is a new empty var/ nobody reads.
        err.print(
            escape(
                f"no simulated modem directory at {device} — run from the Lifeline directory "
                "or set sms.modems.device (`lifeline run` creates it); nothing injected"
            )
        )
        raise typer.Exit(2)
    files = inject_sms(device, sender, text)
    console.print(escape(f"injected {len(files)} part(s) into modem {name} from {sender}"))
    reader = holder_pid(modem_lock_path(device, simulated=True))
    if reader is None:
        console.print(
            escape(f"no gateway is reading {device} now; it is read when `lifeline run` starts")
        )


@sim_app.command("outbox")
def sim_outbox(
    as_json: Annotated[bool, typer.Option("--json", help="JSON list (stable contract)")] = False,
    wide: WIDE = False,
) -> None:
    """What the gateway sent through simulated modems, decoded."""
    from bot.sim import read_outbox

    modems = _dummy_modems(settings())
    if modems and not any(path.is_dir() for path in modems.values()):
        where = ", ".join(str(path.absolute()) for path in modems.values())
        err.print(
            escape(
                f"no simulated modem directory at {where} — run from the Lifeline directory "
                "or set sms.modems.device (`lifeline run` creates it)"
            )
        )
        raise typer.Exit(2)
    rows = read_outbox(modems)
    for r in rows:
        if isinstance(r.get("time"), (int, float)):
            r["time"] = iso(r["time"])
    emit(
        rows,
        as_json,
        [
            Col("time", header="time (UTC)", short=short_time),
            Col("modem"),
            Col("to"),
            Col("parts"),
            Col("coding", short=short_coding),
            Col("text", flex=3),
        ],
        "Sent SMS",
        wide=wide,
    )


def main() -> None:
    app()
