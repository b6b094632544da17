"""Matrix round trip and Matrix intake burst, against a LocalSynapse started in a temp dir.

1. Round trip, message -> bot reply visible in the sender's own sync stream (a coordinator
   client with a 30 s long-poll sync loop, like Element), sequential, interleaved in one run:
   - Lifeline `!status`           (fast path: sync -> intake commit -> fast worker -> outbox)
   - Lifeline "lifeline, ..."     (model path, instant Ollama stand-in)
   - a bare matrix-nio echo bot   (sync loop replying m.notice inline): the baseline
   The first 3 round trips of each kind are discarded (warm-up). Ratios are Lifeline / echo.
2. Intake burst: B messages of staff chatter (responders, not mentioning the bot: recorded,
   not answered) from several users into several rooms
   - while the gateway is stopped, then the gateway is started (catch-up through a limited
     sync timeline + back-pagination), and
   - while the gateway runs (bounded by how fast Synapse accepts the sends);
   time until every event is an inbox row (channel='matrix'), messages/s, zero-loss check
   (every sent event id present exactly once, no other rows).

Run: .venv/bin/python bench/bench_matrix.py [--n 30] [--burst 500] [--users 5] [--rooms 2]"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
from _common import median, pct, table
from _matrix_common import (
    SYNC_TIMEOUT_MS,
    EchoBot,
    Sender,
    create_room,
    join,
    local_synapse,
    make_client,
    matrix_section,
    register,
    send_text,
)

from bot.channels import MATRIX_CURSOR
from bot.store import kv
from bot.synapse_local import Account, LocalSynapse
from config.settings import Settings
from tests.harness.gateway import Gateway, make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, text_reply

WARMUP = 3
MODEL_TEXT = "Noted. No open cases need you right now."


def lifeline_settings(
    tmp: Path,
    model_url: str,
    hs: LocalSynapse,
    bot: Account,
    room_id: str,
    coordinators: list[str],
    responders: list[str],
) -> Settings:
    tmp.mkdir(parents=True, exist_ok=True)
    return make_settings(
        tmp,
        model_url,
        matrix={
            **matrix_section(hs, bot, room_id, coordinators, tmp),
            "responders": responders,
            "sync_timeout_s": SYNC_TIMEOUT_MS / 1000,
        },
        broadcasts={"sitrep_every_min": 0},
        queue={"per_sender_per_hour": 1_000_000},
    )


async def joined(gw: Gateway, room_ids: list[str]) -> None:
    async def check() -> bool:
        t = gw.runtime.matrix
        if t is None or t.health.state != "online":
            return False
        resp = await t._require_client().joined_rooms()
        return all(r in getattr(resp, "rooms", []) for r in room_ids)

    await wait_for(check, 60, every=0.2)


async def matrix_rows(gw: Gateway) -> int:
    rows = await gw.rows("SELECT COUNT(*) FROM inbox WHERE channel='matrix'")
    return int(rows[0][0])


# ---------------------------------------------------------------- 1. round trip


async def round_trips(
    hs: LocalSynapse, tmp: Path, st: OllamaStandIn, n: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], list[str]]:
    bot, coord, resp, echo = (register(hs, p) for p in ("lifeline", "coord", "resp", "echo"))
    coord_c, resp_c, echo_c = make_client(hs, coord), make_client(hs, resp), make_client(hs, echo)
    problems: list[str] = []
    sender = Sender(coord_c)
    echo_bot = EchoBot(echo_c, on_error=problems.append)
    try:
        coord_room = await create_room(coord_c, "coordination", [bot.user_id, resp.user_id])
        await join(resp_c, coord_room)  # 3 members: a group room, as in a deployment
        echo_room = await create_room(coord_c, "echo", [echo.user_id])
        await join(echo_c, echo_room)
        settings = lifeline_settings(
            tmp / "rt", st.url, hs, bot, coord_room, [coord.user_id], [resp.user_id]
        )
        async with running_gateway(settings) as gw:
            await joined(gw, [coord_room])
            await echo_bot.start()
            await sender.start()
            kinds: dict[str, tuple[str, str, Any]] = {
                "command": (coord_room, bot.user_id, lambda i: "!status"),
                "model": (coord_room, bot.user_id, lambda i: f"lifeline, any news on sector {i}?"),
                "echo": (echo_room, echo.user_id, lambda i: f"ping {i}"),
            }
            results: dict[str, list[float]] = {k: [] for k in kinds}
            measured_events: dict[str, list[str]] = {"command": [], "model": []}
            names = list(kinds)
            for i in range(n + WARMUP):
                order = names[i % 3 :] + names[: i % 3]  # rotate who goes first
                for kind in order:
                    room, bot_user, text = kinds[kind]
                    ms, event_id, reply = await sender.round_trip(room, text(i), bot_user)
                    body = str(getattr(reply, "body", ""))
                    if kind == "echo":
                        rel = reply.source.get("content", {}).get("m.relates_to", {})
                        ok = rel.get("m.in_reply_to", {}).get("event_id") == event_id
                    elif kind == "command":
                        ok = body.startswith("inbox:")
                    else:
                        ok = MODEL_TEXT in body
                    if not ok:
                        problems.append(f"{kind} #{i}: unexpected reply {body[:80]!r}")
                    if i >= WARMUP:
                        results[kind].append(ms)
                        if kind in measured_events:
                            measured_events[kind].append(event_id)
            stages = await lifeline_stages(gw, measured_events)
    finally:
        await sender.stop()
        await echo_bot.stop()
        await resp_c.close()
    return results, stages, problems


async def lifeline_stages(gw: Gateway, events: dict[str, list[str]]) -> dict[str, list[float]]:
    """Per-message stages from the gateway's own rows (wall clock, ms)."""
    out: dict[str, list[float]] = {}
    for kind, ids in events.items():
        marks = ",".join("?" * len(ids))
        rows = await gw.rows(
            f"""SELECT i.received_at, i.created_at, o.created_at, o.sent_at
                FROM inbox i JOIN outbox o ON o.inbox_id = i.id
                WHERE i.channel='matrix' AND i.dedup_key IN ({marks})""",
            *ids,
        )
        out[f"{kind}: origin ts -> inbox commit"] = [(r[1] - r[0]) * 1000 for r in rows]
        out[f"{kind}: inbox commit -> reply committed"] = [(r[2] - r[1]) * 1000 for r in rows]
        out[f"{kind}: reply committed -> send returned"] = [
            (r[3] - r[2]) * 1000 for r in rows if r[3] is not None
        ]
    return out


# ---------------------------------------------------------------- 2. intake burst


async def send_burst(
    clients: list[Any], rooms: list[str], total: int, tag: str
) -> tuple[list[str], float]:
    """`total` messages split over the users, each user sending back to back, users in parallel."""
    per_user = [
        total // len(clients) + (1 if u < total % len(clients) else 0) for u in range(len(clients))
    ]

    async def user(u: int) -> list[str]:
        ids = []
        for j in range(per_user[u]):
            room = rooms[(u + j) % len(rooms)]
            body = f"{tag} chatter {u}-{j}: road by the ghat still under water, moving on"
            ids.append(await send_text(clients[u], room, body))
        return ids

    t0 = time.monotonic()
    sent = await asyncio.gather(*(user(u) for u in range(len(clients))))
    return [e for ids in sent for e in ids], time.monotonic() - t0


async def loss_check(gw: Gateway, sent: list[str], expected_total: int) -> tuple[bool, str]:
    rows = await gw.rows("SELECT dedup_key, COUNT(*) FROM inbox WHERE channel='matrix' GROUP BY 1")
    counts = {r[0]: r[1] for r in rows}
    missing = [e for e in sent if e not in counts]
    dup = [e for e, c in counts.items() if c != 1]
    total = sum(counts.values())
    ok = not missing and not dup and len(set(sent)) == len(sent) and total == expected_total
    detail = f"{len(missing)} missing, {len(dup)} duplicated, {total} rows (want {expected_total})"
    return ok, detail


async def bursts(
    hs: LocalSynapse, tmp: Path, st: OllamaStandIn, total: int, n_users: int, n_rooms: int
) -> tuple[list[tuple[Any, ...]], list[str]]:
    bot, coord = register(hs, "lifeline"), register(hs, "coord")
    users = [register(hs, "resp") for _ in range(n_users)]
    coord_c = make_client(hs, coord)
    clients = [make_client(hs, u) for u in users]
    problems: list[str] = []
    results: list[tuple[Any, ...]] = []
    try:
        rooms = [
            await create_room(coord_c, f"sector {k}", [bot.user_id, *(u.user_id for u in users)])
            for k in range(n_rooms)
        ]
        for c in clients:
            for r in rooms:
                await join(c, r)
        settings = lifeline_settings(
            tmp / "burst", st.url, hs, bot, rooms[0], [coord.user_id], [u.user_id for u in users]
        )
        # First run: join the rooms, sync past the joins, record one message per room, stop.
        async with running_gateway(settings) as gw:
            await joined(gw, rooms)
            for r in rooms:
                await send_text(clients[0], r, "morning, all teams checked in")

            async def baseline_in() -> bool:
                return await matrix_rows(gw) >= n_rooms

            await wait_for(baseline_in, 60)
            baseline = await matrix_rows(gw)
            token = await kv.get(gw.db, MATRIX_CURSOR)
            if not token:
                problems.append("no sync token stored before the stop")

        # 2a. Burst while the gateway is stopped, then start it.
        sent_a, send_s = await send_burst(clients, rooms, total, "offline")
        t0 = time.monotonic()
        async with running_gateway(settings) as gw:
            t_ready = time.monotonic()

            async def all_a() -> bool:
                return await matrix_rows(gw) >= baseline + total

            await wait_for(all_a, 600, every=0.05)
            t_end = time.monotonic()
            ok, detail = await loss_check(gw, sent_a, baseline + total)
            if not ok:
                problems.append(f"stopped-burst loss check: {detail}")
            results.append(
                (
                    "sent while stopped, then start",
                    total,
                    send_s,
                    t_end - t0,
                    t_end - t_ready,
                    total / (t_end - t0),
                    "yes" if ok else "NO",
                )
            )

            # 2b. Burst while the gateway runs.
            t0 = time.monotonic()
            sent_b, send_s = await send_burst(clients, rooms, total, "online")

            async def all_b() -> bool:
                return await matrix_rows(gw) >= baseline + 2 * total

            await wait_for(all_b, 600, every=0.05)
            t_end = time.monotonic()
            ok, detail = await loss_check(gw, sent_a + sent_b, baseline + 2 * total)
            if not ok:
                problems.append(f"running-burst loss check: {detail}")
            replies = await gw.rows("SELECT COUNT(*) FROM outbox")
            if replies[0][0]:
                problems.append(f"{replies[0][0]} outbox rows: chatter was answered")
            results.append(
                (
                    "sent while running",
                    total,
                    send_s,
                    t_end - t0,
                    t_end - (t0 + send_s),
                    total / (t_end - t0),
                    "yes" if ok else "NO",
                )
            )
    finally:
        await coord_c.close()
        for c in clients:
            await c.close()
    return results, problems


# ---------------------------------------------------------------- main


async def measure(
    args: argparse.Namespace, hs: LocalSynapse, tmp: Path
) -> tuple[dict[str, list[float]], dict[str, list[float]], list[tuple[Any, ...]], list[str]]:
    with OllamaStandIn(default=text_reply(MODEL_TEXT)) as st:
        rt, stages, p1 = await round_trips(hs, tmp, st, args.n)
        progress("round trips done")
        burst_rows, p2 = await bursts(hs, tmp, st, args.burst, args.users, args.rooms)
        progress("bursts done")
    return rt, stages, burst_rows, p1 + p2


def progress(what: str) -> None:
    print(f"[bench_matrix] {what}", file=sys.stderr, flush=True)


def watchdog(seconds: float, hs: LocalSynapse) -> threading.Timer:
    """If the run hangs (even with the event loop stuck): dump every thread, stop Synapse, exit."""

    def fire() -> None:
        print(f"\nWATCHDOG: no result after {seconds:.0f} s; thread dump:", file=sys.stderr)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        hs.stop()
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    logging.disable(logging.WARNING)
    # SIGTERM unwinds like Ctrl-C, so the `finally` below stops Synapse.
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp_s:
        tmp = Path(tmp_s)
        started = time.monotonic()
        with local_synapse(tmp) as hs:
            progress(f"LocalSynapse up in {time.monotonic() - started:.1f} s at {hs.url}")
            dog = watchdog(args.deadline, hs)
            try:
                rt, stages, burst_rows, problems = asyncio.run(measure(args, hs, tmp))
            finally:
                dog.cancel()
    report(args, rt, stages, burst_rows, problems)
    return 1 if problems else 0


def report(
    args: argparse.Namespace,
    rt: dict[str, list[float]],
    stages: dict[str, list[float]],
    burst_rows: list[tuple[Any, ...]],
    problems: list[str],
) -> None:
    echo = rt["echo"]
    print("### Matrix round trip (message -> bot reply in the sender's own sync)")
    print(
        f"({args.n} each after {WARMUP} warm-up, sequential, interleaved; same Synapse, same "
        "process; ratio = Lifeline / bare nio echo bot)\n"
    )
    rows: list[tuple[Any, ...]] = []
    labels = {
        "echo": "bare nio echo bot",
        "command": "Lifeline `!status` (fast path)",
        "model": "Lifeline free text (model path, instant stand-in)",
    }
    for kind in ("echo", "command", "model"):
        v = rt[kind]
        ratio50 = pct(v, 50) / pct(echo, 50) if kind != "echo" else 1.0
        ratio95 = pct(v, 95) / pct(echo, 95) if kind != "echo" else 1.0
        rows.append(
            (
                labels[kind],
                len(v),
                pct(v, 50),
                pct(v, 95),
                max(v),
                f"{ratio50:.2f}",
                f"{ratio95:.2f}",
            )
        )
    print(table(["path", "n", "p50 ms", "p95 ms", "max ms", "p50 ratio", "p95 ratio"], rows))

    print("\n### Where Lifeline's round trip goes (gateway rows, wall clock)\n")
    print(
        table(
            ["stage", "p50 ms", "p95 ms"],
            [(k, median(v), pct(v, 95)) for k, v in stages.items()],
        )
    )

    print(
        f"\n### Matrix intake burst ({args.users} users, {args.rooms} rooms, responder chatter)\n"
    )
    print(
        table(
            [
                "scenario",
                "messages",
                "send s",
                "s until all persisted",
                "s after ready / last send",
                "messages/s",
                "zero loss",
            ],
            burst_rows,
        )
    )
    if problems:
        print("\nProblems:")
        for p in problems[:20]:
            print(f"- {p}")


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=30, help="measured round trips per path")
    ap.add_argument("--burst", type=int, default=500, help="messages per burst")
    ap.add_argument("--users", type=int, default=5, help="sending users in the burst")
    ap.add_argument("--rooms", type=int, default=2, help="rooms in the burst")
    ap.add_argument("--deadline", type=float, default=600, help="watchdog: give up after (s)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(parse(sys.argv[1:])))
