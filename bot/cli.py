"""`lifeline` command line: run the gateway, inspect cases and messages, check the installation.
Subcommands: `sim` (bot/cli_sim.py), `drill` (bot/drill/cli.py); shared helpers: bot/cli_base.py."""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from bot.cli_base import (
    WIDE,
    console,
    emit,
    err,
    iso,
    run_async,
    settings,
    setup_logging,
    state,
    with_db,
)
from bot.cli_sim import sim_app
from bot.cli_table import Col, short_time
from bot.drill.cli import drill_app
from bot.region.cli import region_app
from bot.store import incidents as incident_store
from bot.store import messages as message_store
from bot.store.db import Database
from config.settings import ConfigError, load_settings

app = typer.Typer(
    help="Lifeline: offline disaster-response gateway (SMS + Matrix + local model).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sim_app, name="sim")
app.add_typer(drill_app, name="drill")  # scenario drills: bot/drill/
app.add_typer(region_app, name="region")  # the regional view: bot/region/


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
    columns = [
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
    ]
    emit(rows, as_json, columns, "Incidents", wide=wide, mask="reporter")


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
    columns = [
        Col("created_at", header="time (UTC)", short=short_time),
        Col("direction", header="dir"),
        Col("channel", narrow=False),
        Col("peer"),
        Col("status"),
        Col("case"),
        Col("text", flex=3),
        Col("error", flex=1),
    ]
    emit(rows, as_json, columns, "Messages", wide=wide, mask="peer")


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


def main() -> None:
    app()
