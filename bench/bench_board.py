"""Incident board server: how long the case list takes with 5,000 cases, and how long a change
takes from its commit to an open live stream (SSE hub), with commits arriving meanwhile.

Runs on a real SQLite database under a temp directory (no Synapse, no HTTP: the measured part is
the board's SQL, JSON shaping and change detection; HTTP adds a loopback round trip).

    .venv/bin/python bench/bench_board.py [--cases 5000] [--changes 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - repo on sys.path
from _common import median, pct, table

from bot.board import views
from bot.board.events import Hub
from bot.models import Channel, Priority, Role
from bot.store import board as store
from bot.store import incidents
from bot.store.board import CaseQuery
from bot.store.db import Database


async def fill(db: Database, count: int) -> None:
    now = time.time() - 3600
    async with db.transaction() as conn:
        for n in range(count):
            case = await incidents.create(
                conn,
                channel=Channel.SMS,
                reporter=f"+88017{n:08d}",
                conversation=f"+88017{n:08d}",
                priority=random.choice(list(Priority)),
                lang="en",
                summary=f"water rising, {n % 9 + 1} people on the roof near landmark {n}",
                now=now + n * 0.5,
                people_count=n % 9 + 1,
            )
            if n % 2:  # half with a position (the map's pins), half with text only
                await conn.execute(
                    "UPDATE incidents SET lat = ?, lon = ?, location = ? WHERE id = ?",
                    (
                        23.6 + random.random() * 0.4,
                        90.2 + random.random() * 0.4,
                        f"ward {n}",
                        case.id,
                    ),
                )


async def list_page(db: Database, role: Role) -> tuple[float, int]:
    started = time.perf_counter()
    now = time.time()
    query = CaseQuery(which="open", overdue_before=now - 1800)
    rows = await store.cases(db, query)  # the most urgent query.limit (the page's 300)
    counts = await store.case_counts(db, query)  # and how many match in all
    cases = [views.case_json(r, role, now, 1800.0) for r in rows]
    body = json.dumps({"cases": cases, "total": sum(counts.values())})
    return time.perf_counter() - started, len(body)


async def markers(db: Database) -> tuple[float, int]:
    """The map's pins for every open case (GET /api/markers' SQL and JSON)."""
    started = time.perf_counter()
    rows = await store.markers(db)
    body = json.dumps([{"code": r[0], "priority": r[1], "lat": r[2], "lon": r[3]} for r in rows])
    return time.perf_counter() - started, len(body)


async def live_latency(db: Database, changes: int) -> list[float]:
    """Commit a change to a random case (while other commits arrive) and time until the hub has
    handed it to an open stream."""
    hub = Hub(db, time.time)
    db.on_commit.append(hub.kick)
    runner = asyncio.create_task(hub.run())
    q = hub.subscribe()
    ids = [int(r[0]) for r in await db.fetchall("SELECT id FROM incidents")]
    latencies: list[float] = []
    try:
        for _ in range(changes):
            target = random.choice(ids)
            for other in random.sample(ids, 3):  # unrelated commits around it
                async with db.transaction() as conn:
                    await conn.execute("UPDATE incidents SET needs='boat' WHERE id=?", (other,))
            started = time.perf_counter()
            async with db.transaction() as conn:
                await incidents.update(
                    conn, target, time.time(), people_count=random.randint(1, 50)
                )
            while True:
                change = await asyncio.wait_for(q.get(), 10)
                if (
                    change is not None
                    and change.case is not None
                    and change.case.incident.id == target
                ):
                    break
            latencies.append(time.perf_counter() - started)
            while not q.empty():
                q.get_nowait()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    return latencies


async def main(cases: int, changes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db")
        await db.open()
        try:
            t0 = time.perf_counter()
            await fill(db, cases)
            fill_s = time.perf_counter() - t0
            pages = [await list_page(db, Role.COORDINATOR) for _ in range(5)]
            resp = [await list_page(db, Role.RESPONDER) for _ in range(5)]
            pins = [await markers(db) for _ in range(5)]
            live = await live_latency(db, changes)
        finally:
            await db.close()
    secs = [p[0] for p in pages]
    print(f"{cases} open cases written in {fill_s:.1f} s; list JSON {pages[0][1] / 1e6:.1f} MB")
    print(
        table(
            ["measure", "median s", "p95 s", "max s"],
            [
                ("case list (coordinator)", median(secs), pct(secs, 95), max(secs)),
                (
                    "case list (responder, masked)",
                    median([r[0] for r in resp]),
                    pct([r[0] for r in resp], 95),
                    max(r[0] for r in resp),
                ),
                (
                    "map markers (every open case)",
                    median([p[0] for p in pins]),
                    pct([p[0] for p in pins], 95),
                    max(p[0] for p in pins),
                ),
                (
                    f"commit -> live stream ({changes} changes)",
                    median(live),
                    pct(live, 95),
                    max(live),
                ),
            ],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.changes))
