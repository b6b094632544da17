"""What every `lifeline` subcommand shares: the --config value, settings (exit 2 on a config
error), logging, running a coroutine with storage errors as exit codes, and rows printed as a
table that fits the terminal or as JSON (the stable contract)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from bot import redact
from bot.cli_table import Col, render
from bot.store.db import Database, DatabaseMissing, StorageError
from bot.textclean import clean_text, escape_unsafe
from config.settings import ConfigError, Settings, load_settings

T = TypeVar("T")

console = Console()
err = Console(stderr=True)


class _State:
    config: Path | None = None


state = _State()


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
    mask: str | None = None,
) -> None:
    """`mask` names the column of phone numbers / Matrix IDs: masked in the table, exact in JSON."""
    if mask is not None and not as_json:
        for r in rows:
            r[mask] = redact.mask_peer(r[mask])
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
