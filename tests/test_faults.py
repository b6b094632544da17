"""Faults on the SMS/model side, in process against real components: a model that is down, dies
mid-turn, is slow, answers garbage or nothing; a modem that stops answering; a database that is
full; WAL growth under load. Single-message failure modes are in tests/test_gateway_sms.py; here
the backlog: order, priority, one degraded reply each, and the drain when the model returns."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.sim import inbox_files, inject_sms
from tests.harness.gateway import Gateway, make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import (
    OllamaStandIn,
    Spec,
    busy,
    delayed,
    empty_reply,
    garbage,
    http_error,
    text_reply,
)

MEDIUM = [
    ("+8801711000001", "when does the relief camp at Ulipur open?"),
    ("+8801711000002", "is the road to Kurigram flooded?"),
    ("+8801711000001", "and do they have drinking water there?"),  # same sender: after the first
    ("+8801711000003", "where can we get dry food in Chilmari"),
]
CRITICAL = [
    ("+8801799000001", "my child is drowning, water over the roof"),
    ("+8801799000002", "man unconscious and not breathing, water rising fast"),
]


def user_text(body: dict[str, Any]) -> str:
    msgs = body.get("messages") or []
    return next((m["content"] for m in reversed(msgs) if m.get("role") == "user"), "")


def served_order(standin: OllamaStandIn, texts: list[str]) -> list[str]:
    """Message texts in the order the model was asked about them (first successful turn)."""
    order: list[str] = []
    for body in standin.chat_requests:
        u = user_text(body)
        for t in texts:
            if t in u and t not in order:
                order.append(t)
    return order


async def count(gw: Gateway, sql: str, *params: Any) -> int:
    return int((await gw.rows(sql, *params))[0][0])


async def inject_backlog(gw: Gateway) -> None:
    for number, text in [*MEDIUM, *CRITICAL]:
        gw.sms_in(number, text)

    async def all_in() -> bool:
        return await count(gw, "SELECT COUNT(*) FROM inbox") == len(MEDIUM) + len(CRITICAL)

    await wait_for(all_in, timeout=15)


async def assert_drained(gw: Gateway, bad_turns: int = 0) -> None:
    await gw.idle(timeout=40)
    rows = await gw.rows("SELECT status, attempts FROM inbox")
    assert {r[0] for r in rows} == {"done"}
    assert max(r[1] for r in rows) <= 1 + bad_turns, "a model outage must not spend attempts"
    keys = [r[0] for r in await gw.rows("SELECT idem_key FROM outbox")]
    inbox_ids = [r[0] for r in await gw.rows("SELECT id FROM inbox")]
    assert {int(k.split(":")[1]) for k in keys if k.startswith("reply:")} == set(inbox_ids)
    fallbacks = Counter(k for k in keys if k.startswith("fallback:"))
    assert all(n == 1 for n in fallbacks.values())


def assert_priority_then_fifo(order: list[str]) -> None:
    crit = [t for _, t in CRITICAL]
    assert set(order[:2]) == set(crit), order  # life threat first once the model is back
    mine = [t for n, t in MEDIUM if n == "+8801711000001"]
    assert order.index(mine[0]) < order.index(mine[1]), order  # per-conversation order


async def test_model_down_at_start_backlog_drains_by_priority(tmp_path: Path) -> None:
    port_holder = OllamaStandIn().start()
    url, port = port_holder.url, port_holder.port
    port_holder.stop()
    settings = make_settings(tmp_path, url, queue={"retry_base_s": 0.3, "retry_max_s": 1})
    async with running_gateway(settings) as gw:
        assert not gw.runtime.llm.health.ok
        await inject_backlog(gw)
        # every victim hears back without the model: ack + one degraded reply each
        for number in {n for n, _ in [*MEDIUM, *CRITICAL]}:
            sent = await gw.wait_sent(number, 2, timeout=30)
            assert "received" in sent[0]["text"]
            assert any("queued for a responder" in m["text"] for m in sent[1:])
        assert await count(gw, "SELECT COUNT(*) FROM inbox WHERE status='done'") == 0
        status = await gw.app.status_text(gw.runtime)
        assert "DOWN" in status and "oldest waiting" in status
        with OllamaStandIn(port=port, default=delayed(0.05, text_reply("Answer."))) as standin:
            await assert_drained(gw)
            order = served_order(standin, [t for _, t in [*MEDIUM, *CRITICAL]])
        assert_priority_then_fifo(order)
        assert len(order) == len(MEDIUM) + len(CRITICAL)


async def test_model_dies_mid_turn_then_returns(tmp_path: Path) -> None:
    standin = OllamaStandIn(default=delayed(5.0, text_reply("slow answer"))).start()
    port = standin.port
    settings = make_settings(tmp_path, standin.url, queue={"retry_base_s": 0.3, "retry_max_s": 1})
    async with running_gateway(settings) as gw:
        await inject_backlog(gw)
        await asyncio.to_thread(standin.wait_for_requests, 1, "chat", 15)
        standin.stop()  # the server process dies with a turn in flight
        sent = await gw.wait_sent(MEDIUM[0][0], 2, timeout=20)
        assert any("queued for a responder" in m["text"] for m in sent)
        assert await count(gw, "SELECT COUNT(*) FROM inbox WHERE status='dead'") == 0
        with OllamaStandIn(port=port, default=text_reply("Back.")) as back:
            await assert_drained(gw)
            order = served_order(back, [t for _, t in [*MEDIUM, *CRITICAL]])
        assert_priority_then_fifo(order)
        turns = await gw.rows("SELECT ok, error FROM model_turns WHERE ok=0")
        assert turns and all(r[1] for r in turns)  # each failure recorded with its reason


async def test_every_model_failure_mode_with_a_backlog(tmp_path: Path) -> None:
    failures: list[Spec] = [
        busy(),
        garbage(),
        http_error(500, "llama runner process has terminated: exit status 2"),
        delayed(2.0, text_reply("too slow")),  # timeout_s is 1
        empty_reply(),
        empty_reply(),  # re-prompted once, then the turn fails
        {"close": True, "partial": True},
    ]
    lock = threading.Lock()
    left = list(failures)

    def hook(body: dict[str, Any]) -> Spec:
        with lock:
            return left.pop(0) if left else text_reply("Real answer.")

    with OllamaStandIn(hook=hook) as standin:
        settings = make_settings(
            tmp_path,
            standin.url,
            model={"host": standin.url, "timeout_s": 1, "connect_timeout_s": 1},
            queue={"retry_base_s": 0.2, "retry_max_s": 0.5},
        )
        async with running_gateway(settings) as gw:
            await inject_backlog(gw)
            await assert_drained(gw, bad_turns=1)  # empty twice: that message's failure
            texts = {m["text"] for m in gw.sent()}
            assert not any("too slow" in t for t in texts)
            real = [m for m in gw.sent() if "Real answer." in m["text"]]
            assert len(real) == len(MEDIUM) + len(CRITICAL)
            errors = [r[0] for r in await gw.rows("SELECT error FROM model_turns WHERE ok=0")]
        assert len(errors) >= 5, errors
        joined = " ".join(errors)
        for word in ("busy", "empty reply"):
            assert word in joined, errors
        assert not left


# ---- modem ---------------------------------------------------------------------------------


async def test_modem_error_is_visible_and_recovers_without_a_human(
    tmp_path: Path, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(tmp_path, ollama_standin.url)
    modem = settings.sms.modems[0].model_copy(update={"read_timeout_s": 1.0})
    settings = settings.model_copy(
        update={"sms": settings.sms.model_copy(update={"modems": [modem]})}
    )
    async with running_gateway(settings) as gw:
        gw.sms_in("+8801711000001", "is the camp open?")
        await gw.wait_sent("+8801711000001", 2)
        # The modem stops answering: a named pipe in the SIM store makes GetNextSMS block.
        slot = gw.device / "sms" / "1" / "1"
        os.mkfifo(slot)
        inject_sms(gw.device, "+8801711000002", "water entering the house")

        async def down() -> str | None:
            text = await gw.app.status_text(gw.runtime)
            line = next(ln for ln in text.splitlines() if ln.startswith("modem sim1"))
            return line if ("down" in line or "reinit" in line) and "last error" in line else None

        line = await wait_for(down, timeout=10)
        assert "last error" in line
        assert any(
            "DOWN" in r.getMessage()
            for r in caplog.records
            if r.name.startswith("bot.transports.sms")
        )
        _unblock_fifo_readers(slot)
        slot.unlink()  # the fault clears (modem answers again): the watchdog re-inits alone
        sent = await gw.wait_sent("+8801711000002", 1, timeout=20)
        assert "received" in sent[0]["text"]
        status = await gw.app.status_text(gw.runtime)
        assert "modem sim1: up" in status and "errors 0" in status
        assert any("UP again" in r.getMessage() for r in caplog.records)


def _unblock_fifo_readers(path: Path) -> None:
    """A reader abandoned on the pipe stays blocked in open(); a writer opening it frees it."""
    import contextlib

    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)


async def test_one_unreadable_sim_slot_does_not_block_other_messages(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    async with running_gateway(make_settings(tmp_path, ollama_standin.url)) as gw:
        (gw.device / "sms" / "1").mkdir(parents=True, exist_ok=True)
        (gw.device / "sms" / "1" / "1").write_bytes(b"corrupt PDU from a flaky SIM")
        inject_sms(gw.device, "+8801711000002", "trapped on the roof with 3 children")
        sent = await gw.wait_sent("+8801711000002", 1, timeout=8)
        assert "received" in sent[0]["text"]


# ---- storage -------------------------------------------------------------------------------


async def test_database_full_refuses_to_ack_and_keeps_the_sms_on_the_sim(
    tmp_path: Path, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_gateway(make_settings(tmp_path, ollama_standin.url)) as gw:
        gw.sms_in("+8801711000001", "is the camp open?")
        await gw.wait_sent("+8801711000001", 2)
        await gw.idle()
        pages = (await gw.rows("PRAGMA page_count"))[0][0]
        await gw.rows(f"PRAGMA max_page_count = {pages}")  # the disk is full now
        victim = "+8801722000002"
        # ~7,000 chars (46 parts): bigger than a page, so the row needs new (overflow) pages
        gw.sms_in(victim, "Water rising fast at Rajibpur, 6 people on the roof. " * 130)

        async def failed_store() -> bool:
            return any(
                "storing" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records
            )

        await wait_for(failed_store, timeout=10)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("full" in str(r.exc_info[1]) for r in errors if r.exc_info), errors
        await asyncio.sleep(1.0)  # several more poll passes
        assert inbox_files(gw.device), "the SMS must stay on the SIM until it is committed"
        assert gw.sent_to(victim) == []  # no ack for something not stored
        assert await count(gw, "SELECT COUNT(*) FROM inbox WHERE peer=?", victim) == 0
        modem = gw.runtime.pool.health()[0] if gw.runtime.pool else None
        assert modem is not None and modem.last_error and "on_receive failed" in modem.last_error
        # space again (an operator freed the disk): the very same SMS is read and answered
        await gw.rows("PRAGMA max_page_count = 1073741823")
        sent = await gw.wait_sent(victim, 1, timeout=15)
        assert "received" in sent[0]["text"]
        assert not inbox_files(gw.device)
        assert await count(gw, "SELECT COUNT(*) FROM inbox WHERE peer=?", victim) == 1


async def test_wal_stays_bounded_under_a_1000_message_run(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    n = 1000
    settings = make_settings(tmp_path, ollama_standin.url, queue={"per_sender_per_hour": 1000})
    wal = Path(str(settings.storage.path) + "-wal")
    biggest = 0
    written_before = _write_bytes()
    async with running_gateway(settings) as gw:
        for i in range(n):
            inject_sms(gw.device, f"+88017{i:08d}", f"JOIN area {i}")  # fast path: no model

        async def done() -> bool:
            nonlocal biggest
            if wal.exists():
                biggest = max(biggest, wal.stat().st_size)
            return await count(gw, "SELECT COUNT(*) FROM inbox WHERE status='done'") == n

        await wait_for(done, timeout=150, every=0.1)
        rows = await count(gw, "SELECT COUNT(*) FROM outbox")
    written = _write_bytes() - written_before
    page = 4096
    bound = 3 * 1000 * page  # wal_autocheckpoint=1000 pages, plus the transaction in flight
    assert rows == n  # one reply each: inbox, subscription and outbox writes per message
    assert written > 2 * bound, f"the run wrote only {written} bytes: the check would be vacuous"
    assert biggest <= bound, f"WAL grew to {biggest} bytes"


def _write_bytes() -> int:
    """Bytes this process caused to be written (Linux /proc/self/io)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def test_storage_error_class_is_raised_for_a_full_database(tmp_path: Path) -> None:
    """The building block the gateway relies on: a full DB surfaces as an exception (never a
    silent no-op), from the statement or from COMMIT."""
    from bot.store.db import Database, StorageError

    async def go() -> None:
        db = Database(tmp_path / "x.db")
        await db.open()
        try:
            pages = (await db.fetchone("PRAGMA page_count"))[0]  # type: ignore[index]
            await db.fetchone(f"PRAGMA max_page_count = {pages}")
            with pytest.raises((StorageError, sqlite3.OperationalError), match="full"):
                async with db.transaction() as conn:
                    await conn.execute("CREATE TABLE big (x)")
                    for _ in range(50):
                        await conn.execute("INSERT INTO big VALUES (?)", (os.urandom(2000),))
        finally:
            await db.close()

    asyncio.run(go())


def test_cancelled_transaction_does_not_poison_the_connection(tmp_path: Path) -> None:
    from bot.store.db import Database

    async def go() -> int:
        db = Database(tmp_path / "c.db")
        await db.open()
        try:

            async def write(key: str) -> None:
                async with db.transaction() as conn:
                    await conn.execute(
                        "INSERT OR REPLACE INTO kv (key, value, updated_at) VALUES (?, 'v', 0)",
                        (key,),
                    )

            task = asyncio.create_task(write("cancelled"))
            await asyncio.sleep(0)  # the task now awaits BEGIN IMMEDIATE on the db thread
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await write("after")  # must work: a cancelled writer may not wedge the store
            row = await db.fetchone("SELECT COUNT(*) FROM kv WHERE key='after'")
            return int(row[0]) if row else 0
        finally:
            await db.close()

    assert asyncio.run(go()) == 1


async def test_second_gateway_on_the_same_database_refuses_to_start(
    tmp_path: Path, ollama_standin: Any
) -> None:
    """A second `lifeline run` would treat the first one's in-flight rows as crashed and send
    them again; it must refuse before touching anything, and say who holds the lock."""
    from bot.app import App
    from bot.instance_lock import AlreadyRunning

    settings = make_settings(tmp_path, ollama_standin.url)
    async with running_gateway(settings) as gw:
        gw.sms_in("+8801712345678", "water entering house at Ulipur")
        await gw.wait_sent("+8801712345678", 2)
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            await asyncio.wait_for(App(settings).run(), 10)
        before = await gw.rows("SELECT id, status FROM inbox")
    # ... and once the first has stopped, the next start is fine (the lock is not stale).
    async with running_gateway(settings) as gw:
        assert await gw.rows("SELECT id, status FROM inbox") == before
