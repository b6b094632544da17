"""Modem pool + outbox lanes under broadcast load: two real libGammu dummy modems, real SQLite,
the real OutboxWorker and the gateway's own SMS sender (bot/senders.py). Rates are far above a
SIM's (tests must be fast); the pacing logic is the same at 20/min."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.models import Channel, Lane, Outbound
from bot.store import outbox, subscriptions
from bot.store.db import Database
from bot.transports.sms import Modem
from tests.harness.gateway import wait_for
from tests.harness.lanes import COORD, rig


async def kill_between_sends(modem: Modem) -> None:
    """Close ``modem`` right after it finished a send (never while SendSMS is in its thread, where
    the dummy would accept a message without recording it: a simulator artefact, not a loss)."""
    before = modem.health.sent
    deadline = time.monotonic() + 20
    while modem.health.sent == before:
        assert time.monotonic() < deadline, "modem sent nothing"
        await asyncio.sleep(0)
    await modem.close()


async def test_advisory_to_500_with_a_modem_killed_midway(tmp_path: Path) -> None:
    async with rig(tmp_path, per_minute=3000) as r:
        peers = await r.subscribe(500)
        reply = await r.broadcasts.command("advise", [], "ward-5 Boil drinking water.", COORD)
        assert "queued 500" in reply
        r.start_sending()
        sim2 = r.modems[1]
        await wait_for(lambda: _ready(sim2.health.sent >= 100), timeout=30, every=0.01)
        await kill_between_sends(sim2)
        killed_at = time.time()
        sent_by_sim2 = sim2.health.sent
        assert sim2.health.state == "down"
        await r.drained()
        got = r.sent()
    by_peer = Counter(m["to"] for m in got)
    assert set(by_peer) == set(peers)
    assert all(n == 1 for n in by_peer.values()), [p for p, n in by_peer.items() if n > 1]
    per_modem = Counter(m["modem"] for m in got)
    assert per_modem["sim2"] == sent_by_sim2 >= 100
    assert per_modem["sim1"] == 500 - sent_by_sim2
    assert not [m for m in got if m["modem"] == "sim2" and m["time"] > killed_at]
    assert all(m["text"] == "Lifeline advisory: Boil drinking water." for m in got)


async def _ready(value: bool) -> bool:
    return value


async def test_priority_reply_overtakes_the_advisory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed: list[str] = []  # the order the senders lease rows in (wire times of two modem
    real_claim = outbox.claim_next  # threads differ by scheduling jitter, not by priority)

    async def recording_claim(*args: Any, **kwargs: Any) -> outbox.OutboxRow | None:
        row = await real_claim(*args, **kwargs)
        if row is not None:
            claimed.append(row.peer)
        return row

    monkeypatch.setattr(outbox, "claim_next", recording_claim)
    async with rig(tmp_path, per_minute=1200) as r:  # 20 SMS/s over two modems
        await r.subscribe(200)
        await r.broadcasts.command("advise", [], "* Shelter at the school.", COORD)
        r.start_sending()
        await wait_for(
            lambda: r.count("SELECT COUNT(*) FROM outbox WHERE status='sent'"), every=0.01
        )
        await asyncio.sleep(0.5)
        async with r.db.transaction() as conn:
            for lane, who in ((Lane.REPLY, "+8801999000001"), (Lane.URGENT, "+8801999000002")):
                await outbox.enqueue(
                    conn,
                    Outbound(Channel.SMS, who, who, f"reply {lane.name}", f"r:{who}", lane),
                    now=time.time(),
                )
        queued_at = time.time()
        r.waker.wake()
        await r.drained()
        got = r.sent()
    replies = {m["to"]: m["time"] for m in got if m["to"].startswith("+8801999")}
    advisories = sorted(m["time"] for m in got if m["to"] not in replies)
    assert len(advisories) == 200 and len(replies) == 2
    for t in replies.values():
        # the next free send slot (50 ms per modem), not the queue's end (200 advisories, 5 s)
        assert t - queued_at < 3.0
        later = sum(1 for a in advisories if a > t)
        assert later > 0.75 * len(advisories)
    # the next two leases after the rows were queued: the life-threat reply first
    first = min(claimed.index(p) for p in replies)
    assert claimed[first : first + 2] == ["+8801999000002", "+8801999000001"], claimed[first:]


async def test_send_rate_per_modem_is_respected(tmp_path: Path) -> None:
    """What an operator counts: SMS per window per SIM. The pool paces token grants exactly (one
    per 60/rate s, a bucket of one, so at most rate*W + 1 per window W); the wire time of a send
    also depends on the modem thread (a poll pass in progress delays it), hence one more SMS of
    jitter allowance. The achieved rate must come close to the configured one."""
    per_s = 4.0
    async with rig(tmp_path, per_minute=int(per_s * 60)) as r:
        await r.subscribe(60)
        await r.broadcasts.command("advise", [], "ward-5 Rate check.", COORD)
        r.start_sending()

        async def both_sent_15() -> bool:
            per_modem = Counter(m["modem"] for m in r.sent())
            return per_modem["sim1"] >= 15 and per_modem["sim2"] >= 15

        await wait_for(both_sent_15, timeout=30, every=0.2)  # about 4 s at the configured rate
        got = r.sent()
    window = 2.0
    for name in ("sim1", "sim2"):
        times = sorted(m["time"] for m in got if m["modem"] == name)
        worst = max(sum(1 for u in times if t <= u < t + window) for t in times)
        assert worst <= per_s * window + 1 + 1, f"{name}: {worst} SMS within {window} s"
        # A delayed first send shortens the measured span: allow that one SMS of jitter, and
        # some wire-time noise on a loaded machine (the window check above bounds bursts).
        upper = (len(times) - 2) / (times[-1] - times[0])
        achieved = (len(times) - 1) / (times[-1] - times[0])
        assert upper <= 1.1 * per_s, f"{name}: {achieved:.2f}/s for {per_s}/s"
        assert achieved >= 0.5 * per_s, f"{name}: only {achieved:.2f}/s for {per_s}/s"


async def test_bad_number_is_dead_lettered_and_does_not_block(tmp_path: Path) -> None:
    bad = "+1234567890123456789012345"  # the network rejects it (ERR_INVALIDDATA)
    async with rig(tmp_path, per_minute=3000) as r:
        async with r.db.transaction() as conn:
            await subscriptions.join(conn, Channel.SMS, bad, "ward-5", "en", time.time())
        peers = await r.subscribe(20)
        reply = await r.broadcasts.command("advise", [], "ward-5 Move to high ground.", COORD)
        assert "queued 21" in reply
        r.start_sending()
        await r.drained()
        rows = await r.db.fetchall("SELECT peer, status, attempts, error FROM outbox")
        got = r.sent()
    dead = [x for x in rows if x["status"] == "dead"]
    assert [(x["peer"], x["attempts"]) for x in dead] == [(bad, 1)]
    assert "ERR_INVALIDDATA" in dead[0]["error"]
    assert sorted(m["to"] for m in got) == sorted(peers)


async def test_all_modems_down_retries_then_delivers(tmp_path: Path) -> None:
    """Both SIMs gone: rows wait on their retry schedule (not dead), then go out once back."""
    async with rig(tmp_path, per_minute=3000) as r:
        peers = await r.subscribe(3)
        await r.broadcasts.command("advise", [], "ward-5 Retry check.", COORD)
        r.start_sending()
        assert r.pool is not None
        for m in r.modems:
            await m.close()
        await wait_for(
            lambda: r.count("SELECT COUNT(*) FROM outbox WHERE error LIKE '%all modems failed%'"),
            every=0.05,
        )
        statuses = await r.db.fetchall("SELECT status, attempts FROM outbox")
        assert all(s["status"] in ("queued", "sending") for s in statuses)
        await r.stop_sending()
        await outbox.recover_after_crash(r.db, time.time())
        r.start_sending()  # the SIMs are back (fresh modems on the same devices)
        await r.drained(timeout=30)
        got = r.sent()
    assert sorted(m["to"] for m in got) == peers


async def test_one_message_per_recipient_in_flight(tmp_path: Path) -> None:
    """With several modems a victim's ack and reply would race; while one message to a number
    is being sent, the next one to that number waits (others do not)."""
    db = Database(tmp_path / "o.db")
    await db.open()
    try:
        async with db.transaction() as conn:
            for key, who in (("ack", "+8801700000001"), ("reply", "+8801700000001")):
                out = Outbound(Channel.SMS, who, who, key, f"{key}:1", Lane.URGENT)
                await outbox.enqueue(conn, out, now=1.0)
            other = Outbound(Channel.SMS, "+8801700000002", "+8801700000002", "x", "x:2")
            await outbox.enqueue(conn, other, now=1.0)
        first = await outbox.claim_next(db, Channel.SMS, now=2.0, lease_s=60)
        second = await outbox.claim_next(db, Channel.SMS, now=2.0, lease_s=60)
        assert first is not None and first.text == "ack"
        assert second is not None and second.peer == "+8801700000002"
        assert await outbox.claim_next(db, Channel.SMS, now=2.0, lease_s=60) is None
        await outbox.mark_sent(db, first.id, via="sim1", ref="r", now=3.0)
        third = await outbox.claim_next(db, Channel.SMS, now=3.0, lease_s=60)
        assert third is not None and third.text == "reply"
    finally:
        await db.close()
