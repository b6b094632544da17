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
from tests.harness.gateway import TEAMS, Gateway, running_gateway
from tests.harness.matrix_room import Room, matrix_settings
from tests.harness.ollama_standin import OllamaStandIn
from tests.test_board_api import roof_case

BASES: dict[str, Any] = {"boat-1": [25.712, 89.661], "boat-2": [25.805, 89.640]}  # med-1: none
CASE_AT = (25.751, 89.702)


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
        tmp_path, ollama_standin, room, board={"enabled": True, "port": free_port()}, teams=teams
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

            status, answer = await coord.post(f"/api/cases/{case}/resolve", {})
            assert status == 200, answer
            status, listed = await coord.get("/api/teams")
            (boat2,) = [t for t in listed["teams"] if t["id"] == "boat-2"]
            assert boat2["status"] == "free" and boat2["case"] is None and boat2["case_at"] is None
