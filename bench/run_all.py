"""Run every bench script in sequence and print their tables; a missing script is skipped.

Run: .venv/bin/python bench/run_all.py [names...]   (e.g. `bench_intake bench_runtime`)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "bench_intake",
    "bench_overload",
    "bench_runtime",
    "bench_media",
    "bench_protocols",
    "bench_broadcast",
]


def main(argv: list[str]) -> int:
    names = argv or ORDER + sorted(p.stem for p in HERE.glob("bench_*.py") if p.stem not in ORDER)
    failed: list[str] = []
    for name in names:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"## {name}: skipped (not present)\n", flush=True)
            continue
        print(f"## {name}\n", flush=True)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=HERE.parent,
            check=False,
            capture_output=True,
            text=True,
        )
        tables = [
            ln for ln in done.stdout.splitlines() if ln.startswith(("|", "#")) or not ln.strip()
        ]
        print("\n".join(tables).strip() or done.stdout.strip(), flush=True)
        print(f"\n({time.monotonic() - started:.0f} s, exit {done.returncode})\n", flush=True)
        if done.returncode != 0:
            failed.append(name)
            print(done.stderr[-2000:], flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
