"""Revert one field-test fix and watch a drill fail: the short surge drill against a gateway whose
outbox treats a transient failure (homeserver down, modem gone) like any other failure again,
spending one of the row's attempts, so the alerts of the outage are dead-lettered after
``max_attempts`` (the surge drill sets 3 with fast retries).

There is no configuration seam that turns the fix off (and there must not be one in production),
so the fix is patched out in the gateway *subprocess* only: the drill starts it through a small
launcher written into the drill's directory, which wraps ``OutboxWorker._failed`` so every
failure arrives unclassified, then runs the normal CLI. Prints each promise and exits 0 when the
drill caught the reverted fix (some promise broke), 1 when every promise held (the drill would
not have noticed), 2 on a drill error.

Run: .venv/bin/python bench/drill_revert_fix.py [SCENARIO] [--report DIR]   (≈3 minutes)"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from _common import table

from bot.drill import hardware, report
from bot.drill import scenario as sc
from bot.drill.runner import DrillRun, Options

LAUNCHER = "reverted_fix_gateway"
PATCH = '''"""Drill bench only: the gateway with the transient-failure fix reverted."""
import runpy

from bot.queue import OutboxWorker

_fixed = OutboxWorker._failed


async def _failed(self, row, exc):
    # Before the fix a transient failure spent an attempt like any other failure.
    return await _fixed(self, row, RuntimeError(f"{{type(exc).__name__}}: {{exc}}"))


OutboxWorker._failed = _failed
runpy.run_module("{module}", run_name="__main__", alter_sys=True)
'''


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", nargs="?", default="surge-homeserver-outage")
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    out = (args.report or Path(tempfile.mkdtemp(prefix="drill-revert-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scenario = sc.load(sc.resolve(args.scenario))
    module = hardware.gateway_module(scenario)
    (out / f"{LAUNCHER}.py").write_text(PATCH.format(module=module), encoding="utf-8")
    opts = Options(gateway_module=LAUNCHER)  # `-m` finds it: the gateway runs in `out`
    try:
        ev, results = asyncio.run(DrillRun(scenario, out, opts).run())
    except Exception as exc:
        print(f"drill failed to run: {exc!r}")
        return 2
    report.write(out, report.build(ev, results))
    rows = [
        [
            r.promise,
            "held" if r.ok else "BROKEN",
            str(len(r.violations)),
            r.violations[0].evidence[:70] if r.violations else "",
        ]
        for r in results
    ]
    print(table(["promise", "with the fix reverted", "violations", "first evidence"], rows))
    broken = [r.promise for r in results if not r.ok]
    print(f"debrief in {out}")
    if broken:
        print(f"the drill caught the reverted fix: {', '.join(broken)} broke")
        return 0
    print("every promise held: the drill did NOT notice the reverted fix")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
