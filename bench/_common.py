"""Shared helpers for the benches: repo on sys.path, percentiles, Markdown tables."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def three_modems(tmp: Path, per_minute: int = 120) -> dict[str, object]:
    return {
        "modems": [
            {
                "name": f"sim{i}",
                "device": str(tmp / f"modem-sim{i}"),
                "poll_interval_s": 0.1,
                "send_per_minute": per_minute,
            }
            for i in (1, 2, 3)
        ]
    }


_ROUTINE = [
    "when does the relief camp at {p} open?",
    "is the road to {p} flooded?",
    "where can we get dry food in {p}",
    "need drinking water for families at {p}",
]
_PLACES = ["Ulipur", "Kurigram", "Chilmari", "Rajibpur", "Roumari"]


def overload_messages(
    n: int, critical_every: int, *, senders: int | None = None, tag: str = ""
) -> list[tuple[str, str, bool]]:
    """(number, text, critical) for an overload burst: one life threat every `critical_every`
    messages among routine questions; `senders` numbers reused round-robin (default: one each);
    each text ends with " ({tag}i)" so the stand-in can tell them apart."""
    out = []
    for i in range(n):
        critical = i % critical_every == critical_every - 1
        place = _PLACES[i % 5]
        text = (
            f"my child is drowning, water over the roof at {place}"
            if critical
            else _ROUTINE[i % 4].format(p=place)
        ) + f" ({tag}{i})"
        out.append((f"+88017{i % (senders or n):08d}", text, critical))
    return out
