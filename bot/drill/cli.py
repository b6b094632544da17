"""`lifeline drill list | run | report`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.drill import scenario as scenario_mod

drill_app = typer.Typer(
    help="Scenario drills: replay a disaster night against a real gateway and check its promises.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


def _load(name: str) -> scenario_mod.Scenario:
    try:
        return scenario_mod.load(scenario_mod.resolve(name))
    except scenario_mod.ScenarioError as exc:
        err.print(f"[red]scenario error[/]: {escape(str(exc))}")
        raise typer.Exit(2) from exc


@drill_app.command("list")
def list_drills() -> None:
    """Scenarios shipped in drills/."""
    table = Table(title="Drills")
    for col in ("name", "victims", "faults", "wall time", "description"):
        table.add_column(col, overflow="fold")
    for path in scenario_mod.available():
        sc = _load(str(path))
        table.add_row(
            escape(path.stem),
            str(sum(p.count for p in sc.victims) + len(sc.flooders)),
            escape(", ".join(f.kind for f in sc.faults) or "-"),
            f"{sc.wall(sc.duration_s) / 60:.1f} min",
            escape(sc.description.strip().splitlines()[0] if sc.description.strip() else ""),
        )
    console.print(table)


@drill_app.command("run")
def run(
    scenario: Annotated[str, typer.Argument(help="a file or a name from `lifeline drill list`")],
    speed: Annotated[
        float | None, typer.Option(help="time compression (scenario s per wall s)")
    ] = None,
    humans: Annotated[
        bool, typer.Option("--humans", help="no simulated staff: people coordinate in Element")
    ] = False,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="where the debrief goes (default var/drills/…)")
    ] = None,
    model_host: Annotated[
        str | None, typer.Option(help="a real Ollama URL instead of the stand-in")
    ] = None,
) -> None:
    """Start a gateway on drill defaults and play the scenario against it; exit 1 when a
    promise broke."""
    import logging

    from bot.drill import report
    from bot.drill.runner import DrillRun, Options

    sc = _load(scenario)
    out = report_dir or Path("var/drills") / (
        f"{scenario_mod.resolve(scenario).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    opts = Options(
        humans=humans,
        speed=speed,
        model_host=model_host,
        say=lambda text: console.print(escape(text)),
    )
    ev, results = asyncio.run(DrillRun(sc, out, opts).run())
    data = report.build(ev, results)
    report.write(out.resolve(), data)
    report.summary(data, console)
    console.print(escape(f"debrief: {out / 'timeline.png'}, {out / 'victims.csv'}"))
    raise typer.Exit(0 if report.passed(data) else 1)


@drill_app.command("report")
def report_cmd(
    directory: Annotated[Path, typer.Argument(help="a drill's --report directory")],
) -> None:
    """Render a finished drill's debrief again (summary, victims.csv, timeline.png)."""
    from bot.drill import report

    if not (directory / "drill.json").exists():
        err.print(escape(f"no drill.json in {directory.absolute()}"))
        raise typer.Exit(2)
    data = report.load(directory)
    report.render_files(directory, data)
    report.summary(data, console)
    raise typer.Exit(0 if report.passed(data) else 1)
