"""The full drill as a benchmark: embankment-breach-night (330 senders, five scripts, four
faults; 38 of the senders on Matrix with voice notes and photos) against a real gateway; prints
the README figures (``waited for hs``: Matrix victims whose client had to retry while the
homeserver was down). About one hour of wall time, so it
is not part of run_all.py.

Run: .venv/bin/python bench/drill_night.py [SCENARIO] [--speed N]"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from _common import pct, table

from bot.drill import report
from bot.drill import scenario as sc
from bot.drill.runner import DrillRun, Options


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", nargs="?", default="embankment-breach-night")
    parser.add_argument("--speed", type=float, default=None)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    out = args.report or Path(tempfile.mkdtemp(prefix="drill-bench-"))
    scenario = sc.load(sc.resolve(args.scenario))
    ev, results = asyncio.run(DrillRun(scenario, out, Options(speed=args.speed)).run())
    data = report.build(ev, results)
    report.write(out, data)
    victims = data["victims"]
    minutes = (data["ended"] - data["started"]) / 60
    acks = [v["ack_s"] for v in victims if v["ack_s"] is not None]
    alerts = [v["alert_s"] for v in victims if v["life_threat"] and v["alert_s"] is not None]
    violations = sum(len(p["violations"]) for p in data["promises"])
    # Matrix victims: the ack is the bot's message their own client saw in the DM
    dm_acks = [v["ack_s"] for v in victims if v["channel"] == "matrix" and v["ack_s"] is not None]
    waited = [v["waited_s"] for v in victims if v["channel"] == "matrix" and v["waited_s"] > 1]
    print(
        table(
            [
                "scenario",
                "senders",
                "senders/min",
                "ack p50 s",
                "ack p95 s",
                "ack max s",
                "critical→room p50 s",
                "critical→room max s",
                "Matrix victims",
                "voice/photo",
                "DM ack p50 s",
                "DM ack max s",
                "waited for hs",
                "violations",
            ],
            [
                [
                    data["scenario"],
                    len(victims),
                    len(victims) / minutes,
                    pct(acks, 50),
                    pct(acks, 95),
                    max(acks, default=float("nan")),
                    pct(alerts, 50),
                    max(alerts, default=float("nan")),
                    sum(1 for v in victims if v["channel"] == "matrix"),
                    f"{data['media_in']['voice']}/{data['media_in']['photo']}",
                    pct(dm_acks, 50),
                    max(dm_acks, default=float("nan")),
                    len(waited),
                    violations,
                ]
            ],
        )
    )
    for p in data["promises"]:
        if not p["ok"]:
            print(
                f"- {p['title']}: {len(p['violations'])} violation(s), first: "
                f"{p['violations'][0]['evidence']}"
            )
    print(f"\ndebrief: {out}")
    return 0 if violations == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
