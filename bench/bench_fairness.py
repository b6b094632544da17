"""Flooder + new victims: one number sends 50 life-threat texts (50 urgent replies queue up on
the SIM), then new victims write one by one while the flood drains. A new victim's ack delay
(queued → on the air) and the sends that left ahead of it, with the flooder vs without, in one run.

Scaled: one SIM at 60 SMS/min (one send slot = 1 s) and a model that answers in 0.05 s, so the
flood's replies queue at the SIM. Target (issue 10): a new victim's ack leaves within one send
slot, whatever else is queued.

Run: .venv/bin/python bench/bench_fairness.py"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import _common  # noqa: F401  (sys.path)
from _common import median, table

from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, delayed, text_reply

FLOOD, VICTIMS, PER_MINUTE = 50, 6, 60
FLOODER = "+8801999000111"


def victim(i: int) -> str:
    return f"+88017{i:08d}"


async def run(with_flooder: bool) -> tuple[list[float], list[int]]:
    """Per victim: ack delay (s) and how many other sends left between queueing and its ack."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        OllamaStandIn(default=delayed(0.05, text_reply("Noted. 1. Go high. 2. Phone on."))) as st,
    ):
        modem = {
            "name": "sim1",
            "device": str(Path(tmp) / "modem-sim1"),
            "poll_interval_s": 0.1,
            "send_per_minute": PER_MINUTE,
        }
        settings = make_settings(Path(tmp), st.url, sms={"modems": [modem]})
        async with running_gateway(settings) as gw:
            if with_flooder:
                for i in range(FLOOD):
                    gw.sms_in(FLOODER, f"Water rising, we are trapped on the roof, help #{i}")

                async def flood_queued() -> bool:
                    q = "SELECT COUNT(*) FROM outbox WHERE peer=? AND status='queued'"
                    return (await gw.rows(q, FLOODER))[0][0] >= FLOOD // 2

                await wait_for(flood_queued, timeout=300, every=0.1)
            for i in range(VICTIMS):
                gw.sms_in(victim(i), f"Boat capsized near the bridge, 3 people drowning ({i})")
                await gw.wait_sent(victim(i), 1, timeout=600)
                await asyncio.sleep(0.5)
            acks = await gw.rows(
                "SELECT peer, created_at, sent_at FROM outbox WHERE idem_key LIKE 'ack:%' "
                "AND peer<>? ORDER BY id",
                FLOODER,
            )
            sends = gw.sent()
    delays = [sent - queued for _, queued, sent in acks]
    ahead = []
    for peer, queued, _ in acks:
        after = [m["to"] for m in sends if m["time"] >= queued]
        ahead.append(after.index(peer) if peer in after else -1)
    return delays, ahead


async def main() -> None:
    logging.disable(logging.WARNING)
    res = {flood: await run(flood) for flood in (True, False)}
    print(
        f"### Flooder + new victim: {FLOOD} life-threat texts from one number, then "
        f"{VICTIMS} new victims; one SIM at {PER_MINUTE} SMS/min (send slot "
        f"{60 / PER_MINUTE:.1f} s)\n"
    )
    rows = []
    for flood, (delays, ahead) in res.items():
        rows.append(
            (
                "with flooder" if flood else "without flooder",
                median(delays),
                max(delays),
                max(ahead),
            )
        )
    print(
        table(
            ["new victim's ack", "delay p50 (s)", "delay max (s)", "max sends ahead of it"],
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
