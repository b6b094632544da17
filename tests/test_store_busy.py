"""A busy database is transient for the write that records an SMS as sent: it waits the lock
out instead of stopping the gateway (a restart would send the SMS a second time)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

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
