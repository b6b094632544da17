"""Teams at their bases: `[[teams]] base_at` reaches the board's teams API and its live events,
and a team out on a case carries where that case is (the map draws a line to it). A real
gateway, a real Synapse, the SMS case from the dummy modem."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bot.store import incidents
from bot.synapse_local import free_port
from tests.harness.board_client import board_up, event_stream, logged_in
from tests.harness.browser import chromium, new_tab
from tests.harness.gateway import TEAMS, Gateway, running_gateway
from tests.harness.matrix_room import Room, matrix_settings
from tests.harness.ollama_standin import OllamaStandIn
from tests.test_board_api import roof_case

BASES: dict[str, Any] = {"boat-1": [25.712, 89.661], "boat-2": [25.805, 89.640]}  # med-1: none
CASE_AT = (25.751, 89.702)
MAP_AT = {"center_lat": 25.76, "center_lon": 89.66, "zoom": 11}  # the bases on screen


async def teams_on_the_map(base: str, room: Room, case: str) -> None:
    """In Chromium: the team layer (its own toggle) draws each team with a base position at it,
    free or busy, and a line from a busy team's base to its case."""
    async with chromium() as browser:
        tab = await new_tab(browser, base + "/", width=1440, height=900)
        await tab.open_board(room.coordinator.user_id, room.coordinator.password)
        pins = tab.page.locator(".leaflet-marker-pane .team-pin")
        await pins.nth(1).wait_for(timeout=20_000)
        shown = sorted(await pins.all_inner_texts())
        assert len(shown) == 2, shown  # med-1 has no base position: not on the map
        assert shown[0].split() == ["boat-1", "boat", "·", "free"], shown
        assert shown[1].split() == ["boat-2", "boat", "·", "busy"], shown
        assert await tab.page.locator(".team-pin.t-busy").inner_text() == shown[1]
        assert await tab.page.locator("path.team-line").count() == 1  # boat-2 -> its case
        await tab.page.locator(".team-pin.t-busy").click()
        await tab.page.locator(".leaflet-popup", has_text=f"Open {case}").wait_for()

        toggle = tab.page.locator(".leaflet-control-layers label", has_text="Teams at their bases")
        await toggle.locator("input").uncheck()  # the layer is its own: off, teams are gone
        assert await pins.count() == 0 and await tab.page.locator("path.team-line").count() == 0
        assert not tab.errors, tab.errors


async def place_at(gw: Gateway, code: str, lat: float, lon: float) -> None:
    """A GPS fix for the case (a photo's EXIF or a Matrix location would give one)."""
    async with gw.db.transaction() as conn:
        incident = await incidents.by_case_in(conn, code)
        assert incident is not None
        await incidents.update(conn, incident.id, time.time(), lat=lat, lon=lon)


async def test_teams_are_at_their_bases_and_a_team_out_on_a_case_points_at_it(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    teams = [{**t, "base_at": BASES[t["id"]]} if t["id"] in BASES else t for t in TEAMS]
    settings = matrix_settings(
        tmp_path,
        ollama_standin,
        room,
        board={"enabled": True, "port": free_port(), **MAP_AT},
        teams=teams,
    )
    async with running_gateway(settings) as gw:
        base = await board_up(gw)
        async with logged_in(base, room.coordinator.user_id, room.coordinator.password) as coord:
            status, listed = await coord.get("/api/teams")
            assert status == 200
            by_id = {t["id"]: t for t in listed["teams"]}
            assert [by_id["boat-1"]["lat"], by_id["boat-1"]["lon"]] == BASES["boat-1"]
            assert [by_id["boat-2"]["lat"], by_id["boat-2"]["lon"]] == BASES["boat-2"]
            assert by_id["boat-2"]["kind"] == "boat" and by_id["boat-2"]["status"] == "free"
            assert (by_id["med-1"]["lat"], by_id["med-1"]["lon"]) == (None, None)  # no base_at
            assert all(t["case"] is None and t["case_at"] is None for t in listed["teams"])

            case = await roof_case(gw, ollama_standin)
            await place_at(gw, case, *CASE_AT)
            async with event_stream(coord) as events:
                status, answer = await coord.post(f"/api/cases/{case}/approve", {"team": "boat-2"})
                assert status == 200, answer
                live = await events.wait(
                    "team", lambda t: t["id"] == "boat-2" and t["status"] == "busy"
                )
            assert live["case"] == case and live["case_at"] == list(CASE_AT)
            assert [live["lat"], live["lon"]] == BASES["boat-2"]  # still drawn at its base
            status, listed = await coord.get("/api/teams")
            by_id = {t["id"]: t for t in listed["teams"]}
            assert by_id["boat-2"]["case"] == case and by_id["boat-2"]["case_at"] == list(CASE_AT)
            assert by_id["boat-1"]["case_at"] is None
            await teams_on_the_map(base, room, case)

            status, answer = await coord.post(f"/api/cases/{case}/resolve", {})
            assert status == 200, answer
            status, listed = await coord.get("/api/teams")
            (boat2,) = [t for t in listed["teams"] if t["id"] == "boat-2"]
            assert boat2["status"] == "free" and boat2["case"] is None and boat2["case_at"] is None
