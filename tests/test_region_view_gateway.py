"""Two gateways (BHO and LAL) on ONE real Synapse, sharing one regional room: what one district
publishes shows in the other's `!region`; a case command typed in the regional room is run by
the owning district alone; a forged event changes nothing; a lent boat is dispatched by the
borrower and handed back. (Federation itself: tests/test_region_federation.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, RoomCreateResponse, RoomSendResponse

from bot.region import events
from bot.synapse_local import SERVER_NAME, LocalSynapse
from tests.harness.gateway import Gateway, running_gateway, wait_for
from tests.harness.matrix_room import Room, joined, matrix_settings, roof_rescue_turn
from tests.harness.ollama_standin import OllamaStandIn
from tests.harness.process import PYTHON, ROOT, child_env, to_toml
from tests.harness.synapse_server import make_client, register

VICTIM_BHO, VICTIM_LAL = "+8801711111111", "+8801722222222"
ROOF = "Water rising, 5 of us on the roof of Char Bhadrasan school, help"


@dataclass
class District:
    code: str
    room: Room  # its coordination room (bot, coordinator, responder)
    gw: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        assert self.gw is not None
        return self.gw


@dataclass
class Region:
    hs: LocalSynapse
    room_id: str
    eoc: AsyncClient  # the regional operations centre (created the room)
    bho: District
    lal: District

    async def notices(self, needle: str = "") -> list[str]:
        resp = await self.eoc.room_messages(self.room_id, start="", limit=500)
        bodies = [getattr(e, "body", "") for e in reversed(resp.chunk)]
        return [b for b in bodies if needle in b]

    async def say(self, client: AsyncClient, text: str) -> str:
        resp = await client.room_send(
            self.room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )
        assert isinstance(resp, RoomSendResponse), resp
        return str(resp.event_id)


async def _coordination_room(hs: LocalSynapse) -> Room:
    bot, coordinator, responder = register(hs, "bot"), register(hs, "coord"), register(hs, "resp")
    coord, resp = await make_client(hs, coordinator), await make_client(hs, responder)
    created = await coord.room_create(name="coordination", invite=[bot.user_id, responder.user_id])
    assert isinstance(created, RoomCreateResponse), created
    await resp.join(created.room_id)
    return Room(hs, bot, coordinator, responder, coord, resp, created.room_id)


def _settings(tmp: Path, standin: OllamaStandIn, me: District, other: District, room: str) -> Any:
    region = {"district": me.code, "room": room, "peers": {other.code: other.room.bot.user_id}}
    return matrix_settings(tmp, standin, me.room, region=region)


@contextlib.asynccontextmanager
async def two_districts(
    synapse: LocalSynapse, tmp_path: Path, standin: OllamaStandIn
) -> AsyncIterator[Region]:
    bho = District("BHO", await _coordination_room(synapse))
    lal = District("LAL", await _coordination_room(synapse))
    eoc_acct = register(synapse, "eoc")
    eoc = await make_client(synapse, eoc_acct)
    people = [bho.room.coordinator, lal.room.coordinator]
    alias = f"flood-region-{uuid.uuid4().hex[:8]}"
    created = await eoc.room_create(
        name="flood-region",
        alias=alias,
        invite=[bho.room.bot.user_id, lal.room.bot.user_id, *(p.user_id for p in people)],
    )
    assert isinstance(created, RoomCreateResponse), created
    region = Region(synapse, created.room_id, eoc, bho, lal)
    try:
        for d in (bho, lal):
            await d.room.coord.join(created.room_id)
        room = f"#{alias}:{SERVER_NAME}"
        sb = _settings(tmp_path / "bho", standin, bho, lal, room)
        sl = _settings(tmp_path / "lal", standin, lal, bho, room)
        async with running_gateway(sb) as gb, running_gateway(sl) as gl:
            bho.gw, lal.gw = gb, gl
            for d in (bho, lal):
                await joined(d.gateway, d.room.room_id)
                await joined(d.gateway, created.room_id)
            yield region
    finally:
        for c in (eoc, bho.room.coord, bho.room.resp, lal.room.coord, lal.room.resp):
            await c.close()


async def _case(d: District, victim: str, standin: OllamaStandIn) -> str:
    """A critical SMS at district `d` and its dispatch request (the model asks for a boat)."""
    standin.push_chat(*roof_rescue_turn())
    d.gateway.sms_in(victim, ROOF)
    await d.gateway.wait_sent(victim, 2)
    rows = await d.gateway.rows("SELECT case_code FROM incidents WHERE reporter=?", victim)
    code = str(rows[0][0])
    assert code.startswith(f"{d.code}-"), code

    async def requested() -> bool:
        got = await d.gateway.rows("SELECT status FROM dispatches")
        return bool(got) and got[0][0] == "pending_approval"

    await wait_for(requested, 20)
    return code


async def _ask(d: District, text: str, needle: str) -> str:
    await d.room.say(d.room.coord, text)
    return await d.room.wait_notice(needle, timeout=30)


async def test_a_case_at_one_district_shows_in_the_others_region(
    synapse: LocalSynapse, tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    async with two_districts(synapse, tmp_path, ollama_standin) as region:
        code = await _case(region.bho, VICTIM_BHO, ollama_standin)

        async def seen_at_lal() -> bool:
            rows = await region.lal.gateway.rows(
                "SELECT status FROM region_cases WHERE code=?", code
            )
            return bool(rows)

        await wait_for(seen_at_lal, 30, every=0.3)
        report = await _ask(region.lal, "!region", "BHO:")
        bho_line = next(line for line in report.splitlines() if line.startswith("BHO:"))
        assert "open 1 (1 critical)" in bho_line and "last heard" in bho_line, report
        listing = await _ask(region.lal, "!region cases", "open case(s) in the region")
        assert code in listing and "CRITICAL" in listing, listing
        # no phone number of the victim ever reaches the other district
        events_at_lal = await region.lal.gateway.rows("SELECT * FROM region_events")
        assert VICTIM_BHO not in str([tuple(r) for r in events_at_lal])
        # the view is rebuilt from the room's history alone (what `lifeline region rebuild` does)
        rt = region.lal.gateway.runtime
        assert rt.region is not None and rt.matrix is not None
        before = await region.lal.gateway.rows("SELECT district, seq FROM region_events")
        await rt.region.reader.rebuild(rt.matrix._require_client())
        after = await region.lal.gateway.rows("SELECT district, seq FROM region_events")
        assert set(map(tuple, before)) <= set(map(tuple, after))  # more may have come meanwhile
        assert await region.lal.gateway.rows("SELECT 1 FROM region_cases WHERE code=?", code)
        # and by the command line, next to the running gateway
        out = await _cli(region.lal, tmp_path / "lal", "region", "rebuild")
        assert "regional view rebuilt:" in out and " 0 events" not in out, out
        assert code in await _cli(region.lal, tmp_path / "lal", "region", "show", "--cases")


async def _cli(d: District, tmp: Path, *args: str) -> str:
    """`python -m bot --config <the district's settings> …`, without blocking the gateways."""
    s = d.gateway.settings
    config = tmp / "cli.toml"
    data = {
        "storage": {"path": str(s.storage.path)},
        "matrix": {
            "homeserver": s.matrix.homeserver,
            "user_id": s.matrix.user_id,
            "password": s.matrix.password.get_secret_value(),
            "store_path": str(s.matrix.store_path),
            "encryption": False,
        },
        "region": {"district": s.region.district, "room": s.region.room, "peers": s.region.peers},
    }
    config.write_text(to_toml(data), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "bot",
        "--config",
        str(config),
        *args,
        cwd=ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_case_command_in_the_regional_room_runs_once_by_its_district_only(
    synapse: LocalSynapse, tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    async with two_districts(synapse, tmp_path, ollama_standin) as region:
        bho, lal = region.bho, region.lal
        code = await _case(bho, VICTIM_BHO, ollama_standin)
        # LAL's coordinator is nobody at BHO: neither gateway runs it
        await region.say(lal.room.coord, f"!approve {code} boat-2")
        await region.say(bho.room.coord, f"!approve {code} boat-2")
        await wait_for(
            lambda: _notice_count(region, f"{code}: approved, team boat-2"), 30, every=0.3
        )
        await bho.gateway.idle()
        await lal.gateway.idle()
        dispatch = await bho.gateway.rows("SELECT status, team_id, decided_by FROM dispatches")
        assert [tuple(r) for r in dispatch] == [
            ("assigned", "boat-2", bho.room.coordinator.user_id)
        ]
        assert len(await region.notices(f"{code}: approved")) == 1  # executed once
        commands = await bho.gateway.rows("SELECT peer FROM inbox WHERE command='approve'")
        assert [r[0] for r in commands] == [bho.room.coordinator.user_id]
        # LAL's gateway took neither command into its inbox, and changed nothing
        assert await lal.gateway.rows("SELECT id FROM inbox WHERE command IS NOT NULL") == []
        assert await lal.gateway.rows("SELECT id FROM dispatches") == []


async def _notice_count(region: Region, needle: str) -> int:
    return len(await region.notices(needle))


async def test_a_forged_event_changes_nothing_and_is_logged(
    synapse: LocalSynapse,
    tmp_path: Path,
    ollama_standin: OllamaStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.region.reader")
    async with two_districts(synapse, tmp_path, ollama_standin) as region:
        mallory = await make_client(synapse, register(synapse, "mallory"))
        try:
            # a member of the regional room, but no gateway's bot
            await region.eoc.room_invite(region.room_id, mallory.user_id)
            await mallory.join(region.room_id)
            forged = events.build(
                "LAL",
                99,
                "case",
                1_800_000_000,
                {
                    "code": "LAL-9999",
                    "status": "open",
                    "priority": "critical",
                    "team": None,
                    "location": "nowhere",
                    "people": 40,
                    "needs": "boat",
                    "summary": "fake",
                },
            )
            resp = await mallory.room_send(region.room_id, "m.room.message", forged.content())
            assert isinstance(resp, RoomSendResponse), resp
            # a genuine event after it, from BHO's own bot: once BHO has read that, it has
            # read the forged one too
            marker = await _case(region.bho, VICTIM_BHO, ollama_standin)

            async def bho_read_its_own() -> bool:
                return bool(
                    await region.bho.gateway.rows("SELECT 1 FROM region_cases WHERE code=?", marker)
                )

            await wait_for(bho_read_its_own, 30, every=0.3)
        finally:
            await mallory.close()
        for d in (region.bho, region.lal):
            assert await d.gateway.rows("SELECT * FROM region_cases WHERE code='LAL-9999'") == []
            assert await d.gateway.rows("SELECT * FROM region_events WHERE seq=99") == []
        listing = await _ask(region.bho, "!region cases", "in the region")
        assert "LAL-9999" not in listing
        warned = [r.getMessage() for r in caplog.records if "IGNORED" in r.getMessage()]
        assert any("claims to speak for LAL" in w and mallory.user_id in w for w in warned), warned


async def test_a_lent_boat_is_dispatched_by_the_borrower_and_handed_back(
    synapse: LocalSynapse, tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    async with two_districts(synapse, tmp_path, ollama_standin) as region:
        bho, lal = region.bho, region.lal
        reply = await _ask(bho, "!lend boat-1 LAL 6", "lent to LAL")
        assert "LAL dispatches it as BHO/boat-1" in reply
        assert await _team(bho, "boat-1") == "lent"
        await lal.room.wait_notice("Dispatch it as BHO/boat-1", timeout=30)
        assert await _team(lal, "BHO/boat-1") == "available"

        code = await _case(lal, VICTIM_LAL, ollama_standin)
        await _ask(lal, f"!approve {code} BHO/boat-1", f"{code}: approved, team BHO/boat-1")
        # LAL's only word to BHO's crew: the regional room; BHO's gateway relays it home
        notice = await bho.room.wait_notice("LAL dispatched your lent team boat-1", timeout=30)
        assert code in notice
        await _ask(lal, f"!resolve {code} all safe", f"{code} resolved")
        await _ask(lal, "!return BHO/boat-1", "handed back to BHO")
        assert await _team(lal, "BHO/boat-1") == "offline"
        await bho.room.wait_notice("LAL handed back boat-1", timeout=30)
        assert await _team(bho, "boat-1") == "available"
        region_view = await _ask(bho, "!region", "LAL:")
        assert "lent:" not in region_view, region_view


async def _team(d: District, team: str) -> str:
    rows = await d.gateway.rows("SELECT status FROM teams WHERE id=?", team)
    return str(rows[0][0]) if rows else "missing"
