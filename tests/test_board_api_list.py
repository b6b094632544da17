"""The board's case list with more cases than a page draws: the list is capped at the most
urgent rows, while the counts, the search and the map's markers still cover every case."""

from __future__ import annotations

import time
from pathlib import Path

from bot.models import Channel, Priority
from bot.store import incidents
from tests.harness.board_client import board_gateway, logged_in
from tests.harness.matrix_room import Room
from tests.harness.ollama_standin import OllamaStandIn

CASES = 330  # more than the page's 300 rows


async def test_list_is_capped_but_counts_search_and_markers_cover_every_case(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    async with board_gateway(tmp_path, ollama_standin, room) as (gw, base):
        now = time.time() - 3600
        codes: list[str] = []
        async with gw.db.transaction() as conn:
            for n in range(CASES):
                # the oldest is the only critical one; the newest (least urgent) is a low one
                prio = Priority.CRITICAL if n == 0 else Priority.LOW if n % 2 else Priority.HIGH
                case = await incidents.create(
                    conn,
                    channel=Channel.SMS,
                    reporter=f"+88017{n:08d}",
                    conversation=f"+88017{n:08d}",
                    priority=prio,
                    lang="en",
                    summary=f"roof {n}",
                    now=now + n,
                )
                codes.append(case.case)
                await conn.execute(
                    "UPDATE incidents SET lat = ?, lon = ?, location = ? WHERE id = ?",
                    (23.7 + n / 10000, 90.4, f"ward {n}", case.id),
                )
        async with logged_in(base, room.coordinator.user_id, room.coordinator.password) as coord:
            status, listed = await coord.get("/api/cases")
            assert status == 200
            assert len(listed["cases"]) == listed["limit"] == 300
            assert listed["total"] == CASES
            assert listed["by_priority"] == {
                "critical": 1,
                "high": CASES // 2 - 1,
                "medium": 0,
                "low": CASES // 2,
            }
            shown = [c["code"] for c in listed["cases"]]
            assert shown[0] == codes[0]  # the same order as !incidents: most urgent first
            last = codes[-1]  # the newest low case: beyond the 300 rows
            assert last not in shown
            # the search covers every case, not only the rows sent
            status, found = await coord.get(f"/api/cases?q={last}")
            assert status == 200 and [c["code"] for c in found["cases"]] == [last]
            assert found["total"] == 1
            status, lows = await coord.get("/api/cases?priority=low&limit=0")
            assert status == 200 and lows["cases"] == [] and lows["total"] == CASES // 2
            status, _ = await coord.get("/api/cases?limit=many")
            assert status == 400
            # the map gets every open case with a position
            status, pins = await coord.get("/api/markers")
            assert status == 200
            assert sorted(m["code"] for m in pins["markers"]) == sorted(codes)
            assert all(m["location_exact"] for m in pins["markers"])
