"""`lifeline region rebuild | show`: the regional view from the command line.

``rebuild`` drops the view and reads the regional room's whole history again (its own
unencrypted Matrix session from the gateway's stored login; the gateway may keep running: every
event is applied once by (district, seq))."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape

from bot.cli_base import console, err, run_async, settings, setup_logging, with_db
from bot.commands import Command
from bot.models import Channel, Role
from bot.store.db import Database

region_app = typer.Typer(
    help="The regional view (bot/region): rebuild it, show it.", no_args_is_help=True
)


@region_app.command("rebuild")
def rebuild() -> None:
    """Drop the regional view and rebuild it from the regional room's history."""
    from bot.region.service import build_region, join
    from bot.transports.matrix.session import Session
    from handlers.context import Notifier, Services

    s = settings()
    setup_logging(s)
    if not (s.region.district and s.region.room):
        err.print("[red]no [region] district and room configured[/]")
        raise typer.Exit(2)

    async def go(db: Database) -> int:
        services = Services(db=db, settings=s, clock=time.time, notifier=Notifier())
        region = build_region(services, _no_staff, lambda: None)
        assert region is not None
        matrix = s.matrix.model_copy(update={"encryption": False})  # /messages only
        session = Session(matrix, s.matrix.homeserver, timeline_limit=1, max_backfill_events=1)
        await session.start()
        try:
            client = session.require_client()
            region.reader.me = client.user_id
            return await region.reader.rebuild(client, await join(client, s.region.room))
        finally:
            await session.close()

    count = run_async(lambda: with_db(s, go))
    console.print(escape(f"regional view rebuilt: {count} events applied"))


@region_app.command("show")
def show(
    cases: Annotated[bool, typer.Option("--cases", help="every district's open cases")] = False,
) -> None:
    """What `!region` (or `!region cases`) says, from the local view."""
    from bot.region.service import build_region
    from handlers.context import Notifier, Services

    s = settings()

    async def go(db: Database) -> str:
        services = Services(db=db, settings=s, clock=time.time, notifier=Notifier())
        region = build_region(services, _no_staff, lambda: None)
        if region is None:
            return "no [region] district and room configured"
        return await region.commands.run(Command("region", ("cases",) if cases else ()))

    console.print(escape(run_async(lambda: with_db(s, go))))


def _no_staff(channel: Channel, peer: str) -> Role:
    """No inbox here: nobody's command is taken from the room by the CLI."""
    return Role.PUBLIC
