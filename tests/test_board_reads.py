"""The incident board reads on its own connection: a page load or a live look does not queue
behind a transaction in progress (the intake's, in a burst of 50 SMS/s), it sees exactly what
is committed, and the live view still sends every change once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.board.events import Hub
from bot.models import Channel, Priority
from bot.store import board as store
from bot.store import incidents
from bot.store.board import CaseQuery
from bot.store.db import Database


async def new_case(db: Database, n: int) -> int:
    async with db.transaction() as conn:
        case = await incidents.create(
            conn,
            channel=Channel.SMS,
            reporter=f"+88017{n:08d}",
            conversation=f"+88017{n:08d}",
            priority=Priority.HIGH,
            lang="en",
            summary=f"water rising {n}",
            now=time.time(),
        )
    return case.id


async def test_board_reads_do_not_wait_for_a_transaction_in_progress(tmp_path: Path) -> None:
    db = Database(tmp_path / "board.db")
    await db.open()
    try:
        await new_case(db, 1)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def slow_writer() -> None:
            async with db.transaction() as conn:
                await conn.execute("UPDATE incidents SET needs = 'boat'")
                holding.set()
                await release.wait()

        writer = asyncio.create_task(slow_writer())
        await holding.wait()
        # The writer holds the main connection until the reads below are done: on that
        # connection they would wait for it for ever.
        rows = await asyncio.wait_for(store.cases(db, CaseQuery()), 30)
        counts = await asyncio.wait_for(store.case_counts(db, CaseQuery()), 30)
        versions = await asyncio.wait_for(store.case_versions(db, 0.0), 30)
        assert [r.incident.needs for r in rows] == [""]  # the uncommitted change is not seen
        assert counts == {Priority.HIGH: 1} and len(versions) == 1
        release.set()
        await writer
        rows = await store.cases(db, CaseQuery())
        assert [r.incident.needs for r in rows] == ["boat"]  # committed: seen
    finally:
        await db.close()


async def test_the_live_view_sends_each_change_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "board.db")
    await db.open()
    hub = Hub(db, time.time)
    db.on_commit.append(hub.kick)
    runner = asyncio.create_task(hub.run())
    q = hub.subscribe()
    try:
        first = await new_case(db, 1)
        change = await asyncio.wait_for(q.get(), 30)
        assert change is not None and change.case is not None
        assert change.case.incident.id == first
        second = await new_case(db, 2)  # the first is still in the look-back window
        change = await asyncio.wait_for(q.get(), 30)
        assert change is not None and change.case is not None
        assert change.case.incident.id == second
        assert await hub.publish() == 0  # nothing new: nothing sent again
        assert q.empty()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await db.close()
