"""Advisories and sitreps: STOP wins, per-fire idempotency (double fire, restart mid-fire, gateway
restart mid-broadcast), jobs re-registered from SQLite, the sitrep with its chart on a real Synapse.
Real SQLite, real libGammu dummy modems, real Synapse; fires are called directly (no waiting)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nio import RoomCreateResponse, RoomMessagesResponse
from pydantic import SecretStr

from bot import sms_text
from bot.commands import parse_command
from bot.models import Channel, Priority, Role, Team
from bot.queue import OutboxWorker, RetryPolicy, Waker
from bot.senders import matrix_sender
from bot.store import broadcasts as store
from bot.store import incidents, subscriptions
from bot.store.db import Database
from bot.synapse_local import Account, LocalSynapse
from bot.transports.matrix import MatrixTransport
from config.settings import MatrixSettings, MediaSettings
from handlers.broadcasts import Broadcasts, next_local_time, split_area
from handlers.context import Notifier, Services
from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.lanes import COORD, peer, rig
from tests.harness.synapse_server import register


def clear_of_slots(t: float, every_min: int, margin_s: float = 150.0) -> float:
    """``t``, moved a little later if it sits within ``margin_s`` of a slot boundary.

    Start-up catches up a slot that passed moments ago, so a test that runs right at :00 would
    see a fire it did not ask for; tests pin their clock clear of boundaries (and test the
    catch-up itself on purpose)."""
    interval = every_min * 60.0
    into = t % interval
    if into < margin_s:
        return t - into + margin_s
    if into > interval - margin_s:
        return t - into + interval + margin_s
    return t


# ---- STOP -----


async def test_stop_mid_broadcast_is_respected(tmp_path: Path) -> None:
    async with rig(tmp_path, per_minute=1200) as r:
        peers = await r.subscribe(200)
        early_stop = peers[150]
        async with r.db.transaction() as conn:
            await subscriptions.stop(conn, Channel.SMS, early_stop, time.time())
        reply = await r.broadcasts.command("advise", [], "ward-5 Evacuate to the school.", COORD)
        assert "queued 199" in reply
        r.start_sending()
        await wait_for(
            lambda: r.count("SELECT COUNT(*) FROM outbox WHERE status='sent'"), every=0.01
        )
        stoppers = peers[-5:]
        async with r.db.transaction() as conn:
            cancelled = [
                await subscriptions.stop(conn, Channel.SMS, p, time.time()) for p in stoppers
            ]
        stop_committed = time.time()
        assert cancelled == [1] * 5  # their advisory rows were still queued
        await r.drained()
        got = r.sent()
        rows = await r.db.fetchall(
            "SELECT peer, status, error FROM outbox WHERE peer IN (?,?,?,?,?)", stoppers
        )
    late = [m for m in got if m["to"] in stoppers and m["time"] > stop_committed]
    assert late == []
    assert not [m for m in got if m["to"] in (*stoppers, early_stop)]
    assert {(x["status"], x["error"]) for x in rows} == {("cancelled", "recipient sent STOP")}
    assert len(got) == 200 - 6


async def test_stop_racing_the_chunked_enqueue_wins(tmp_path: Path) -> None:
    async with rig(tmp_path, chunk_size=100) as r:
        peers = await r.subscribe(1000)
        last = peers[-1]
        b_task = asyncio.create_task(
            r.broadcasts.command("advise", [], "ward-5 Water rising.", COORD)
        )
        # STOP commits while the first chunks are being enqueued, before the last chunk.
        await wait_for(lambda: r.count("SELECT COUNT(*) FROM outbox"), every=0.001)
        async with r.db.transaction() as conn:
            await subscriptions.stop(conn, Channel.SMS, last, time.time())
        reply = await b_task
        queued = await r.count("SELECT COUNT(*) FROM outbox WHERE status='queued'")
        mine = await r.db.fetchall("SELECT status FROM outbox WHERE peer=?", (last,))
    assert queued == 999
    assert [x[0] for x in mine] in ([], ["cancelled"])
    assert "queued 999" in reply or "queued 1000" in reply


# ---- per-fire idempotency ------------------------------------------------------------------------


async def test_double_fire_sends_one_copy_each(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.broadcasts.start()  # a running scheduler: jobs get their real settings
        peers = await r.subscribe(120)
        reply = await r.broadcasts.command(
            "broadcast",
            ["every", "60", "ward-5", "Boil", "water"],
            "every 60 ward-5 Boil water",
            COORD,
        )
        assert "queued 120" in reply and "every 60 min" in reply
        (b,) = [x for x in await store.active(r.db) if x.kind == "advisory"]
        assert b.every_min == 60
        first = await r.broadcasts.fire(b, b.run_at)  # the same slot again: nothing new
        assert first.already_done
        # Two concurrent fires of the next slot, e.g. a job run plus a catch-up after restart.
        nxt = b.run_at + 3600 + 12.0  # any time within the slot rounds to the same key
        res = await asyncio.gather(r.broadcasts.fire(b, b.run_at + 3600), r.broadcasts.fire(b, nxt))
        assert sorted(x.new_rows for x in res) == [0, 120]
        # The APScheduler job body itself, twice in the same slot.
        job = r.broadcasts.scheduler.job(f"broadcast:{b.id}")
        assert job is not None and job.coalesce and job.misfire_grace_time == 300
        await job.func()
        await job.func()
        r.start_sending()
        await r.drained()
        got = r.sent()
        fires = await store.fires_of(r.db, b.id)
    by_peer = Counter(m["to"] for m in got)
    slots_fired = len({k for k, _, _ in fires})
    assert set(by_peer) == set(peers)
    assert set(by_peer.values()) == {slots_fired}  # exactly one copy per peer per fire
    assert all(status == "done" and n == 120 for _, status, n in fires)


async def test_repeated_advise_command_is_not_a_second_advisory(tmp_path: Path) -> None:
    """A re-processed (or double-sent) !advise reuses the first advisory: no second copy."""
    async with rig(tmp_path) as r:
        await r.subscribe(30)
        one = await r.broadcasts.command("advise", [], "ward-5 Boil water", COORD)
        two = await r.broadcasts.command("advise", [], "ward-5 Boil water", COORD)
        other = await r.broadcasts.command("advise", [], "ward-5 Boil water twice", COORD)
        n = await r.count("SELECT COUNT(*) FROM outbox")
    assert "queued 30" in one and "already sent" in two and "no second copy" in two
    assert "queued 30" in other
    assert n == 60


async def test_send_now_after_the_same_advisory_was_scheduled_is_a_new_advisory(
    tmp_path: Path,
) -> None:
    """ "!advise ward-5 Boil water at HH:MM" then "!advise ward-5 Boil water": the second sends
    now and the scheduled one stays scheduled (it used to fire early and say "already sent");
    a scheduled one after a send-now is scheduled too. Only send-now twins are duplicates."""
    async with rig(tmp_path) as r:
        await r.subscribe(30)
        at = time.localtime(time.time() + 3 * 3600)
        hhmm = f"{at.tm_hour:02d}:{at.tm_min:02d}"
        later = await r.broadcasts.command("advise", [], f"ward-5 Boil water at {hhmm}", COORD)
        now = await r.broadcasts.command("advise", [], "ward-5 Boil water", COORD)
        again = await r.broadcasts.command("advise", [], "ward-5 Boil water", COORD)
        twice = await r.broadcasts.command("advise", [], f"ward-5 Boil water at {hhmm}", COORD)
        n = await r.count("SELECT COUNT(*) FROM outbox")
        rows = await r.db.fetchall("SELECT id, status FROM broadcasts WHERE kind='advisory'")
        r.broadcasts.scheduler.shutdown()
    assert f"scheduled for {hhmm}" in later
    assert "queued 30" in now and "already sent" not in now
    assert "already sent" in again and "no second copy" in again
    assert f"already scheduled for {hhmm}" in twice
    assert n == 30  # the send-now only; the scheduled copy waits for its time
    assert [tuple(x) for x in rows] == [(1, "active"), (2, "done")]


async def test_restart_mid_fire_resumes_without_duplicates(tmp_path: Path) -> None:
    async with rig(tmp_path, chunk_size=50) as r:
        peers = await r.subscribe(400)
        task = asyncio.create_task(r.broadcasts.command("advise", [], "* Stay indoors.", COORD))
        await wait_for(lambda: _at_least(r, 100), every=0.001)
        task.cancel()  # the process dies between two chunk transactions
        with contextlib.suppress(asyncio.CancelledError):
            await task
        part = await r.count("SELECT COUNT(*) FROM outbox")
        assert 100 <= part < 400
        (fire,) = await store.unfinished_fires(r.db)
        await r.db.close()

        db = Database(r.settings.storage.path)  # "restart"
        await db.open()
        r.db = db
        services = Services(db=db, settings=r.settings, clock=time.time, notifier=Notifier())
        again = Broadcasts(services, chunk_size=50)
        await again.start()
        again.scheduler.shutdown()
        assert await store.unfinished_fires(db) == []
        assert await store.fire_status(db, fire[0], fire[1]) == "done"
        r.start_sending()
        await r.drained()
        got = r.sent()
    assert sorted(m["to"] for m in got) == peers


async def _at_least(r: Any, n: int) -> bool:
    return bool(await r.count("SELECT COUNT(*) FROM outbox") >= n)


async def test_gateway_restart_mid_broadcast_sends_no_duplicates(
    tmp_path: Path, ollama_standin: Any
) -> None:
    """A repeating advisory whose slot passed while the gateway was down is caught up at start
    (within the misfire grace); the gateway is stopped mid-drain and restarted: one copy each."""
    settings = make_settings(tmp_path, ollama_standin.url, broadcasts={"sitrep_every_min": 0})
    db = Database(settings.storage.path)
    await db.open()
    now = time.time()
    peers = [peer(i) for i in range(10)]
    async with db.transaction() as conn:
        for p in peers:
            await subscriptions.join(conn, Channel.SMS, p, "ward-5", "en", now)
        bid = await store.create(
            conn,
            kind="advisory",
            area="ward-5",
            text="Boats leave the ghat at 6.",
            every_min=60,
            run_at=store.floor_minute(now),
            created_by=COORD,
            now=now,
        )
    await db.close()
    async with running_gateway(settings) as gw:
        await gw.wait_sent(peers[0], 1)

        async def sent_rows() -> int:
            row = await gw.rows("SELECT COUNT(*) FROM outbox WHERE status='sent'")
            return int(row[0][0])

        before = await sent_rows()
        while await sent_rows() == before:  # stop right after a send was recorded
            await asyncio.sleep(0.005)
        first_run = len(gw.sent())
    assert 0 < first_run < len(peers)
    async with running_gateway(settings) as gw:
        await gw.idle(timeout=30)
        got = gw.sent()
        fires = await gw.rows(
            "SELECT fire_key, status FROM broadcast_fires WHERE broadcast_id=?", bid
        )
    assert sorted(m["to"] for m in got) == peers
    assert [tuple(f) for f in fires] == [(store.fire_key(store.floor_minute(now)), "done")]


# ---- scheduling -----


async def test_jobs_survive_restart_and_cancel_withdraws(tmp_path: Path) -> None:
    fake = [clear_of_slots(time.time(), 15)]  # 15 | 30: clear of sitrep and advisory slots
    to_curfew = next_local_time(fake[0], 21, 30) - fake[0]
    if to_curfew < 300 or to_curfew > 86400 - 300:
        fake[0] += 900  # clear of the 21:30 the one-shot is scheduled for (keeps slot clearance)
    async with rig(tmp_path) as r:
        await r.subscribe(40)
        services = Services(
            db=r.db,
            settings=r.settings.model_copy(
                update={
                    "broadcasts": r.settings.broadcasts.model_copy(update={"sitrep_every_min": 30})
                }
            ),
            clock=lambda: fake[0],
            notifier=Notifier("!ops:localhost"),
        )
        b1 = Broadcasts(services)
        await b1.start()
        rep = await say(b1, "!broadcast every 15 ward-5 Boil water")
        at = await say(b1, "!advise ward-5 Curfew tonight at 21:30")
        assert "scheduled for 21:30" in at
        ids1 = {j.id: j for j in b1.scheduler.jobs()}
        b1.scheduler.shutdown()
        assert len(ids1) == 3  # sitrep, repeating advisory, one-shot
        listing = await say(b1, "!broadcast list")
        assert "every 15 min" in listing and "once at 21:30" in listing and "sitrep" in listing

        b2 = Broadcasts(services)  # restart: jobs come back from the table
        await b2.start()
        ids2 = {j.id: j for j in b2.scheduler.jobs()}
        assert ids2.keys() == ids1.keys()
        for k, j in ids2.items():
            assert j.next_run_at == ids1[k].next_run_at and j.every_s == ids1[k].every_s
        oneshot = next(k for k, j in ids2.items() if j.every_s is None)
        assert abs(ids2[oneshot].next_run_at - next_local_time(fake[0], 21, 30)) < 1  # type: ignore[operator]

        rep_id = int(rep.split("#")[1].split()[0])
        assert "queued 40" in rep
        await r.db.execute("UPDATE outbox SET status='queued'")  # pretend none went out yet
        cancel = await say(b2, f"!broadcast cancel {rep_id}")
        assert "40 queued message(s) withdrawn" in cancel
        assert f"broadcast:{rep_id}" not in {j.id for j in b2.scheduler.jobs()}
        assert (await store.get(r.db, rep_id)).status == "cancelled"  # type: ignore[union-attr]

        # The one-shot's time passes while the gateway is down, beyond the grace: recorded, told.
        b2.scheduler.shutdown()
        fake[0] = next_local_time(fake[0], 21, 30) + 3600
        b3 = Broadcasts(services)
        await b3.start()
        b3.scheduler.shutdown()
        one_id = int(oneshot.split(":")[1])
        assert (await store.get(r.db, one_id)).status == "missed"  # type: ignore[union-attr]
        note = await r.db.fetchall("SELECT text FROM outbox WHERE channel='matrix'")
        assert any(f"#{one_id}" in x[0] and "NOT sent" in x[0] for x in note)
        assert (await say(b3, "!broadcast every x ward-5 hi")).startswith("Minutes must")
        assert (await say(b3, "!broadcast every 5")).startswith("Usage")
        assert (await say(b3, "!advise ward-5")).startswith("Usage")
        assert "No broadcast #999" in await say(b3, "!broadcast cancel 999")


async def say(b: Broadcasts, text: str) -> str:
    """What ResponderFlow hands over for a coordinator's command (same parser)."""
    cmd = parse_command(text)
    assert cmd is not None
    return await b.command(cmd.name, cmd.args, cmd.rest, COORD)


def test_split_area_and_times() -> None:
    assert split_area('"char bhadrasan" Boats at 6') == ("char bhadrasan", "Boats at 6")
    assert split_area("ward-5 Boil water") == ("ward-5", "Boil water")
    same = {subscriptions.normalise_area(a) for a in ("Ward-5", "ward 5", " WARD_5", "ward  -5")}
    assert same == {"ward 5"}
    t = next_local_time(1_700_000_000.0, 6, 0)
    assert 0 < t - 1_700_000_000.0 <= 86400
    b = store.Broadcast(1, "advisory", "x", "t", 60, 3600.0, "active", "c", 0.0, 0.0)
    assert b.slot_at(3599.0) == 3600.0  # a run a moment early counts as its slot
    assert b.slot_at(3600.0 + 3500.0) == 3600.0
    assert b.slot_at(3600.0 + 3590.0) == 7200.0  # 10 s early: the next slot
    assert b.slot_at(100.0) is None
    assert store.fire_key(3600.0 + 29) == store.fire_key(3600.0) == "19700101T0100Z"


# ---- sitrep on a real Synapse -----


async def test_sitrep_posted_to_synapse_with_chart(
    synapse: LocalSynapse,
    new_user: Callable[[str], Account],
    user_client: Any,
    tmp_path: Path,
) -> None:
    bot_acct, coord = register(synapse, "bot"), new_user("coord")
    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    db = Database(settings.storage.path)
    await db.open()
    now = time.time()
    await incidents.sync_teams(
        db, [Team("boat-1", "boat", "ghat", 8), Team("med-1", "medical", "", 4)], now
    )
    async with db.transaction() as conn:
        for i, pr in enumerate([Priority.CRITICAL, Priority.HIGH, Priority.HIGH, Priority.LOW]):
            inc = await incidents.create(
                conn,
                channel=Channel.SMS,
                reporter=peer(i),
                conversation=peer(i),
                priority=pr,
                lang="en",
                summary="stuck",
                now=now - 3600 * (3 - i),
            )
        await incidents.create_dispatch(
            conn,
            incident_id=inc.id,
            kind="boat",
            status="assigned",
            priority=Priority.LOW,
            location="ghat",
            people_count=1,
            needs="",
            idem_key="d1",
            requested_by="t",
            now=now - 1800,
        )
        await conn.execute("UPDATE dispatches SET team_id='boat-1'")
        await incidents.set_team_status(conn, "boat-1", "busy", now)

    cc = await user_client(coord)
    transport = MatrixTransport(
        MatrixSettings(
            homeserver=synapse.url,
            user_id=bot_acct.user_id,
            password=SecretStr(bot_acct.password),
            store_path=tmp_path / "store",
            encryption=False,
            sync_timeout_s=2.0,
        ),
        MediaSettings(dir=tmp_path / "media"),
        load_token=_no_token,
        on_batch=_ignore_batch,
        role_of=lambda p: Role.COORDINATOR if p == coord.user_id else Role.PUBLIC,
    )
    await transport.start()
    sync = asyncio.create_task(transport.run())
    resp = await cc.room_create(invite=[bot_acct.user_id], name="ops")
    assert isinstance(resp, RoomCreateResponse)
    room = resp.room_id
    await wait_for(lambda: _has_room(transport, room), timeout=20)

    async def status() -> str:
        return "outbox: queued 0\nmodem sim1: up, signal 80%"

    fixed = clear_of_slots(now, settings.broadcasts.sitrep_every_min)
    services = Services(db=db, settings=settings, clock=lambda: fixed, notifier=Notifier(room))
    waker = Waker()
    b = Broadcasts(services, status=status, on_enqueued=waker.wake)
    worker = OutboxWorker(
        db,
        channel=Channel.MATRIX,
        sender=matrix_sender(transport),
        concurrency=1,
        max_attempts=4,
        retry=RetryPolicy(4, 0.2, 1.0),
        lease_s=60,
        waker=waker,
        clock=time.time,
    )
    send_task = asyncio.create_task(worker.run())
    try:
        await b.start()
        first = await b.fire_sitrep_now()
        second = await b.fire_sitrep_now()  # double fire of the same slot
        assert first is not None and first.new_rows == 2
        assert second is not None and second.already_done
        await wait_for(lambda: _matrix_sent(db, 2), timeout=30)
        msgs = await cc.room_messages(room, start="", limit=50)
        assert isinstance(msgs, RoomMessagesResponse)
        mine = [
            e.source
            for e in msgs.chunk
            if getattr(e, "sender", None) == bot_acct.user_id
            and e.source["type"] == "m.room.message"
        ]
        texts = [e for e in mine if e["content"]["msgtype"] == "m.notice"]
        images = [e for e in mine if e["content"]["msgtype"] == "m.image"]
        assert len(texts) == 1 and len(images) == 1
        body = texts[0]["content"]["body"]
        assert body.startswith("SITREP") and "4 open case(s)" in body
        assert "critical 1, high 2, medium 0, low 1" in body
        assert "teams: 1 available, 1 busy (boat-1)" in body
        assert "modem sim1: up" in body  # the status section (queues, modems, model)
        assert images[0]["content"]["body"] == "sitrep chart"
        dl = await cc.download(mxc=images[0]["content"]["url"])
        assert dl.body.startswith(b"\x89PNG") and images[0]["content"]["info"]["w"] == 800
    finally:
        b.scheduler.shutdown()
        for t in (send_task, sync):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await transport.close()
        await db.close()


async def _no_token() -> str | None:
    return None


async def _ignore_batch(_batch: list[Any], _token: str) -> None:
    return None


async def _has_room(t: MatrixTransport, room: str) -> bool:
    return room in t._require_client().rooms


async def _matrix_sent(db: Database, n: int) -> bool:
    row = await db.fetchone("SELECT COUNT(*) FROM outbox WHERE channel='matrix' AND status='sent'")
    dead = await db.fetchall("SELECT error FROM outbox WHERE status='dead'")
    assert not dead, [d[0] for d in dead]
    return row is not None and int(row[0]) >= n


async def test_sitrep_slot_just_passed_is_caught_up_once_at_start(tmp_path: Path) -> None:
    """First start 30 s after :00 posts the :00 sitrep (once, even across a restart); a start in
    the middle of a slot posts nothing until the next slot."""
    async with rig(tmp_path) as r:
        hour = 3600.0 * (time.time() // 3600)
        fake = [hour + 30]
        hourly = r.settings.broadcasts.model_copy(update={"sitrep_every_min": 60})
        services = Services(
            db=r.db,
            settings=r.settings.model_copy(update={"broadcasts": hourly}),
            clock=lambda: fake[0],
            notifier=Notifier("!ops:localhost"),
        )

        async def sitrep_rows() -> list[str]:
            rows = await r.db.fetchall("SELECT idem_key FROM outbox WHERE channel='matrix'")
            return sorted(x[0] for x in rows)

        for _ in range(2):  # start, then a restart within the same slot
            b = Broadcasts(services)
            await b.start()
            b.scheduler.shutdown()
            key = store.fire_key(hour)
            assert await sitrep_rows() == [
                f"sitrep:{b.sitrep_id}:{key}:chart",
                f"sitrep:{b.sitrep_id}:{key}:text",
            ]
        fake[0] = hour + 3600 + 1800  # next start mid-slot: that slot was missed beyond grace
        b = Broadcasts(services)
        await b.start()
        b.scheduler.shutdown()
        assert len(await sitrep_rows()) == 2
        fake[0] = hour + 2 * 3600 - 10  # 10 s before a slot: not "passed while stopped"
        b = Broadcasts(services)
        await b.start()
        b.scheduler.shutdown()
        assert len(await sitrep_rows()) == 2


async def test_multi_word_area_without_quotes_and_unknown_area_warning(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        async with r.db.transaction() as conn:
            for i in range(3):
                await subscriptions.join(conn, Channel.SMS, peer(i), "Char Bhadrasan", "en", 1.0)
        reply = await r.broadcasts.command(
            "advise", [], "Char Bhadrasan Water expected to rise 1 m tonight.", COORD
        )
        assert "to char bhadrasan: queued 3" in reply and "WARNING" not in reply
        texts = await r.db.fetchall("SELECT DISTINCT text FROM outbox WHERE channel='sms'")
        assert [t[0] for t in texts] == ["Lifeline advisory: Water expected to rise 1 m tonight."]
        typo = await r.broadcasts.command("advise", [], "Chor Boats at 6.", COORD)
        assert "queued 0" in typo
        assert "nobody has joined 'chor' (known areas: char bhadrasan (3))" in typo
        assert "quote an area of several words" in typo  # "Chor" may be the start of a name
        quoted = await r.broadcasts.command("advise", [], '"Char Bhadrason" Boats at 6.', COORD)
        assert "nobody has joined 'char bhadrason'" in quoted
        assert "quote" not in quoted.lower()  # it was quoted: no advice to quote it


async def test_same_advisory_after_people_joined_reaches_only_the_new_ones(
    tmp_path: Path,
) -> None:
    """!advise to an area nobody has joined yet, people join, the same !advise again (also from
    another coordinator): the newcomers get it, nobody gets a second copy (dedup by recipient)."""
    async with rig(tmp_path) as r:
        first = await r.broadcasts.command("advise", [], "ward-7 Boil drinking water.", COORD)
        assert "queued 0" in first and "nobody has joined 'ward 7'" in first
        early = await r.subscribe(3, area="ward-7")
        second = await r.broadcasts.command("advise", [], "ward-7 Boil drinking water.", COORD)
        assert "already sent" in second and "queued 3 for people who joined since" in second
        late = await r.subscribe(2, area="Ward 7", first=10)
        third = await r.broadcasts.command(
            "advise", [], "ward-7 Boil drinking water.", "@other-coord:localhost"
        )
        assert "no second copy to its 3 recipient(s); queued 2" in third
        again = await r.broadcasts.command("advise", [], "ward-7 Boil drinking water.", COORD)
        assert "queued 0 for people who joined since" in again
        rows = await r.db.fetchall("SELECT peer, text FROM outbox WHERE channel='sms'")
        advisories = await r.db.fetchall("SELECT id FROM broadcasts WHERE kind='advisory'")
        r.start_sending()
        await r.drained()
        got = r.sent()
    assert sorted(x[0] for x in rows) == sorted(early + late)
    assert len(advisories) == 1
    assert Counter(m["to"] for m in got) == Counter(early + late)
    assert {m["text"] for m in got} == {"Lifeline advisory: Boil drinking water."}


async def test_advisory_sms_names_the_sender_within_the_budget(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.subscribe(2)
        budget = r.settings.sms.segment_budget
        long_text = "Move to the school now. " * 40
        reply = await r.broadcasts.command("advise", [], f"ward-5 {long_text}", COORD)
        short = await r.broadcasts.command("advise", [], "ward-5 Boats at the ghat.", COORD)
        texts = [x[0] for x in await r.db.fetchall("SELECT text FROM outbox ORDER BY id")]
    assert f"text shortened to {budget} SMS" in reply
    assert "shortened" not in short
    assert all(t.startswith("Lifeline advisory: ") for t in texts)
    assert all(sms_text.segments(t) <= budget for t in texts)
