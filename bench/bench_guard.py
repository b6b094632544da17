"""Reply guard: its cost per reply, and what one poison message costs everyone else.

1. Guard cost: building a victim's reply policy and checking one reply, for good replies and for
   each bad habit (µs, in process).
2. A 60-message SMS burst, model 0.1 s per turn, with and without one poison message (a
   life-threat message, so it is the most urgent row, on which the model never stops and runs
   into `num_predict` every time). Reported: reply p50/p95 of the other messages, and the model
   time spent on the poison message (bounded by attempts × 2 calls × num_predict).

Run: .venv/bin/python bench/bench_guard.py"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sys.path)
from _common import median, pct, table, three_modems

from bot import reply_guard
from handlers.prompts import VICTIM_SYSTEM
from handlers.victim import victim_policy
from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import (
    OllamaStandIn,
    delayed,
    endless_reply,
    gemma_tool_call_text,
    text_reply,
)

# A poison call costs 2.5 normal turns: 320 tokens at ~50 tok/s ≈ 6.4 s + prompt vs ≈ 3 s for a
# normal reply on a GPU (docs: reported speeds), scaled down to a 0.1 s turn.
N, TURN_S, REPLY_TOKENS = 60, 0.1, 320
TOKEN_S = 2.5 * TURN_S / REPLY_TOKENS
ROUNDS = 2
POISON = "my child is drowning near Kalikapur ghat, water over the roof"
PROTOCOLS = (
    "Safety protocols from the local library. Base safety advice on these excerpts and cite "
    "them as [P1], [P2]:\n\n[P1] (Drowning, WHO)\nCall for help. Throw something that floats. "
    "Do not jump in after them. Keep the person warm.\n\n[P2] (Flood, IFRC)\nMove to the "
    "highest safe place. Keep your phone on."
)
SAMPLES = {
    "good en": "Help is coming. 1. Stay on the roof. 2. Wave a cloth to be seen. [P1]",
    "good bn": "আমরা আসছি। ১. ছাদে থাকুন। ২. কাপড় নাড়ুন। [P1]",
    "prompt echo": VICTIM_SYSTEM[:600],
    "tool call as text": gemma_tool_call_text("dispatch_rescue_team", {"location": "roof"}),
    "wrong script": "আমরা আসছি। Lütfen bekleyin, yardım geliyor ve güvende kalın.",
    "ramble": "Stay safe and wait. " * 80,
}


def guard_cost() -> list[tuple[str, float, float, str]]:
    rows = []
    for name, text in SAMPLES.items():
        lang = "bn" if "bn" in name or "script" in name else "en"
        n = 2000
        started = time.perf_counter()
        for _ in range(n):
            policy = victim_policy(lang, PROTOCOLS, 3, "water rising at Ulipur", "LF-1234")
        build_us = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        for _ in range(n):
            verdict = reply_guard.check(text, policy)
        check_us = (time.perf_counter() - started) / n * 1e6
        rows.append((name, build_us, check_us, "sent" if verdict.ok else verdict.reason[:40]))
    return rows


def burst() -> list[tuple[str, str]]:
    places = ["Ulipur", "Kurigram", "Chilmari", "Rajibpur", "Roumari"]
    return [
        (f"+88017{i:08d}", f"when does the relief camp at {places[i % 5]} open? ({i})")
        for i in range(N)
    ]


async def run(poison: bool) -> dict[str, float | list[float]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        OllamaStandIn(default=delayed(TURN_S, text_reply("Camp opens at 10. Stay safe."))) as st,
    ):
        st.add_rule("Kalikapur", endless_reply(token_s=TOKEN_S))
        settings = make_settings(
            Path(tmp),
            st.url,
            sms=three_modems(Path(tmp)),
            queue={"retry_base_s": 1, "retry_max_s": 4},
            model={"host": st.url, "timeout_s": 10, "reply_tokens": REPLY_TOKENS},
        )
        async with running_gateway(settings) as gw:
            if poison:
                gw.sms_in("+8801999999999", POISON)
            for i, (number, text) in enumerate(burst()):
                gw.sms_in(number, text, modem=i % 3)

            async def done() -> bool:
                q = "SELECT COUNT(*) FROM inbox WHERE status IN ('done', 'dead')"
                return (await gw.rows(q))[0][0] >= N + int(poison)

            await wait_for(done, timeout=600, every=0.1)
            await gw.idle(timeout=600)
            rows = await gw.rows(
                """SELECT i.received_at, r.created_at FROM inbox i
                   JOIN outbox r ON r.idem_key = 'reply:' || i.id WHERE i.text NOT LIKE ?""",
                "%Kalikapur%",
            )
        poison_calls = sum(
            1
            for b in st.chat_requests
            if any("Kalikapur" in str(m.get("content")) for m in b["messages"])
        )
    return {
        "other": [r[1] - r[0] for r in rows],
        "poison_calls": float(poison_calls),
        "poison_model_s": poison_calls * REPLY_TOKENS * TOKEN_S,
    }


async def main() -> None:
    logging.disable(logging.WARNING)
    print("### Reply guard cost per reply (in process)\n")
    print(table(["reply", "policy build µs", "check µs", "verdict"], guard_cost()))
    # Alternate the two bursts (the machine is shared): each figure is pooled over ROUNDS runs.
    c: list[float] = []
    p: list[float] = []
    for _ in range(ROUNDS):
        clean, poisoned = await run(False), await run(True)
        assert isinstance(clean["other"], list) and isinstance(poisoned["other"], list)
        c += clean["other"]
        p += poisoned["other"]
    print(f"\n### {N}-message burst, model {TURN_S} s/turn, with one poison message\n")
    print(
        table(
            [
                "burst",
                "other replies p50 s",
                "p95 s",
                "p50 vs clean",
                "poison model calls",
                "poison model s (bound)",
            ],
            [
                ("without poison", median(c), pct(c, 95), 1.0, 0, 0.0),
                (
                    "with poison",
                    median(p),
                    pct(p, 95),
                    median(p) / median(c),
                    int(poisoned["poison_calls"]),  # type: ignore[arg-type]
                    f"{poisoned['poison_model_s']:.2f} (≤ {3 * 2 * REPLY_TOKENS * TOKEN_S:.2f})",
                ),
            ],
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
