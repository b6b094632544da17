"""The model pool under overload: answers per minute and life-threat reply times for 1 server ×
1 slot (today's single worker), 1 × 4 and 2 × 4, side by side in one run; the same burst in FIFO
order on 1 × 4; per-conversation order violations; failover when a server dies mid-burst.

ASSUMPTION, not a measurement: the stand-in's parallel-slot latency model
(tests/harness/ollama_standin.py). A turn alone takes TURN_S; with k turns running on the same
server each progresses at 1 / (TURN_S · (1 + 0.25 · (k − 1))), so 4 slots give 4 / 1.75 = 2.3 ×
the turns per second of one slot. Real gains depend on the GPU (Ollama's OLLAMA_NUM_PARALLEL
shares one model's compute; measure yours before trusting the slot count).

Scaled down so it finishes in minutes: N messages (every 10th a life threat, 20 senders write
twice), TURN_S instead of the seconds a real Gemma turn takes. Ratios are what matter.

Run: .venv/bin/python bench/bench_pool.py"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
from _common import median, overload_messages, table, three_modems

from config.settings import Settings
from tests.harness.gateway import base_config, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, RecordedRequest, text_reply

N, CRITICAL_EVERY, TURN_S, SENDERS = 100, 10, 1.0, 80
REPLY = "Stay safe. 1. Go to the highest floor. 2. Keep your phone on."


def messages() -> list[tuple[str, str, bool]]:
    return overload_messages(N, CRITICAL_EVERY, senders=SENDERS, tag="msg ")


@dataclass
class Result:
    per_min: float
    crit_p50: float
    other_p50: float
    violations: int
    failover: list[float]


@contextlib.contextmanager
def servers(count: int, slots: int) -> Iterator[list[OllamaStandIn]]:
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                OllamaStandIn(default=text_reply(REPLY), turn_s=TURN_S, num_parallel=slots)
            )
            for _ in range(count)
        ]


def settings_for(tmp: Path, hosts: list[OllamaStandIn], slots: int, order: str) -> Settings:
    data = base_config(tmp, hosts[0].url)
    data["model"] = {k: v for k, v in data["model"].items() if k != "host"}
    data["model"]["hosts"] = [
        {"name": f"gpu{i + 1}", "url": h.url, "slots": slots} for i, h in enumerate(hosts)
    ]
    data["sms"] = three_modems(tmp)
    data["queue"] = {**data["queue"], "order": order}
    return Settings.model_validate(data)


def _user(req: RecordedRequest) -> str:
    users = [m for m in req.body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]["content"]) if users else ""


def violations(hosts: list[OllamaStandIn], rows: list[Any]) -> int:
    """Turns that started before the same sender's earlier message was answered."""
    first: dict[str, float] = {}
    for h in hosts:
        for r in h.requests_to("chat"):
            for _, text, _ in messages():
                if text in _user(r):
                    first[text] = min(first.get(text, r.time), r.time)
    done = {r["text"]: (r["peer"], r["id"], r["done_at"]) for r in rows}
    bad = 0
    for text, (peer, row_id, _) in done.items():
        earlier = [d for t, d in done.items() if d[0] == peer and d[1] < row_id]
        if any(text in first and first[text] < d[2] for d in earlier):
            bad += 1
    return bad


async def run(count: int, slots: int, order: str = "priority", kill: bool = False) -> Result:
    with tempfile.TemporaryDirectory() as tmp, servers(count, slots) as hosts:
        settings = settings_for(Path(tmp), hosts, slots, order)
        async with running_gateway(settings) as gw:

            async def up() -> bool:
                return all(h.state == "up" for h in gw.runtime.llm.statuses())

            await wait_for(up, timeout=60)
            for i, (number, text, _) in enumerate(messages()):
                gw.sms_in(number, text, modem=i % 3)
            killed_at, in_flight = None, []
            if kill:

                async def busy() -> bool:
                    return hosts[0].running == slots

                await wait_for(busy, timeout=120, every=0.01)
                chats = hosts[0].requests_to("chat")
                in_flight = [_user(r) for r in chats[-slots:]]
                killed_at = time.time()
                hosts[0].stop()

            async def done() -> bool:
                q = "SELECT COUNT(*) FROM inbox WHERE status='done' AND needs_model"
                return (await gw.rows(q))[0][0] >= N

            await wait_for(done, timeout=900, every=0.1)
            rows = await gw.rows(
                """SELECT i.id, i.peer, i.text, i.priority, i.received_at, i.done_at,
                          r.created_at AS replied FROM inbox i
                   JOIN outbox r ON r.idem_key = 'reply:' || i.id WHERE i.needs_model"""
            )
    start = min(r["received_at"] for r in rows)
    span = max(r["replied"] for r in rows) - start
    crit = [r["replied"] - r["received_at"] for r in rows if r["priority"] == 0]
    other = [r["replied"] - r["received_at"] for r in rows if r["priority"] != 0]
    failover = [
        r["replied"] - killed_at
        for r in rows
        if killed_at is not None and any(r["text"] in u for u in in_flight)
    ]
    return Result(
        len(rows) / span * 60, median(crit), median(other), violations(hosts, rows), failover
    )


async def main() -> None:
    logging.disable(logging.WARNING)
    runs = {
        "1 × 1 (today)": await run(1, 1),
        "1 × 4": await run(1, 4),
        "2 × 4": await run(2, 4),
        "1 × 4, FIFO": await run(1, 4, "fifo"),
    }
    dying = await run(2, 4, kill=True)
    base, fifo = runs["1 × 1 (today)"], runs["1 × 4, FIFO"]
    print(
        f"### Model pool: {N} SMS burst, {N // CRITICAL_EVERY} life-threat, "
        f"{TURN_S} s per turn alone, latency model t·(1 + 0.25·(k − 1)) (assumed)\n"
    )
    print(
        table(
            [
                "servers × slots",
                "answers/min",
                "× today",
                "life-threat reply p50 (s)",
                "other replies p50 (s)",
                "FIFO life-threat p50 / this",
                "order violations",
            ],
            [
                (
                    name,
                    r.per_min,
                    r.per_min / base.per_min,
                    r.crit_p50,
                    r.other_p50,
                    fifo.crit_p50 / r.crit_p50,
                    r.violations,
                )
                for name, r in runs.items()
            ],
        )
    )
    print(
        f"\nFailover (2 × 4, gpu1 killed with 4 turns in flight): those {len(dying.failover)} "
        f"answered {median(dying.failover):.2f} s (p50), {max(dying.failover, default=0):.2f} s "
        f"(max) after the kill; all {N} answered, {dying.violations} order violations, "
        f"{dying.per_min:.0f} answers/min overall."
    )


if __name__ == "__main__":
    asyncio.run(main())
