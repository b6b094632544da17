"""Region over local federation: two Synapse homeservers on 127.0.0.1 (tests/harness/federation.py),
a Lifeline gateway on each (districts BHO and LAL), the regional room on A joined by B.

Measures
- time from a critical SMS entering A's modem to its `case` event arriving at B's homeserver (a
  plain client long-polling /sync on B records the arrival), p50/p95 over CASES cases taken one at
  a time;
- events per new case and per case change (each must be exactly 1): CHANGES state changes are
  written through the store on A (the same tables the commands write), then B's copy of the room is
  counted.

Run: .venv/bin/python bench/bench_region.py [cases]"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
from _common import pct, table

from bot.region import events
from bot.store import incidents
from tests.harness.federation import (
    FederatedSynapse,
    create_regional_room,
    federation,
    join,
    region_events,
)
from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, text_reply

CASES = int(sys.argv[1]) if len(sys.argv) > 1 else 10
STATES = ("dispatch_requested", "assigned", "resolved")
TEXT = "Water rising fast, 5 people on the roof at Ulipur ghat. Help!"


class Arrivals(threading.Thread):
    """Long-polls /sync on B as a plain user; records when each regional event first arrives."""

    def __init__(self, hs: FederatedSynapse, token: str, room_id: str) -> None:
        super().__init__(daemon=True)
        self.hs, self.token, self.room_id = hs, token, room_id
        self.seen: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        since = ""
        while not self.stop.is_set():
            qs = "timeout=2000" + (f"&since={urllib.parse.quote(since)}" if since else "")
            try:
                out = self.hs.api("GET", f"/_matrix/client/v3/sync?{qs}", self.token)
            except Exception:  # a bench watcher: try again
                time.sleep(0.2)
                continue
            now = time.monotonic()
            since = out["next_batch"]
            room = out.get("rooms", {}).get("join", {}).get(self.room_id, {})
            for e in room.get("timeline", {}).get("events", []):
                field = e.get("content", {}).get(events.FIELD)
                if isinstance(field, dict):
                    self.seen.setdefault((field["district"], field["seq"]), (now, field))

    def case_arrival(self, code: str) -> float | None:
        for at, field in self.seen.values():
            if field["kind"] == "case" and field["data"]["code"] == code:
                return at
        return None


def user(hs: FederatedSynapse, prefix: str) -> Any:
    return hs.register(f"{prefix}{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex[:8])


def gateway(tmp: Path, model_url: str, hs: FederatedSynapse, district: str, alias: str) -> Any:
    bot = user(hs, "bot")
    tmp.mkdir(parents=True)
    return make_settings(
        tmp,
        model_url,
        matrix={
            "enabled": True,
            "homeserver": hs.url,
            "user_id": bot.user_id,
            "password": bot.password,
            "store_path": str(tmp / "matrix-store"),
            "encryption": False,
            "sync_timeout_s": 2,
        },
        region={"district": district, "room": alias},
        broadcasts={"sitrep_every_min": 0},
    )


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="bench-region-"))
    with federation(root / "hs", 2) as (a, b), OllamaStandIn() as standin:
        for _ in range(CASES * 2):
            standin.push_chat(text_reply("Help is coming. Stay on the roof."))
        room_id, alias = create_regional_room(a, user(a, "eoc"))
        watcher = user(b, "watch")
        join(b, watcher, alias)
        arrivals = Arrivals(b, watcher.access_token, room_id)
        arrivals.start()
        sa = gateway(root / "a", standin.url, a, "BHO", alias)
        sb = gateway(root / "b", standin.url, b, "LAL", alias)
        latencies: list[float] = []
        codes: list[str] = []
        async with running_gateway(sa) as ga, running_gateway(sb):
            for i in range(CASES):
                victim = f"+88017{i:08d}"
                t0 = time.monotonic()
                ga.sms_in(victim, TEXT)
                ack = (await ga.wait_sent(victim, timeout=60))[0]["text"]
                code = ack.split("Case ")[1].split(".")[0]
                codes.append(code)

                async def arrived(code: str = code) -> float | None:
                    return arrivals.case_arrival(code)

                latencies.append(await wait_for(arrived, timeout=120, every=0.02) - t0)
            for code in codes:  # three state changes per case, through the store
                case = await incidents.by_case(ga.db, code)
                assert case is not None
                for n, status in enumerate(STATES):
                    async with ga.db.transaction() as conn:
                        await incidents.update(conn, case.id, time.time() + n, status=status)
                    await asyncio.sleep(0.05)

            async def all_changes() -> bool:
                states = [f for _, f in arrivals.seen.values() if f["kind"] == "case_state"]
                return len(states) >= CASES * len(STATES)

            await wait_for(all_changes, timeout=180, every=0.2)
            await asyncio.sleep(3)  # would a duplicate still come?
            await ga.idle(timeout=60)
        arrivals.stop.set()
        on_b = region_events(b, watcher.access_token, room_id, events.FIELD)
    bho = [e for e in on_b if e["district"] == "BHO"]
    case_events = [e for e in bho if e["kind"] == "case"]
    state_events = [e for e in bho if e["kind"] == "case_state"]
    per_case = len(case_events) / CASES
    per_change = len(state_events) / (CASES * len(STATES))
    seqs = [e["seq"] for e in bho]
    print(f"\nRegion over local federation (2 Synapse, 2 gateways), {CASES} cases one at a time\n")
    print(
        table(
            ["measure", "value"],
            [
                ["critical SMS at A → case event at B's homeserver, p50 (s)", pct(latencies, 50)],
                ["same, p95 (s)", pct(latencies, 95)],
                ["same, max (s)", max(latencies)],
                ["events per new case (must be 1)", per_case],
                ["events per case state change (must be 1)", per_change],
                ["duplicate seqs at B", len(seqs) - len(set(seqs))],
                ["missing seqs at B", max(seqs) - len(set(seqs))],
            ],
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
