"""`lifeline sim sms | outbox`: the simulated GSM network (gammu's dummy driver) for drills, demos
and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bot.cli_base import WIDE, console, emit, err, iso, settings
from bot.cli_table import Col, short_coding, short_time
from config.settings import Settings

sim_app = typer.Typer(
    help="Simulated GSM network for drills, demos and tests.", no_args_is_help=True
)


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
