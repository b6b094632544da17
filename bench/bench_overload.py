"""Overload: a slow model and a burst of mixed messages. Life-threat replies under priority
order vs `[queue] order = "fifo"`, measured side by side in one run.

Scaled down so it finishes in minutes: 60 messages (4 life-threat, spread through the burst)
and 0.3 s per model turn instead of 300 / 15 / 3 s. The ratio is what matters: under FIFO a
life-threat message waits for everything queued before it; under priority for at most the turn
in flight. Acks come from intake (no model) and leave on the URGENT lane.

Run: .venv/bin/python bench/bench_overload.py"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import _common  # noqa: F401  (sys.path)
from _common import median, overload_messages, pct, table, three_modems

from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, delayed, text_reply

N, CRITICAL_EVERY, TURN_S = 60, 15, 0.3


def messages() -> list[tuple[str, str, bool]]:
    return overload_messages(N, CRITICAL_EVERY)


async def run(order: str) -> dict[str, list[float]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        OllamaStandIn(
            default=delayed(TURN_S, text_reply("Stay safe. 1. Go high. 2. Keep phone on."))
        ) as st,
    ):
        settings = make_settings(
            Path(tmp), st.url, queue={"order": order}, sms=three_modems(Path(tmp))
        )
        async with running_gateway(settings) as gw:
            for i, (number, text, _) in enumerate(messages()):
                gw.sms_in(number, text, modem=i % 3)

            async def done() -> bool:
                q = "SELECT COUNT(*) FROM inbox WHERE status='done'"
                return (await gw.rows(q))[0][0] >= N

            await wait_for(done, timeout=600, every=0.1)
            await gw.idle(timeout=600)
            rows = await gw.rows(
                """SELECT i.priority, i.received_at, r.created_at, a.created_at, a.sent_at
                   FROM inbox i JOIN outbox r ON r.idem_key = 'reply:' || i.id
                   LEFT JOIN outbox a ON a.idem_key = 'ack:' || i.id"""
            )
    crit = [r[2] - r[1] for r in rows if r[0] == 0]
    other = [r[2] - r[1] for r in rows if r[0] != 0]
    ack_commit = [r[3] - r[1] for r in rows if r[3] is not None]
    ack_sent = [r[4] - r[1] for r in rows if r[4] is not None]
    return {"crit": crit, "other": other, "ack_commit": ack_commit, "ack_sent": ack_sent}


async def main() -> None:
    logging.disable(logging.WARNING)
    res = {order: await run(order) for order in ("priority", "fifo")}
    p, f = res["priority"], res["fifo"]
    print(
        f"### Overload: {N} SMS burst, {N // CRITICAL_EVERY} life-threat, model {TURN_S} s/turn\n"
    )
    rows = []
    for name, key in (("life-threat reply", "crit"), ("other replies", "other")):
        rows.append(
            (
                name,
                median(p[key]),
                pct(p[key], 95),
                median(f[key]),
                pct(f[key], 95),
                median(f[key]) / median(p[key]),
            )
        )
    for name, key in (("ack committed", "ack_commit"), ("ack sent (SMS)", "ack_sent")):
        rows.append((name, median(p[key]), pct(p[key], 95), median(f[key]), pct(f[key], 95), ""))
    print(
        table(
            [
                "seconds from receipt",
                "priority p50",
                "priority p95",
                "fifo p50",
                "fifo p95",
                "fifo/priority (p50)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
