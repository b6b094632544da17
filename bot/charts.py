"""Sitrep chart: incidents over time by priority, and team use. Matplotlib Agg, PNG.

Rendering is blocking (≈0.1–0.3 s): call :func:`render_sitrep_chart` through ``asyncio.to_thread``.
It uses the object-oriented API (``Figure`` + Agg canvas), never pyplot, so there is no global
figure state and it is safe off the main thread."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PRIORITY_COLOURS = {
    "critical": "#c0392b",
    "high": "#e67e22",
    "medium": "#f1c40f",
    "low": "#7f8c8d",
}
KEEP_CHARTS = 200


@dataclass(frozen=True, slots=True)
class ChartData:
    """Hourly buckets (start times, unix seconds) and what happened in each."""

    title: str
    bucket_starts: list[float]
    new_by_priority: dict[str, list[int]]  # priority label -> new incidents per bucket
    open_count: list[int]  # open incidents at the end of each bucket
    teams_busy: list[int]  # teams with an active dispatch during each bucket
    teams_total: int
    tz_label: str = "local"
    notes: list[str] = field(default_factory=list)


def render_sitrep_chart(data: ChartData, path: Path) -> Path:
    """Write the PNG atomically to ``path`` (temp file, then rename) and return ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    xs = [datetime.fromtimestamp(t) for t in data.bucket_starts]
    width = 0.9 / 24  # days: a bar a little narrower than one hour
    base = [0] * len(xs)
    for label, colour in PRIORITY_COLOURS.items():
        counts = data.new_by_priority.get(label, [0] * len(xs))
        top.bar(xs, counts, width=width, bottom=base, color=colour, label=label, align="edge")
        base = [b + c for b, c in zip(base, counts, strict=True)]
    # Step lines need the end of the last bucket too, or the last hour has no width.
    edge = [*xs, datetime.fromtimestamp(data.bucket_starts[-1] + 3600)] if xs else xs
    ax2 = top.twinx()
    ax2.step(
        edge,
        [*data.open_count, *data.open_count[-1:]],
        where="post",
        color="#2c3e50",
        linewidth=1.5,
        label="open",
    )
    ax2.set_ylabel("open cases")
    ax2.set_ylim(bottom=0)
    top.set_ylabel("new cases / hour")
    top.set_title(data.title)
    handles, labels = top.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    top.legend(handles + h2, labels + l2, loc="upper left", fontsize=8, ncol=5)

    bottom.step(
        edge,
        [*data.teams_busy, *data.teams_busy[-1:]],
        where="post",
        color="#2980b9",
        label="teams busy",
    )
    bottom.axhline(data.teams_total, color="#95a5a6", linestyle="--", label="teams total")
    bottom.set_ylim(0, max(data.teams_total, max(data.teams_busy, default=0)) + 1)
    bottom.set_ylabel("teams")
    bottom.set_xlabel(f"time ({data.tz_label})")
    bottom.legend(loc="upper left", fontsize=8)
    for note_i, note in enumerate(data.notes[:3]):
        fig.text(0.01, 0.01 + 0.025 * note_i, note, fontsize=7, color="#555555")
    fig.autofmt_xdate()
    fig.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _prune(path.parent, keep=KEEP_CHARTS)
    return path


def _prune(directory: Path, *, keep: int) -> None:
    """Old charts go; the newest ``keep`` stay (queued image rows refer to recent ones only)."""
    charts = sorted(directory.glob("sitrep-*.png"), key=lambda p: p.stat().st_mtime)
    for old in charts[:-keep]:
        old.unlink(missing_ok=True)
