"""kill -9 during a mixed SMS + Matrix run, restarted each time: every inbound message processed
once, every reply sent exactly once per idempotency key — on Matrix verified on the homeserver
itself (tx_id makes a re-sent notice idempotent), on SMS through the dummy modem's sent folder."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from nio import AsyncClient, RoomCreateResponse, RoomMessageNotice, RoomSendResponse

from bot.synapse_local import LocalSynapse
from tests.harness.gateway import modems
from tests.harness.ollama_standin import OllamaStandIn, Spec, delayed, text_reply
from tests.harness.process import (
    GatewayProcess,
    idle,
    key_digest,
    sent_keys,
    wait_until,
    write_config,
)
from tests.harness.synapse_server import make_client, register


def steady_model(body: dict[str, Any]) -> Spec:
    return delayed(0.05, text_reply("Noted. 1. Stay high. 2. Keep your phone on."))


async def _notices(client: AsyncClient, room_id: str, sender: str) -> int:
    resp = await client.room_messages(room_id, start="", limit=500)
    return sum(1 for e in resp.chunk if isinstance(e, RoomMessageNotice) and e.sender == sender)


async def _send(client: AsyncClient, room_id: str, text: str) -> None:
    resp = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text})
    assert isinstance(resp, RoomSendResponse), resp


def test_kill9_mixed_sms_and_matrix(
    tmp_path: Path, standin: OllamaStandIn, synapse: LocalSynapse
) -> None:
    rng = random.Random(7)
    standin.hook = steady_model
    bot, coordinator, victim = (register(synapse, p) for p in ("bot", "coord", "victim"))
    loop = asyncio.new_event_loop()
    coord = loop.run_until_complete(make_client(synapse, coordinator))
    vic = loop.run_until_complete(make_client(synapse, victim))
    room = loop.run_until_complete(coord.room_create(name="coordination", invite=[bot.user_id]))
    dm = loop.run_until_complete(vic.room_create(invite=[bot.user_id], is_direct=True))
    assert isinstance(room, RoomCreateResponse) and isinstance(dm, RoomCreateResponse)
    gw = GatewayProcess(
        write_config(
            tmp_path,
            standin.url,
            queue={"retry_base_s": 0.5, "retry_max_s": 2, "lease_s": 600},
            sms={"modems": modems(tmp_path, 2)},
            matrix={
                "enabled": True,
                "homeserver": synapse.url,
                "user_id": bot.user_id,
                "password": bot.password,
                "store_path": str(tmp_path / "mstore"),
                "coordination_room": room.room_id,
                "coordinators": [coordinator.user_id],
                "encryption": False,
                "sync_timeout_s": 2,
            },
            broadcasts={"sitrep_every_min": 0},
        )
    )
    sms = [(f"+88018{i % 15:08d}", f"water entering house number {i}, 3 people") for i in range(30)]
    matrix = [
        ("dm", f"we need drinking water at block {i}") if i % 2 else ("room", "!teams")
        for i in range(20)
    ]
    kills = 3
    kill_at = sorted(rng.sample(range(5, 45), kills))
    try:
        gw.start()
        wait_until(
            lambda: gw.query("SELECT COUNT(*) FROM kv WHERE key='matrix.next_batch'")[0][0], 30
        )
        time.sleep(1.0)  # the bot has joined both rooms (invites handled after the first batch)
        done_kills = 0
        order = [("sms", x) for x in sms] + [("matrix", x) for x in matrix]
        rng.shuffle(order)
        for i, (kind, item) in enumerate(order):
            if kind == "sms":
                gw.sms_in(item[0], item[1], modem=int(item[0][-2:]) % 2)
            else:
                where, text = item
                client, rid = (vic, dm.room_id) if where == "dm" else (coord, room.room_id)
                loop.run_until_complete(_send(client, rid, text))
            if done_kills < kills and i == kill_at[done_kills]:
                time.sleep(rng.uniform(0.2, 1.5))
                gw.kill9()
                done_kills += 1
                gw.start()
            else:
                time.sleep(0.05)
        # every message persisted, not only no work in hand: a Matrix message still on the
        # homeserver, not yet synced, would look idle
        expected = len(sms) + len(matrix)
        wait_until(
            lambda: gw.query("SELECT COUNT(*) FROM inbox")[0][0] >= expected and idle(gw),
            timeout=120,
            every=0.25,
        )
        time.sleep(3)  # a last sync: nothing new may arrive
        assert idle(gw)
        code, _ = gw.terminate()
        assert code == 0
        inbox = gw.query("SELECT channel, text, status FROM inbox")
        assert sorted(t for c, t, _ in inbox if c == "sms") == sorted(t for _, t in sms)
        assert sorted(t for c, t, _ in inbox if c == "matrix") == sorted(t for _, t in matrix)
        assert {s for *_, s in inbox} == {"done"}
        out = gw.query("SELECT idem_key, channel, conversation, status FROM outbox")
        assert {s for *_, s in out} == {"sent"}
        # Matrix: the homeserver holds exactly one notice per outbox row (tx_id idempotency).
        for rid in (room.room_id, dm.room_id):
            rows = sum(1 for _, ch, conv, _ in out if ch == "matrix" and conv == rid)
            assert (
                loop.run_until_complete(
                    _notices(coord if rid == room.room_id else vic, rid, bot.user_id)
                )
                == rows
            ), rid
        # SMS: one accepted message per key, but a kill between libGammu's accept and the
        # 'sent' commit may repeat the message in flight on each modem (documented at-least-once
        # on the wire). The same message can be that one twice: after a restart it is the first
        # to go again, so a kill soon after the restart can catch it once more.
        keys = sent_keys(gw)
        digests = {key_digest(k): k for k, ch, *_ in out if ch == "sms"}
        assert set(keys) == set(digests)
        repeats = {digests[d]: n for d, n in keys.items() if n > 1}
        assert sum(n - 1 for n in repeats.values()) <= kills * 2, repeats  # 2 modems
    finally:
        gw.stop_quietly()
        loop.run_until_complete(coord.close())
        loop.run_until_complete(vic.close())
        loop.close()
