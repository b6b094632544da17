"""A busy database is transient for the write that records an SMS as sent: it waits the lock
out instead of stopping the gateway (a restart would send the SMS a second time)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.backoff import delay
from bot.store.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "lifeline.db")
    database.busy_ms = 100  # SQLite gives up after 0.1 s, as it did after 5 s in a burst
    await database.open()
    await database.execute("CREATE TABLE marks (id INTEGER)")
    yield database
    await database.close()


@pytest.fixture
def holder(db: Database) -> Iterator[sqlite3.Connection]:
    """Another writer (an operator's sqlite3 shell) that will keep the lock past busy_timeout."""
    conn = sqlite3.connect(db.path, isolation_level=None)
    yield conn
    conn.close()


async def waits_until_released(
    db: Database, holder: sqlite3.Connection, write: Coroutine[Any, Any, None], mark: int
) -> None:
    """`write` (putting `mark` into marks) waits while `holder` keeps the lock, through many
    busy timeouts, and goes in once it is released."""
    holder.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(write)
    await asyncio.sleep(1.0)
    assert not task.done(), task
    holder.execute("COMMIT")
    await asyncio.wait_for(task, 15)
    assert [tuple(r) for r in await db.fetchall("SELECT id FROM marks")] == [(mark,)]


async def test_a_send_record_waits_out_a_writer_holding_the_database(
    db: Database, holder: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.store.db"):
        await waits_until_released(
            db, holder, db.commit_now("INSERT INTO marks VALUES (?)", (7,)), 7
        )
    assert any("write waits" in r.getMessage() for r in caplog.records)
    assert any("went in after" in r.getMessage() for r in caplog.records)


async def test_a_transaction_waits_out_a_writer_holding_the_database(
    db: Database, holder: sqlite3.Connection
) -> None:
    """An operator's sqlite3 shell left in a write transaction delays the gateway; it must not
    stop it (the intake would lose its place, and the sends in flight would go twice)."""
    await waits_until_released(db, holder, db.execute("INSERT INTO marks VALUES (?)", (8,)), 8)
    assert not db.conn.in_transaction


async def test_a_stop_is_not_held_for_ever_by_a_write_waiting_for_the_lock(
    db: Database, holder: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox records a send that finished during a stop (its task already cancelled); while
    someone else holds the lock that record waits STOP_GRACE_S, then the stop goes on (the row
    stays 'sending' for the restart's recovery). It used to wait as long as the lock was held:
    a second Ctrl-C did not help (a cancelled TaskGroup does not cancel its tasks again)."""
    monkeypatch.setattr("bot.store.db.STOP_GRACE_S", 0.5)
    entered = asyncio.Event()

    async def send_then_record() -> None:
        try:
            entered.set()
            await asyncio.sleep(60)  # the send in flight
        except asyncio.CancelledError:
            await db.commit_now("INSERT INTO marks VALUES (?)", (9,))  # like _finish_in_flight
            raise

    holder.execute("BEGIN IMMEDIATE")
    task = asyncio.create_task(send_then_record())
    await entered.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done, "the stop waited for the lock"
    assert task.cancelled()


async def test_without_a_stop_the_write_keeps_waiting_past_the_grace(
    db: Database, holder: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.store.db.STOP_GRACE_S", 0.2)
    await waits_until_released(db, holder, db.commit_now("INSERT INTO marks VALUES (?)", (10,)), 10)


def test_retry_delays_stay_capped_after_hours_of_tries() -> None:
    """A write waiting out a lock for hours counts past 1,024 tries: 2 ** 1024 overflowed a
    float and stopped the gateway with the send unrecorded."""
    assert delay(5_000, base=0.05, cap=2.0, jitter=False) == 2.0
    assert 1.0 <= delay(10**6, base=0.05, cap=2.0) <= 2.0
