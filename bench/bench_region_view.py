"""Regional view rebuild time (issue 15): how long a gateway takes to rebuild its regional view
from the regional room's history.

1. apply: 10,000 events (cases, state changes, team lists, sitreps, heartbeats from 3 districts)
   applied the way ``RegionReader.rebuild`` applies them (pages of 500, newest first, one
   transaction per page) into a fresh SQLite file: p50/p95 over --runs.
2. --synapse N: the whole rebuild through a real local Synapse: N events sent by the peers' bots
   into one room, then ``rebuild`` pages them back over /messages and applies them (one run;
   sending the events is not timed, but takes long: ~2,000 events took minutes on the shared
   2-core machine, 10,000 did not finish sending within 25 minutes there).

    .venv/bin/python bench/bench_region_view.py [--events 10000] [--runs 5] [--synapse 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
from _common import median, pct, table

from bot.models import Role
from bot.region import events
from bot.region.mutual_aid import MutualAid
from bot.region.reader import REBUILD_PAGE, RegionReader, Seen
from bot.store import region_view as view
from bot.store.db import Database
from config.settings import RegionSettings

DISTRICTS = ("BHO", "LAL", "SYL")
HEADERS = ["what", "runs", "p50 s", "p95 s", "events/s"]
T0 = 1_800_000_000


def stream(n: int) -> list[tuple[str, int, str, dict[str, Any]]]:
    """(district, seq, kind, data): a flood night's mix, about 1 case in 4 events."""
    out: list[tuple[str, int, str, dict[str, Any]]] = []
    seqs = dict.fromkeys(DISTRICTS, 0)
    for i in range(n):
        d = DISTRICTS[i % len(DISTRICTS)]
        seqs[d] += 1
        seq = seqs[d]
        case = f"{d}-{1000 + seq // 4}"
        match i % 8:
            case 0 | 4:
                kind, data = (
                    "case",
                    {
                        "code": f"{d}-{1000 + seq}",
                        "status": "open",
                        "priority": "critical" if i % 3 else "high",
                        "team": None,
                        "location": f"ghat {i}",
                        "people": 1 + i % 9,
                        "needs": "boat",
                        "summary": "5 people; needs: boat",
                    },
                )
            case 1 | 5 | 6:
                kind, data = (
                    "case_state",
                    {
                        "code": case,
                        "status": "assigned",
                        "priority": "critical",
                        "team": "boat-1",
                    },
                )
            case 2:
                teams = [{"id": f"boat-{k}", "kind": "boat", "status": "free"} for k in range(6)]
                kind, data = "teams", {"teams": teams}
            case 3:
                kind, data = (
                    "sitrep",
                    {
                        "open": seq,
                        "by_priority": {"critical": seq // 2},
                        "by_status": {"open": seq},
                    },
                )
            case _:
                kind, data = "hello", {"every_s": 300}
        out.append((d, seq, kind, data))
    return out


def content(d: str, seq: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    event = events.build(d, seq, kind, T0 + seq, data)
    c = event.content()
    c[events.FIELD]["at"] = int(c[events.FIELD]["at"])  # Matrix JSON has no floats
    return c


def bots() -> dict[str, str]:
    return {d: f"@bot-{d.lower()}:localhost" for d in DISTRICTS}


def reader(
    db: Database, district: str = "BHO", peers: dict[str, str] | None = None
) -> RegionReader:
    everyone = bots()
    peers = peers or {d: u for d, u in everyone.items() if d != district}

    async def nothing(*_: Any) -> Any:
        return 0

    settings = RegionSettings(district=district, room="#region:localhost", peers=peers)
    return RegionReader(
        settings,
        db,
        time.time,
        MutualAid(district, nothing, nothing),
        me=everyone[district],
        role_of=lambda _peer: Role.PUBLIC,
    )


async def apply_once(tmp: Path, items: list[tuple[str, int, str, dict[str, Any]]]) -> float:
    db = Database(tmp / f"view-{time.monotonic_ns()}.db")
    await db.open()
    try:
        r = reader(db)
        who = bots()
        seen = [
            Seen(who[d], f"$e{d}{s}", content(d, s, k, data), float(T0 + s))
            for d, s, k, data in reversed(items)  # /messages backwards: newest first
        ]
        started = time.perf_counter()
        async with db.transaction() as conn:
            await view.clear(conn)
        for i in range(0, len(seen), REBUILD_PAGE):
            await r.apply(seen[i : i + REBUILD_PAGE])
        elapsed = time.perf_counter() - started
        assert await view.event_count(db) == len(items)
        return elapsed
    finally:
        await db.close()


async def through_synapse(tmp: Path, items: list[tuple[str, int, str, dict[str, Any]]]) -> float:
    from _matrix_common import local_synapse
    from nio import AsyncClient, RoomCreateResponse

    from tests.harness.synapse_server import make_client

    with local_synapse(tmp) as hs:
        accounts = {d: hs.register(f"bot-{d.lower()}", "pw-bench") for d in DISTRICTS}
        clients: dict[str, AsyncClient] = {d: await make_client(hs, a) for d, a in accounts.items()}
        try:
            owner = clients["BHO"]
            others = [a.user_id for d, a in accounts.items() if d != "BHO"]
            created = await owner.room_create(name="region", invite=others)
            assert isinstance(created, RoomCreateResponse), created
            for d in DISTRICTS[1:]:
                await clients[d].join(created.room_id)
            sem = asyncio.Semaphore(8)

            async def send(d: str, s: int, k: str, data: dict[str, Any]) -> None:
                async with sem:
                    await clients[d].room_send(
                        created.room_id,
                        "m.room.message",
                        content(d, s, k, data),
                        tx_id=events.txn_id(d, s),
                    )

            await asyncio.gather(*(send(*it) for it in items))
            db = Database(tmp / "view-synapse.db")
            await db.open()
            try:
                peers = {d: a.user_id for d, a in accounts.items() if d != "BHO"}
                r = reader(db, peers=peers)
                r.me = accounts["BHO"].user_id
                started = time.perf_counter()
                applied = await r.rebuild(owner, created.room_id)
                elapsed = time.perf_counter() - started
                assert applied == len(items), applied
                return elapsed
            finally:
                await db.close()
        finally:
            for c in clients.values():
                await c.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--synapse", type=int, default=0, help="also a full rebuild over /messages")
    args = ap.parse_args()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        items = stream(args.events)
        times = [await apply_once(tmp, items) for _ in range(args.runs)]
        rows.append(
            [
                f"apply {args.events} events (pages of {REBUILD_PAGE})",
                args.runs,
                median(times),
                pct(times, 95),
                args.events / median(times),
            ]
        )
        print(table(HEADERS, rows), flush=True)  # before the long part: sending N events
        if args.synapse:
            elapsed = await through_synapse(tmp, stream(args.synapse))
            rows.append(
                [
                    f"rebuild {args.synapse} events over /messages (real Synapse)",
                    1,
                    elapsed,
                    elapsed,
                    args.synapse / elapsed,
                ]
            )
            print(table(HEADERS, rows[-1:]).split("\n", 2)[2])


if __name__ == "__main__":
    _ = _common
    asyncio.run(main())
