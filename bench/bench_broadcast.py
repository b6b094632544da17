"""Broadcast benchmark: enqueue time of a 5,000-recipient advisory, achieved send rate per modem
against the configured rate, and how long a priority reply waits during a broadcast.

Real SQLite (WAL, synchronous=FULL), two libGammu dummy modems, the real OutboxWorker and the
gateway's SMS sender. Usage: .venv/bin/python bench/bench_broadcast.py [--seconds 30] [--rate 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.models import Channel, Lane, Outbound
from bot.store import outbox, subscriptions
from tests.harness.gateway import wait_for
from tests.harness.lanes import COORD, rig


async def enqueue_bench(tmp: Path, n: int) -> tuple[float, float, int]:
    """Returns (total s, longest single intake-blocking transaction ms, rows)."""
    async with rig(tmp / "enqueue", chunk_size=500) as r:
        async with r.db.transaction() as conn:
            for i in range(n):
                await subscriptions.join(conn, Channel.SMS, f"+8801{i:09d}", "*", "en", time.time())
        # Probe: how long does an intake-like transaction wait while the advisory is enqueued?
        waits: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                t = time.perf_counter()
                async with r.db.transaction() as conn:
                    await conn.execute("SELECT 1")
                waits.append(time.perf_counter() - t)
                await asyncio.sleep(0.002)

        task = asyncio.create_task(probe())
        t0 = time.perf_counter()
        reply = await r.broadcasts.command("advise", [], "* Boil drinking water.", COORD)
        elapsed = time.perf_counter() - t0
        done.set()
        await task
        rows = await r.count("SELECT COUNT(*) FROM outbox")
        assert f"queued {n}" in reply, reply
        return elapsed, max(waits) * 1000, rows


async def rate_bench(tmp: Path, seconds: float, per_minute: int) -> dict[str, float]:
    async with rig(tmp / "rate", per_minute=per_minute) as r:
        await r.subscribe(int(per_minute / 60 * seconds * 2 + 50))
        await r.broadcasts.command("advise", [], "ward-5 Rate bench.", COORD)
        r.start_sending()
        # A priority reply every ~seconds/5 during the broadcast.
        waits: list[float] = []
        for k in range(5):
            await asyncio.sleep(seconds / 5)
            who = f"+8801999{k:06d}"
            async with r.db.transaction() as conn:
                await outbox.enqueue(
                    conn,
                    Outbound(Channel.SMS, who, who, "reply", f"bench:{k}", Lane.URGENT),
                    now=time.time(),
                )
            queued = time.time()
            r.waker.wake()

            async def sent(w: str = who) -> bool:
                return any(m["to"] == w for m in r.sent())

            await wait_for(sent, timeout=120, every=0.02)
            times = [m["time"] for m in r.sent() if m["to"] == who]
            waits.append(times[0] - queued)
        got = r.sent()
        with contextlib.suppress(Exception):
            await r.stop_sending()
    out: dict[str, float] = {"reply_wait_median_s": statistics.median(waits)}
    out["reply_wait_max_s"] = max(waits)
    for name in ("sim1", "sim2"):
        ts = sorted(m["time"] for m in got if m["modem"] == name)
        out[f"{name}_sent"] = len(ts)
        out[f"{name}_rate_per_min"] = (len(ts) - 1) / (ts[-1] - ts[0]) * 60 if len(ts) > 1 else 0
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=int, default=60, help="send_per_minute per modem")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        enq_s, worst_ms, rows = await enqueue_bench(tmp, a.recipients)
        rate = await rate_bench(tmp, a.seconds, a.rate)
    print(f"\nbroadcast benchmark ({a.recipients} recipients; 2 dummy modems at {a.rate}/min)\n")
    print(f"| {'measure':<48} | {'value':>12} |")
    print(f"|{'-' * 50}|{'-' * 14}|")
    rows_out = [
        (f"enqueue {rows} advisory rows (500/txn)", f"{enq_s:.2f} s"),
        ("longest wait of a concurrent intake txn", f"{worst_ms:.0f} ms"),
        (f"sim1 achieved rate ({a.rate}/min configured)", f"{rate['sim1_rate_per_min']:.1f}/min"),
        (f"sim2 achieved rate ({a.rate}/min configured)", f"{rate['sim2_rate_per_min']:.1f}/min"),
        (
            f"advisories sent in ~{a.seconds:.0f} s (both)",
            f"{rate['sim1_sent'] + rate['sim2_sent']:.0f}",
        ),
        ("priority reply wait during broadcast (median)", f"{rate['reply_wait_median_s']:.2f} s"),
        ("priority reply wait during broadcast (max)", f"{rate['reply_wait_max_s']:.2f} s"),
    ]
    for k, v in rows_out:
        print(f"| {k:<48} | {v:>12} |")


if __name__ == "__main__":
    asyncio.run(main())
