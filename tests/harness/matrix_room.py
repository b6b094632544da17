"""A coordination room on the test Synapse (bot, coordinator, responder) and the helpers that
talk to the gateway through it. The `coordination` fixture is registered in tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
from nio import AsyncClient, RoomCreateResponse, RoomMessageNotice, RoomSendResponse

from bot.synapse_local import Account, LocalSynapse
from tests.harness.gateway import Gateway, make_settings, tool_call, wait_for
from tests.harness.ollama_standin import OllamaStandIn, text_reply, tool_reply
from tests.harness.synapse_server import make_client, register


@dataclass
class Room:
    hs: LocalSynapse
    bot: Account
    coordinator: Account
    responder: Account
    coord: AsyncClient
    resp: AsyncClient
    room_id: str

    async def notices(
        self, client: AsyncClient | None = None, room_id: str | None = None
    ) -> list[str]:
        """Bodies of every notice the bot posted in the room so far (paged from the start)."""
        client = client or self.coord
        resp = await client.room_messages(room_id or self.room_id, start="", limit=200)
        return [e.body for e in reversed(resp.chunk) if isinstance(e, RoomMessageNotice)]

    async def wait_notice(self, needle: str, timeout: float = 20, **kw: Any) -> str:
        async def check() -> str | None:
            return next((n for n in await self.notices(**kw) if needle in n), None)

        found: str = await wait_for(check, timeout, every=0.3)
        return found

    async def say(self, client: AsyncClient, text: str) -> None:
        resp = await client.room_send(
            self.room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )
        assert isinstance(resp, RoomSendResponse), resp


@pytest_asyncio.fixture
async def coordination(synapse: LocalSynapse) -> AsyncIterator[Room]:
    bot, coordinator, responder = (
        register(synapse, "bot"),
        register(synapse, "coord"),
        register(synapse, "resp"),
    )
    coord = await make_client(synapse, coordinator)
    resp = await make_client(synapse, responder)
    created = await coord.room_create(name="coordination", invite=[bot.user_id, responder.user_id])
    assert isinstance(created, RoomCreateResponse), created
    await resp.join(created.room_id)
    room = Room(synapse, bot, coordinator, responder, coord, resp, created.room_id)
    try:
        yield room
    finally:
        await coord.close()
        await resp.close()


def roof_rescue_turn() -> tuple[Any, Any]:
    """The model asks for a boat for 5 people on the school roof, then tells the victim."""
    return (
        tool_reply(
            tool_call(
                "dispatch_rescue_team",
                location="Char Bhadrasan school roof",
                priority="critical",
                people_count=5,
                needs="boat",
            )
        ),
        text_reply("Your rescue request is recorded. Stay on the roof."),
    )


def matrix_settings(tmp_path: Path, standin: OllamaStandIn, room: Room, **extra: Any) -> Any:
    return make_settings(
        tmp_path,
        standin.url,
        matrix={
            "enabled": True,
            "homeserver": room.hs.url,
            "user_id": room.bot.user_id,
            "password": room.bot.password,
            "store_path": str(tmp_path / "matrix-store"),
            "coordination_room": room.room_id,
            "coordinators": [room.coordinator.user_id],
            "responders": [room.responder.user_id],
            "encryption": False,
            "sync_timeout_s": 2,
        },
        broadcasts={"sitrep_every_min": 0},  # sitreps have their own tests
        **extra,
    )


async def joined(gw: Gateway, room_id: str) -> None:
    async def check() -> bool:
        t = gw.runtime.matrix
        if t is None or t.health.state != "online":
            return False
        resp = await t._require_client().joined_rooms()
        return room_id in getattr(resp, "rooms", [])

    await wait_for(check, 30, every=0.2)


async def ask(room: Room, text: str, client: AsyncClient | None = None, **content: Any) -> str:
    """Send a message to the coordination room and return the bot's next notice there."""
    before = len(await room.notices())
    resp = await (client or room.coord).room_send(
        room.room_id, "m.room.message", {"msgtype": "m.text", "body": text, **content}
    )
    assert isinstance(resp, RoomSendResponse), resp

    async def check() -> str | None:
        notices = await room.notices()
        return notices[before] if len(notices) > before else None

    found: str = await wait_for(check, 20, every=0.3)
    return found
