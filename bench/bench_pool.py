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

Breakdown: for the life-threat messages of the 1 × 4 runs, the seconds between injected into the
dummy modem, read, inbox row committed, claimed by a model slot (bot/intake.py and
bot/model_worker.py log lines), first model chat and turn end (the stand-in, model_turns), reply
queued and sent (outbox).

Run: .venv/bin/python bench/bench_pool.py  (--quick: only 1 × 4 and its FIFO twin)"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    # Per life-threat message: seconds spent in each stage (STAGES), for the breakdown table.
    stages: list[dict[str, float]] = field(default_factory=list)
    # Other messages' turns that started while a committed life threat was not yet claimed.
    overtaken: int = 0


# A life-threat message's way, each stage ending at the named moment.
STAGES = [
    ("injected → read from the modem", "read"),
    ("read → inbox row committed", "committed"),
    ("committed → claimed by a slot", "claimed"),
    ("claimed → first model chat", "turn_start"),
    ("model turn (all chats)", "turn_end"),
    ("turn end → reply queued", "replied"),
    ("reply queued → sent by the modem", "sent"),
]


class Stamps(logging.Handler):
    """When intake committed each inbox row and when a model slot claimed it (from the log
    lines bot/intake.py and bot/model_worker.py write, so the product is measured unchanged)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.at: dict[int, dict[str, float]] = defaultdict(dict)
        self.claims: list[tuple[float, int]] = []  # (when, priority) of every claim
        self._loggers = [logging.getLogger(n) for n in ("bot.intake", "bot.model_worker")]

    def emit(self, record: logging.LogRecord) -> None:
        msg = str(record.msg)
        if record.name == "bot.intake" and msg.startswith("inbox #") and record.args:
            self.at[int(record.args[0])]["committed"] = record.created  # type: ignore[index]
        elif record.name == "bot.model_worker" and " claimed " in msg and record.args:
            self.at[int(record.args[0])].setdefault("claimed", record.created)  # type: ignore[index]
            self.claims.append((record.created, int(record.args[1])))  # type: ignore[index]

    def __enter__(self) -> Stamps:
        for lg in self._loggers:
            lg.addHandler(self)
            lg.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        for lg in self._loggers:
            lg.removeHandler(self)
            lg.setLevel(logging.NOTSET)


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
    injected: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(count, slots) as hosts,
        Stamps() as stamps,
    ):
        settings = settings_for(Path(tmp), hosts, slots, order)
        async with running_gateway(settings) as gw:

            async def up() -> bool:
                return all(h.state == "up" for h in gw.runtime.llm.statuses())

            await wait_for(up, timeout=60)
            for i, (number, text, _) in enumerate(messages()):
                gw.sms_in(number, text, modem=i % 3)
                injected[text] = time.time()
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
                          r.created_at AS replied, r.sent_at AS sent,
                          (SELECT MAX(t.at) FROM model_turns t
                           WHERE t.inbox_id = i.id AND t.ok) AS turn_end
                   FROM inbox i
                   JOIN outbox r ON r.idem_key = 'reply:' || i.id WHERE i.needs_model"""
            )

            async def all_sent() -> bool:
                q = "SELECT COUNT(*) FROM outbox WHERE idem_key LIKE 'reply:%' AND sent_at > 0"
                return (await gw.rows(q))[0][0] >= N

            await wait_for(all_sent, timeout=900, every=0.2)
            sent = {
                r[0]: r[1]
                for r in await gw.rows(
                    "SELECT idem_key, sent_at FROM outbox WHERE idem_key LIKE 'reply:%'"
                )
            }
    start = min(r["received_at"] for r in rows)
    span = max(r["replied"] for r in rows) - start
    crit = [r["replied"] - r["received_at"] for r in rows if r["priority"] == 0]
    other = [r["replied"] - r["received_at"] for r in rows if r["priority"] != 0]
    failover = [
        r["replied"] - killed_at
        for r in rows
        if killed_at is not None and any(r["text"] in u for u in in_flight)
    ]
    chats = [(r.time, _user(r)) for h in hosts for r in h.requests_to("chat")]
    stages, overtaken = [], 0
    for r in rows:
        if r["priority"] != 0:
            continue
        mine = sorted(t for t, u in chats if r["text"] in u)
        at = {
            "injected": injected[r["text"]],
            "read": r["received_at"],
            "committed": stamps.at[r["id"]].get("committed", float("nan")),
            "claimed": stamps.at[r["id"]].get("claimed", float("nan")),
            "turn_start": mine[0] if mine else float("nan"),
            "turn_end": r["turn_end"],
            "replied": r["replied"],
            "sent": sent.get(f"reply:{r['id']}") or float("nan"),
        }
        marks = ["injected"] + [end for _, end in STAGES]
        row = {end: at[end] - at[start] for start, end in itertools.pairwise(marks)}
        row["chats"] = len(mine)
        # Eligible once committed and the sender's earlier message is answered (in order).
        eligible = max(
            [at["committed"]]
            + [e["done_at"] for e in rows if e["peer"] == r["peer"] and e["id"] < r["id"]]
        )
        overtaken += sum(eligible < t < at["claimed"] for t, p in stamps.claims if p != 0)
        row["total"] = at["replied"] - at["injected"]
        stages.append(row)
    return Result(
        len(rows) / span * 60,
        median(crit),
        median(other),
        violations(hosts, rows),
        failover,
        stages,
        overtaken,
    )


def breakdown(name: str, r: Result) -> str:
    """Where a life threat's seconds go (p50 and max over the life-threat messages)."""

    def col(key: str) -> list[float]:
        return [s[key] for s in r.stages]

    rows = [(label, median(col(end)), max(col(end))) for label, end in STAGES]
    rows.append(("injected → reply queued (total)", median(col("total")), max(col("total"))))
    chats = col("chats")
    return (
        f"Life-threat messages, {name}: where the seconds go ({len(r.stages)} messages; "
        f"model chats per message: {min(chats):.0f}–{max(chats):.0f}; other messages' turns "
        f"that started while a committed life threat waited: {r.overtaken})\n\n"
        + table(["stage", "p50 (s)", "max (s)"], rows)
    )


async def main() -> None:
    # Quiet (warnings included: the failover run kills a server on purpose); Stamps still
    # sees the two loggers it listens to.
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger().setLevel(logging.CRITICAL)
    quick = "--quick" in sys.argv  # only 1 × 4 and its FIFO twin (while looking for time)
    runs = {} if quick else {"1 × 1 (today)": await run(1, 1)}
    runs["1 × 4"] = await run(1, 4)
    if not quick:
        runs["2 × 4"] = await run(2, 4)
    runs["1 × 4, FIFO"] = await run(1, 4, "fifo")
    base, fifo = runs.get("1 × 1 (today)", runs["1 × 4"]), runs["1 × 4, FIFO"]
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
    print("\n" + breakdown("1 × 4, priority", runs["1 × 4"]))
    print("\n" + breakdown("1 × 4, FIFO", fifo))
    if quick:
        return
    dying = await run(2, 4, kill=True)
    print(
        f"\nFailover (2 × 4, gpu1 killed with 4 turns in flight): those {len(dying.failover)} "
        f"answered {median(dying.failover):.2f} s (p50), {max(dying.failover, default=0):.2f} s "
        f"(max) after the kill; all {N} answered, {dying.violations} order violations, "
        f"{dying.per_min:.0f} answers/min overall."
    )


if __name__ == "__main__":
    asyncio.run(main())
