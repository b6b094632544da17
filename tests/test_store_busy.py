"""A busy database is transient for the write that records an SMS as sent: it waits the lock
out instead of stopping the gateway (a restart would send the SMS a second time)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from bot.backoff import delay
from bot.store.db import Database


async def test_a_send_record_waits_out_a_writer_holding_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "lifeline.db")
    db.busy_ms = 100  # SQLite gives up after 0.1 s, as it did after 5 s in a burst
    await db.open()
    await db.execute("CREATE TABLE marks (id INTEGER)")
    holder = sqlite3.connect(db.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer keeps the lock past busy_timeout
        with caplog.at_level(logging.WARNING, logger="bot.store.db"):
            write = asyncio.create_task(db.commit_now("INSERT INTO marks VALUES (?)", (7,)))
            await asyncio.sleep(1.0)  # many busy timeouts
            assert not write.done(), write
            holder.execute("COMMIT")
            await asyncio.wait_for(write, 15)
        assert [tuple(r) for r in await db.fetchall("SELECT id FROM marks")] == [(7,)]
        assert any("write waits" in r.getMessage() for r in caplog.records)
        assert any("went in after" in r.getMessage() for r in caplog.records)
    finally:
        holder.close()
        await db.close()


async def test_a_transaction_waits_out_a_writer_holding_the_database(tmp_path: Path) -> None:
    """An operator's sqlite3 shell left in a write transaction delays the gateway; it must not
    stop it (the intake would lose its place, and the sends in flight would go twice)."""
    db = Database(tmp_path / "lifeline.db")
    db.busy_ms = 100
    await db.open()
    await db.execute("CREATE TABLE marks (id INTEGER)")
    holder = sqlite3.connect(db.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(db.execute("INSERT INTO marks VALUES (?)", (8,)))
        await asyncio.sleep(1.0)
        assert not write.done(), write
        holder.execute("COMMIT")
        await asyncio.wait_for(write, 15)
        assert [tuple(r) for r in await db.fetchall("SELECT id FROM marks")] == [(8,)]
        assert not db.conn.in_transaction
    finally:
        holder.close()
        await db.close()


async def test_a_stop_is_not_held_for_ever_by_a_write_waiting_for_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox records a send that finished during a stop (its task already cancelled); while
    someone else holds the lock that record waits STOP_GRACE_S, then the stop goes on (the row
    stays 'sending' for the restart's recovery). It used to wait as long as the lock was held:
    a second Ctrl-C did not help (a cancelled TaskGroup does not cancel its tasks again)."""
    monkeypatch.setattr("bot.store.db.STOP_GRACE_S", 0.5)
    db = Database(tmp_path / "lifeline.db")
    db.busy_ms = 100
    await db.open()
    await db.execute("CREATE TABLE marks (id INTEGER)")
    holder = sqlite3.connect(db.path, isolation_level=None)
    entered = asyncio.Event()

    async def send_then_record() -> None:
        try:
            entered.set()
            await asyncio.sleep(60)  # the send in flight
        except asyncio.CancelledError:
            await db.commit_now("INSERT INTO marks VALUES (?)", (9,))  # like _finish_in_flight
            raise

    try:
        holder.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(send_then_record())
        await entered.wait()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        assert done, "the stop waited for the lock"
        assert task.cancelled()
    finally:
        holder.close()
        await db.close()


async def test_without_a_stop_the_write_keeps_waiting_past_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.store.db.STOP_GRACE_S", 0.2)
    db = Database(tmp_path / "lifeline.db")
    db.busy_ms = 100
    await db.open()
    await db.execute("CREATE TABLE marks (id INTEGER)")
    holder = sqlite3.connect(db.path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(db.commit_now("INSERT INTO marks VALUES (?)", (10,)))
        await asyncio.sleep(1.0)
        assert not write.done(), write
        holder.execute("COMMIT")
        await asyncio.wait_for(write, 15)
        assert [tuple(r) for r in await db.fetchall("SELECT id FROM marks")] == [(10,)]
    finally:
        holder.close()
        await db.close()


def test_retry_delays_stay_capped_after_hours_of_tries() -> None:
    """A write waiting out a lock for hours counts past 1,024 tries: 2 ** 1024 overflowed a
    float and stopped the gateway with the send unrecorded."""
    assert delay(5_000, base=0.05, cap=2.0, jitter=False) == 2.0
    assert 1.0 <= delay(10**6, base=0.05, cap=2.0) <= 2.0
