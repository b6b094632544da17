"""Intake throughput and gateway overhead, in process over the real libGammu dummy modem.

1. Burst: N SMS waiting on the SIM when the gateway starts (1,000 and 2,000): messages/s from
   the modem being up to every row committed, and a zero-loss check (rows == N, SIM empty).
2. Overhead: messages arriving one at a time (below capacity) with an instant model stand-in:
   inbox commit -> reply committed, minus the model's own time (model_turns.seconds).

Run: .venv/bin/python bench/bench_intake.py"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sys.path)
from _common import pct, table

from bot.sim import inbox_files, inject_sms
from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, text_reply


async def burst(n: int) -> tuple[float, float, bool]:
    with tempfile.TemporaryDirectory() as tmp, OllamaStandIn(default=text_reply("ok")) as st:
        settings = make_settings(Path(tmp), st.url, queue={"per_sender_per_hour": 10_000})
        device = Path(settings.sms.modems[0].device)
        for i in range(n):
            inject_sms(device, f"+88017{i:08d}", f"water rising near school {i}, need boat")
        started = time.monotonic()
        async with running_gateway(settings) as gw:

            async def all_in() -> bool:
                return (await gw.rows("SELECT COUNT(*) FROM inbox"))[0][0] >= n

            await wait_for(all_in, timeout=600, every=0.05)
            seconds = time.monotonic() - started
            rows = (await gw.rows("SELECT COUNT(DISTINCT dedup_key) FROM inbox"))[0][0]
            total = (await gw.rows("SELECT COUNT(*) FROM inbox"))[0][0]
            deadline = time.monotonic() + 30  # DeleteSMS runs after the commit
            while inbox_files(device) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            left = len(inbox_files(device))
            ok = rows == n == total and left == 0
            if not ok:
                print(f"LOSS CHECK FAILED: {total} rows, {rows} distinct, {left} SMS left on SIM")
    return seconds, n / seconds, ok


async def overhead(n: int, gap_s: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp, OllamaStandIn(default=text_reply("ok")) as st:
        settings = make_settings(Path(tmp), st.url, queue={"per_sender_per_hour": 10_000})
        async with running_gateway(settings) as gw:
            for i in range(n):
                gw.sms_in(f"+88018{i:08d}", f"when does relief camp {i} open?")
                await asyncio.sleep(gap_s)

            async def done() -> bool:
                q = "SELECT COUNT(*) FROM inbox WHERE status='done'"
                return (await gw.rows(q))[0][0] >= n

            await wait_for(done, timeout=300)
            rows = await gw.rows(
                """SELECT o.created_at - i.created_at, COALESCE(SUM(t.seconds), 0)
                   FROM inbox i JOIN outbox o ON o.idem_key = 'reply:' || i.id
                   LEFT JOIN model_turns t ON t.inbox_id = i.id GROUP BY i.id"""
            )
    return [max(0.0, (r[0] - r[1]) * 1000) for r in rows]


async def main() -> None:
    logging.disable(logging.WARNING)
    results = [(n, *await burst(n)) for n in (1000, 2000)]
    print("### Intake burst (SMS waiting on the dummy SIM at start-up)\n")
    print(
        table(
            ["SMS", "seconds to persist all", "messages/s", "zero loss"],
            [(n, s, r, "yes" if ok else "NO") for n, s, r, ok in results],
        )
    )
    ms = await overhead(100, 0.25)
    print("\n### Gateway overhead per message")
    print("(inbox commit -> reply committed, model time excluded)\n")
    print(
        table(
            ["messages", "p50 ms", "p95 ms", "max ms"],
            [(len(ms), pct(ms, 50), pct(ms, 95), max(ms) if ms else float("nan"))],
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
