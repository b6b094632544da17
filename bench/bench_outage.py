"""Homeserver down during a surge: a real Synapse is stopped, 20 victims report roof rescues by
SMS (each case raises a new-case alert and a dispatch request), the homeserver stays down for
OUTAGE_S, then comes back. Which alerts reach the coordination room, in what order per case,
how many were dead-lettered, and whether each says it is late.

Time is compressed through the config: attempts/backoff (3 attempts, 0.5 s doubling, capped at
3 s) would have used up the old attempt budget within seconds; the outage lasts 20× longer. That
ratio, not the wall-clock, is the "10 minutes down" of the field test.

Run: .venv/bin/python bench/bench_outage.py"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
from _common import median, table
from _matrix_common import create_room, local_synapse, make_client, matrix_section, register
from nio import RoomMessageNotice, RoomMessagesResponse

from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, Spec, delayed, text_reply, tool_reply

VICTIMS, OUTAGE_S = 20, 60.0
QUEUE = {"max_attempts": 3, "retry_base_s": 0.5, "retry_max_s": 3, "late_notice_after_s": 5}


def victim(i: int) -> str:
    return f"+88017{i:08d}"


def model(body: dict[str, Any]) -> Spec:
    messages = body.get("messages") or []
    if any(m.get("role") == "tool" for m in messages):
        return delayed(0.05, text_reply("A boat is requested. Stay on the roof."))
    call = {
        "name": "dispatch_rescue_team",
        "arguments": {"location": "the roof", "priority": "critical", "people_count": 4},
    }
    return delayed(0.05, tool_reply(call))


async def room_notices(client: Any, room_id: str) -> list[str]:
    bodies: list[str] = []
    token = ""
    while True:
        resp = await client.room_messages(room_id, start=token, limit=200)
        assert isinstance(resp, RoomMessagesResponse), resp
        bodies += [e.body for e in resp.chunk if isinstance(e, RoomMessageNotice)]
        if not resp.chunk or not resp.end:
            break
        token = resp.end
    return list(reversed(bodies))  # oldest first


async def main() -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, local_synapse(Path(tmp)) as hs:
        bot, coordinator = register(hs, "bot"), register(hs, "coord")
        coord = make_client(hs, coordinator)
        room_id = await create_room(coord, "coordination", [bot.user_id])
        standin = OllamaStandIn()
        standin.hook = model
        with standin:
            settings = make_settings(
                Path(tmp),
                standin.url,
                matrix=matrix_section(hs, bot, room_id, [coordinator.user_id], Path(tmp)),
                broadcasts={"sitrep_every_min": 0},
                queue=QUEUE,
            )
            async with running_gateway(settings) as gw:

                async def online() -> bool:  # synced, and the room invite accepted
                    t = gw.runtime.matrix
                    if t is None or t.health.state != "online":
                        return False
                    resp = await t._require_client().joined_rooms()
                    return room_id in getattr(resp, "rooms", [])

                await wait_for(online, timeout=60, every=0.2)
                assert gw.runtime.matrix is not None
                await asyncio.wait_for(gw.runtime.matrix.wait_caught_up(), 60)
                hs._requested_port = hs.port  # back on the same URL, as LocalSynapse.restart does
                await asyncio.to_thread(hs.stop)
                down_at = time.monotonic()
                for i in range(VICTIMS):
                    gw.sms_in(victim(i), f"Water rising, 4 of us on the roof, help ({i})")
                    await asyncio.sleep(0.2)

                async def answered() -> bool:
                    q = "SELECT COUNT(*) FROM inbox WHERE status='done'"
                    return (await gw.rows(q))[0][0] >= VICTIMS

                await wait_for(answered, timeout=300, every=0.2)
                await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
                dead_during = (await gw.rows("SELECT COUNT(*) FROM outbox WHERE status='dead'"))[0][
                    0
                ]
                await asyncio.to_thread(hs.start)
                back_at = time.time()

                async def drained() -> bool:
                    q = (
                        "SELECT COUNT(*) FROM outbox WHERE channel='matrix' "
                        "AND status IN ('queued','sending')"
                    )
                    return (await gw.rows(q))[0][0] == 0

                await wait_for(drained, timeout=300, every=0.2)
                rows = await gw.rows(
                    "SELECT status, sent_at FROM outbox WHERE channel='matrix' AND "
                    "(idem_key LIKE 'alert:case:%' OR idem_key LIKE 'alert:dispatch:%')"
                )
                cases = [r[0] for r in await gw.rows("SELECT case_code FROM incidents")]
            notices = await room_notices(coord, room_id)
        await coord.close()

    expected = 2 * VICTIMS
    sent = [r for r in rows if r[0] == "sent"]
    after = [r[1] - back_at for r in sent]
    in_order = 0
    for case in cases:
        mine = [n for n in notices if case in n and ("new case" in n or "DISPATCH" in n)]
        if len(mine) == 2 and "new case" in mine[0] and "DISPATCH REQUEST" in mine[1]:
            in_order += 1
    alerts = [n for n in notices if "new case" in n or "DISPATCH REQUEST" in n]
    late = sum("delivered late: homeserver was down" in n for n in alerts)
    other_late = sum("delivered late" in n for n in alerts) - late
    print(
        f"### Homeserver down during a surge: {VICTIMS} roof rescues by SMS, Synapse stopped "
        f"{OUTAGE_S:.0f} s (≈ 20× the old attempt budget of {QUEUE['max_attempts']} tries)\n"
    )
    print(
        table(
            [
                "alerts raised",
                "posted after recovery",
                "dead-lettered",
                "cases in order (new case → dispatch)",
                "say 'delivered late: homeserver was down'",
                "late, other reason",
                "posted, s after restart p50",
                "max",
            ],
            [
                (
                    expected,
                    len(alerts),
                    dead_during + (len(rows) - len(sent)),
                    f"{in_order}/{len(cases)}",
                    f"{late}/{len(alerts)}",
                    other_late,
                    median(after),
                    max(after) if after else float("nan"),
                )
            ],
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
