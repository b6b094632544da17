"""What `lifeline run` prints at start: the model's state and the fix, the protocol index plan,
and for a simulated modem the commands to try it from another terminal (pasteable as they are)."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.llm import HostStatus, ModelHealth
    from config.settings import Settings

log = logging.getLogger(__name__)


def protocol_index_plan(s: Settings) -> str | None:
    """What the background protocol task will do, for the banner (a hash and one row read)."""
    from protocols.prebuilt import plan

    try:
        return plan(s.protocols).banner
    except OSError as exc:
        log.warning("protocol index: cannot check %s: %s", s.protocols.library_path, exc)
        return None


def print_banner(
    settings: Settings,
    health: ModelHealth,
    *,
    protocols: str | None = None,
    hosts: Sequence[HostStatus] = (),
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    console = Console(stderr=True)
    # Configured and reported text is shown as is, never read as rich markup.
    name, host, detail = (
        escape(v) for v in (settings.model.name, settings.model.host, health.detail)
    )
    if health.usable and health.missing_capabilities:
        console.print(
            Panel.fit(
                f"[bold yellow]LIFELINE running with limits[/] — model {name} "
                f"lacks {escape(', '.join(sorted(health.missing_capabilities)))}: voice "
                "notes/photos are kept for coordinators and senders are asked to write instead."
                "\nFix: use the GGUF build of gemma4:e4b (MLX variants report no audio/vision).",
                border_style="yellow",
            )
        )
    elif health.ok:
        console.print(
            Panel.fit(
                f"[bold green]LIFELINE running[/] — model {name} at "
                f"{host} ({escape(', '.join(sorted(health.capabilities)))})",
                border_style="green",
            )
        )
    else:
        console.print(
            Panel.fit(
                f"[bold red]DEGRADED MODE[/] — model {name} "
                f"at {host}:\n{detail}\n"
                "Victims still get an instant acknowledgement and safety advice "
                "from the protocol library.\nMessages wait in the queue and are answered when the "
                f"model is back.\nFix: start Ollama and run `ollama pull {name}`; "
                "`lifeline doctor` checks everything.",
                border_style="red",
                title="LIFELINE",
            )
        )
    for h in hosts:
        state = {
            "warming": f"[yellow]warming[/] (loading {name}; messages wait for it)",
            "up": "[green]up[/]",
        }.get(h.state, f"[red]{escape(h.state.upper())}[/] ({escape(h.reason)})")
        console.print(
            f"model host {escape(h.name)} at {escape(h.url)}, {h.slots} slot(s): {state}",
            soft_wrap=True,
        )
    if protocols is not None and "building" in protocols:
        console.print(
            f"[bold yellow]{escape(protocols)}[/] in the background (first start, or the library "
            "changed since install): replies use the built-in safety advice until the log says "
            "'protocol library ready'",
            soft_wrap=True,
        )
    elif protocols is not None:
        console.print(escape(protocols))
    if settings.board.enabled:
        b = settings.board
        host = f"[{b.bind}]" if ":" in b.bind else b.bind
        url = f"{b.public_url}/" if b.public_url else f"http://{host}:{b.port}/"
        console.print(
            f"[bold]Incident board:[/] {escape(url)} (staff log in with their Matrix account)",
            soft_wrap=True,
        )
    if settings.sms.enabled and any(m.is_dummy for m in settings.sms.modems):
        m = next(m for m in settings.sms.modems if m.is_dummy)
        cmd = cli_hint()
        console.print(
            escape(
                f"SIMULATED modem '{m.name}' (gammu dummy driver, no real SMS is sent) at "
                f"{m.device}. From another terminal:\n"
                f'  {cmd} sim sms --from +8801712345678 "Water rising fast, 4 people on the '
                f'roof near Char Bhadrasan school"\n'
                f"  {cmd} sim outbox      # what the gateway sent\n"
                f"  {cmd} incidents       # cases"
            ),
            soft_wrap=True,  # commands stay on one line, so they paste as they are
        )


def cli_hint() -> str:
    """How the operator invoked us, so the printed commands work when pasted."""
    prog = sys.argv[0] if sys.argv and sys.argv[0].endswith("lifeline") else "lifeline"
    args = sys.argv[1:]
    config = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--config", "-c")), None)
    prog = os.path.relpath(prog) if os.path.isabs(prog) else prog
    return f"{prog} --config {config}" if config else prog
