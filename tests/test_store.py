"""bot/store on a real SQLite file: the one lease/retry/dead-letter query set shared by inbox and
outbox (``attempts`` means the same in both), the row mapper, statuses as StrEnums,
incidents/teams/dispatches, model turns, the message log and a sender's exchange."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.models import (
    Channel,
    DispatchStatus,
    Inbound,
    InboxStatus,
    IncidentStatus,
    Lane,
    Outbound,
    OutboxStatus,
    Priority,
    Role,
    Team,
    TeamStatus,
)
from bot.store import dispatches, inbox, incidents, messages, model_turns, outbox, teams
from bot.store.db import Database
from bot.store.queue_rows import INBOX, OUTBOX, leased
from bot.store.rows import build, placeholders, update_fields
from tests.harness.gammu_phone import wait_for

PEER = "+8801712345678"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "q.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def _inbox_row(
    db: Database, text: str = "help", at: float = 1.0, status: InboxStatus = InboxStatus.QUEUED
) -> int:
    msg = Inbound(Channel.SMS, PEER, PEER, text, dedup_key=text, received_at=at)
    async with db.transaction() as conn:
        row_id = await inbox.insert(
            conn,
            msg,
            role=Role.PUBLIC,
            order_key=f"sms:{PEER}",
            needs_model=True,
            lang="en",
            priority=Priority.HIGH,
            status=status,
            now=at,
        )
    assert row_id is not None
    return row_id


async def _outbox_row(db: Database, key: str = "reply:1") -> None:
    out = Outbound(Channel.SMS, PEER, PEER, "stay on the roof", idem_key=key, lane=Lane.REPLY)
    async with db.transaction() as conn:
        assert await outbox.enqueue(conn, out, now=1.0)


async def _claim_in(db: Database, now: float = 2.0) -> inbox.InboxRow | None:
    return await inbox.claim_next(db, needs_model=True, fifo=False, now=now, lease_s=60)


async def _claim_out(db: Database, now: float = 2.0) -> outbox.OutboxRow | None:
    return await outbox.claim_next(db, Channel.SMS, now=now, lease_s=60)


async def _stored_attempts(db: Database, table: str) -> tuple[str, int]:
    row = await db.fetchone(f"SELECT status, attempts FROM {table}")
    assert row is not None
    return row[0], row[1]


async def _one_row_in(db: Database, queue: str) -> tuple[Any, Any]:
    """A due row in ``queue``; its claim function and store module."""
    if queue == "inbox":
        await _inbox_row(db)
        return _claim_in, inbox
    await _outbox_row(db)
    return _claim_out, outbox


def test_a_claim_leases_and_counts_the_attempt_it_starts() -> None:
    assert leased(INBOX, 0) == {"status": "processing", "attempts": 1}
    assert leased(OUTBOX, 2) == {"status": "sending", "attempts": 3}


async def test_both_queues_hand_out_the_running_attempt(db: Database) -> None:
    """A claimed row carries the number of the attempt now running, in both queues, and it is
    what the table holds (the outbox used to hand out the count from before its claim)."""
    await _inbox_row(db)
    await _outbox_row(db)
    got_in, got_out = await _claim_in(db), await _claim_out(db)
    assert got_in is not None and got_out is not None
    assert (got_in.status, got_in.attempts) == (InboxStatus.PROCESSING, 1)
    assert (got_out.status, got_out.attempts) == (OutboxStatus.SENDING, 1)
    assert await _stored_attempts(db, "inbox") == ("processing", 1)
    assert await _stored_attempts(db, "outbox") == ("sending", 1)


@pytest.mark.parametrize("queue", ["inbox", "outbox"])
async def test_a_transient_failure_gives_the_attempt_back_any_other_keeps_it(
    db: Database, queue: str
) -> None:
    claim, store = await _one_row_in(db, queue)
    first = await claim(db, 2.0)
    assert first is not None and first.attempts == 1
    await store.retry_later(db, first.id, at=3.0, error="outage", now=2.0, count_attempt=False)
    assert await _stored_attempts(db, queue) == ("queued", 0)
    assert await claim(db, 2.5) is None  # not due before `at`
    assert await store.next_due_at(db, True if queue == "inbox" else Channel.SMS) == 3.0
    again = await claim(db, 3.0)
    assert again is not None and again.attempts == 1  # the outage spent nothing
    await store.retry_later(db, again.id, at=4.0, error="bad", now=3.0, count_attempt=True)
    third = await claim(db, 4.0)
    assert third is not None and third.attempts == 2
    row = await db.fetchone(f"SELECT error FROM {queue}")
    assert row is not None and row[0] == "bad"


@pytest.mark.parametrize("queue", ["inbox", "outbox"])
async def test_a_crash_mid_attempt_requeues_the_row_with_the_attempt_counted(
    db: Database, queue: str
) -> None:
    claim, store = await _one_row_in(db, queue)
    assert await claim(db, 2.0) is not None
    assert await store.recover_after_crash(db, 5.0) == 1
    assert await _stored_attempts(db, queue) == ("queued", 1)
    assert await store.status_counts(db) == {"queued": 1}
    again = await claim(db, 6.0)
    assert again is not None and again.attempts == 2


async def test_dead_letter_records_the_reason_and_closes_the_inbox_row(db: Database) -> None:
    await _inbox_row(db)
    await _outbox_row(db)
    got = await _claim_in(db)
    assert got is not None
    async with db.transaction() as conn:
        await inbox.dead_letter(conn, got.id, reason="x" * 600, now=9.0)
    row = await db.fetchone("SELECT status, error, done_at FROM inbox")
    assert row is not None and (row[0], len(row[1]), row[2]) == ("dead", 500, 9.0)
    sent = await _claim_out(db)
    assert sent is not None
    await outbox.dead_letter(db, sent.id, reason="invalid number", now=9.0)
    assert await outbox.status_counts(db) == {"dead": 1}
    assert await inbox.status_counts(db) == {"dead": 1}


async def test_make_due_ends_an_outage_deferral_for_its_partition_only(db: Database) -> None:
    await _inbox_row(db)
    got = await _claim_in(db)
    assert got is not None
    await inbox.retry_later(db, got.id, at=500.0, error="down", now=2.0, count_attempt=False)
    assert await inbox.make_due(db, False) == 0  # the fast path's rows: none
    assert await inbox.make_due(db, True) == 1
    assert await inbox.next_due_at(db, True) == 0.0
    assert await _claim_in(db, 3.0) is not None


# ---- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pair:
    name: str
    count: int


def test_build_maps_fields_by_name_renames_and_converts() -> None:
    row = {"label": "a", "count": "3", "extra": 1}
    assert build(_Pair, row, columns={"name": "label"}, count=int) == _Pair("a", 3)


def test_placeholders_never_carry_values() -> None:
    assert placeholders((IncidentStatus.OPEN, IncidentStatus.ASSIGNED)) == "(?,?)"
    assert placeholders([]) == "()"


def test_statuses_read_as_their_plain_values() -> None:
    """SQL values and JSON output do not change: a status is its string."""
    assert IncidentStatus.DISPATCH_REQUESTED == "dispatch_requested"
    assert json.dumps({"s": DispatchStatus.EN_ROUTE}) == '{"s": "en_route"}'
    assert f"{TeamStatus.BUSY}" == "busy"


async def test_update_fields_allow_lists_columns(db: Database) -> None:
    async with db.transaction() as conn:
        with pytest.raises(ValueError, match="not updatable"):
            await update_fields(conn, "teams", "boat-1", 1.0, {"id": "x"}, frozenset({"status"}))
        await update_fields(conn, "teams", "boat-1", 1.0, {}, frozenset({"status"}))  # no-op


async def _case(db: Database) -> incidents.Incident:
    async with db.transaction() as conn:
        return await incidents.create(
            conn,
            channel=Channel.SMS,
            reporter=PEER,
            conversation=PEER,
            priority=Priority.HIGH,
            lang="en",
            summary="roof",
            now=1.0,
        )


async def test_incident_status_round_trips_as_enum_and_open_filter(db: Database) -> None:
    case = await _case(db)
    assert case.status is IncidentStatus.OPEN
    async with db.transaction() as conn:
        assert await incidents.last_ack_at(conn, case.id) is None
        await incidents.update(conn, case.id, 2.0, status="assigned", last_ack_at=2.0)
        assert await incidents.last_ack_at(conn, case.id) == 2.0
        assert await incidents.open_for_reporter(conn, Channel.SMS, PEER) is not None
        with pytest.raises(ValueError):
            await incidents.update(conn, case.id, 2.0, status="closed")
    assert [i.case for i in await incidents.list_incidents(db, status="open")] == [case.case]
    async with db.transaction() as conn:
        await incidents.update(conn, case.id, 3.0, status=IncidentStatus.RESOLVED)
        assert await incidents.open_for_reporter(conn, Channel.SMS, PEER) is None
    assert await incidents.list_incidents(db, status="open") == []
    (view,) = await incidents.views(db, status="resolved")
    assert json.loads(json.dumps(view.to_json()))["status"] == "resolved"


async def test_dispatch_and_team_statuses(db: Database) -> None:
    case = await _case(db)
    await teams.sync_teams(db, [Team("boat-1", "boat", "ghat", 6)], 1.0)
    async with db.transaction() as conn:
        d = await dispatches.create_dispatch(
            conn,
            incident_id=case.id,
            kind="boat",
            status=DispatchStatus.APPROVED,
            priority=Priority.HIGH,
            location="roof",
            people_count=5,
            needs="",
            idem_key="d1",
            requested_by="model",
            now=1.0,
        )
        assert d.status is DispatchStatus.APPROVED
        team = await teams.pick_team(conn, "boat")
        assert team is not None and team.status == TeamStatus.AVAILABLE
        await dispatches.set_dispatch(conn, d.id, 2.0, status="assigned", team_id=team.id)
        await teams.set_team_status(conn, team.id, TeamStatus.BUSY, 2.0)
        active = await dispatches.active_dispatch(conn, case.id)
        assert active is not None and active.status is DispatchStatus.ASSIGNED
    # Out of the config with an active dispatch: offline; back in: busy, not available.
    await teams.sync_teams(db, [], 3.0)
    assert [t.status for t in await teams.list_teams(db)] == [TeamStatus.OFFLINE]
    await teams.sync_teams(db, [Team("boat-1", "boat", "ghat", 6)], 4.0)
    assert [t.status for t in await teams.list_teams(db)] == [TeamStatus.BUSY]
    async with db.transaction() as conn:
        await teams.release_team(conn, "boat-1", 5.0)
        await dispatches.set_dispatch(conn, d.id, 5.0, status=DispatchStatus.COMPLETED)
        assert await dispatches.active_dispatch(conn, case.id) is None
    assert [t.status for t in await incidents.list_teams(db)] == [TeamStatus.AVAILABLE]


async def test_model_turns_median_of_successful_turns(db: Database) -> None:
    assert await model_turns.median_ok_seconds(db) is None
    for i, (ok, seconds) in enumerate([(True, 1.0), (False, 90.0), (True, 3.0), (True, 2.0)]):
        await model_turns.record(
            db, inbox_id=i, at=float(i), ok=ok, seconds=seconds, prompt_tokens=None, error=None
        )
    assert await model_turns.median_ok_seconds(db) == 2.0
    assert await model_turns.median_ok_seconds(db, last=1) == 2.0


async def test_message_log_and_a_senders_exchange(db: Database) -> None:
    first = await _inbox_row(db, "water rising", 1.0, InboxStatus.DONE)
    async with db.transaction() as conn:
        reply = Outbound(Channel.SMS, PEER, PEER, "go to the roof", idem_key="reply:1")
        await outbox.enqueue(conn, reply, now=2.0, inbox_id=first)
        notice = Outbound(Channel.SMS, PEER, PEER, "advisory", "adv:1", lane=Lane.BROADCAST)
        await outbox.enqueue(conn, notice, now=2.5)
    later = await _inbox_row(db, "still here", 3.0)
    log = await messages.recent(db, limit=10)
    assert [(m.direction, m.text, m.status) for m in log] == [
        ("in", "water rising", "done"),
        ("out", "go to the roof", "queued"),
        ("out", "advisory", "queued"),
        ("in", "still here", "queued"),
    ]
    assert [m.text for m in await messages.recent(db, limit=1)] == ["still here"]
    current = await inbox.get(db, later)
    assert current is not None
    turns = await messages.exchange(db, current, limit=5)
    assert turns == [("user", "water rising"), ("assistant", "go to the roof")]


@pytest.mark.parametrize("delay_s", [0.0, 0.001, 0.005, 0.02])
async def test_a_cancelled_open_leaves_no_connection_thread_behind(
    tmp_path: Path, delay_s: float
) -> None:
    """aiosqlite's connection threads are not daemons: one lost to a cancellation during open
    (a shutdown at start-up, a second Ctrl-C) would keep the process alive for ever."""
    import threading

    # Compare thread objects, not counts: a worker of an earlier test may still be ending,
    # which made a count taken before the open one too high (a CI flake).
    def workers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}

    before = workers()
    db = Database(tmp_path / f"x{delay_s}.db")
    task = asyncio.create_task(db.open())
    await asyncio.sleep(delay_s)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await db.close()
    await wait_for(lambda: not workers() - before, 10.0, "the new worker thread to end")


async def test_close_waits_for_a_side_write_that_is_opening_its_connection(
    tmp_path: Path,
) -> None:
    """A send recorded while the gateway stops (commit_now opening the side connection as
    close() runs): the write lands and its connection is closed, not left to a finalizer."""
    import gc
    import warnings

    db = Database(tmp_path / "side.db")
    await db.open()
    write = asyncio.create_task(db.commit_now("CREATE TABLE side_probe (x)"))
    await asyncio.sleep(0)  # the write has begun opening the side connection
    await db.close()
    await write
    assert db._side is None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
    await db.open()
    try:
        assert await db.fetchone("SELECT name FROM sqlite_master WHERE name='side_probe'")
    finally:
        await db.close()
