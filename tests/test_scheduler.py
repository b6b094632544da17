"""bot.scheduler without the gateway: the real APScheduler on the test's event loop. Waits are
generous upper bounds, never speed assertions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.scheduler import Scheduler
from tests.harness.gammu_phone import wait_for

WAIT_S = 10.0


@pytest.fixture
async def sched() -> AsyncIterator[Scheduler]:
    s = Scheduler(misfire_grace_s=1)
    s.start()
    try:
        yield s
    finally:
        s.shutdown()


async def test_a_job_runs_once_at_its_time_and_is_gone_afterwards(sched: Scheduler) -> None:
    ran = asyncio.Event()

    async def body() -> None:
        ran.set()

    sched.once("advisory:1", time.time() + 0.2, body)
    assert [j.id for j in sched.jobs()] == ["advisory:1"]
    await asyncio.wait_for(ran.wait(), WAIT_S)
    # APScheduler drops a finished date job just after the run: a bounded wait, not a fixed nap
    await wait_for(lambda: sched.jobs() == [], WAIT_S, "the finished job to be dropped")


async def test_a_failing_job_is_logged_and_the_scheduler_keeps_running(
    sched: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    later = asyncio.Event()

    async def broken() -> None:
        raise RuntimeError("database is locked")

    async def fine() -> None:
        later.set()

    caplog.set_level(logging.ERROR, logger="bot.scheduler")
    sched.once("sitrep:broken", time.time() + 0.1, broken)
    sched.once("sitrep:next", time.time() + 0.5, fine)
    await asyncio.wait_for(later.wait(), WAIT_S)
    failed = [r for r in caplog.records if "sitrep:broken failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert sched.running


async def test_cancellation_passes_through_a_job_body() -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def broken() -> None:
        raise ValueError("bad row")

    with pytest.raises(asyncio.CancelledError):
        await Scheduler._wrap("j", cancelled)()
    await Scheduler._wrap("j", broken)()  # logged, not raised


async def test_every_keeps_the_anchor_slots_and_reregistering_replaces(sched: Scheduler) -> None:
    async def body() -> None:
        return None

    now = time.time()
    anchor = now - 3 * 600 - 90  # slots at anchor + k*10 min: the next is 510 s from now
    sched.every("sitrep", 10, anchor, body)
    sched.every("sitrep", 10, anchor, body)  # a restart registers the same job again
    [job] = sched.jobs()
    assert job.id == "sitrep" and job.every_s == 600
    assert job.next_run_at is not None
    slots = round((job.next_run_at - anchor) / 600)
    assert job.next_run_at == pytest.approx(anchor + slots * 600, abs=1e-3)
    assert now < job.next_run_at <= now + 600
    ap = sched.job("sitrep")
    assert (ap.coalesce, ap.max_instances, ap.misfire_grace_time) == (True, 1, 1)


async def test_remove_says_whether_there_was_a_job(sched: Scheduler) -> None:
    async def body() -> None:
        return None

    sched.once("advisory:7", time.time() + 3600, body)
    assert sched.remove("advisory:7") is True
    assert sched.remove("advisory:7") is False
    assert sched.jobs() == []


async def test_a_run_later_than_the_grace_is_reported_missed_and_not_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    missed: list[str] = []
    ran: list[str] = []

    async def body() -> None:
        ran.append("ran")

    sched = Scheduler(misfire_grace_s=1, on_missed=missed.append)
    sched.once("advisory:late", time.time() + 0.3, body)
    caplog.set_level(logging.ERROR, logger="bot.scheduler")
    await asyncio.sleep(2.0)  # the loop was busy elsewhere past the slot and its grace
    sched.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not missed and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        sched.shutdown()
    assert missed == ["advisory:late"] and ran == []
    assert any("MISSED" in r.getMessage() for r in caplog.records)
