"""The regional log on a real SQLite file: district case codes (old codes still found), change
marks written by triggers in the change's own transaction, one event per change, seq order into
the Matrix outbox with the txn id as idem_key, and nothing private in what is published."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.models import Channel, Priority, Team
from bot.region import events, publish
from bot.store import incidents, outbox, region_log, teams
from bot.store.db import Database
from config.settings import RegionSettings

PEER = "+8801712345678"
VICTIM_TEXT = "water to the roof, my mother is sick, call 01812345678"
REGION = RegionSettings(district="BHO", room="#flood-region:eoc.example")
ROOM = "!regional:eoc.example"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "r.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def on(db: Database, region: RegionSettings = REGION) -> None:
    await region_log.configure(db, district=region.district, room=region.room, now=1.0)


async def new_case(
    db: Database, priority: Priority = Priority.CRITICAL, peer: str = PEER
) -> incidents.Incident:
    async with db.transaction() as conn:
        return await incidents.create(
            conn,
            channel=Channel.SMS,
            reporter=peer,
            conversation=peer,
            priority=priority,
            lang="en",
            summary=VICTIM_TEXT,
            now=100.0,
            people_count=6,
        )


async def pump(db: Database, region: RegionSettings = REGION, now: float = 200.0) -> int:
    async with db.transaction() as conn:
        return await publish.collect(conn, region, now)


async def logged(db: Database) -> list[region_log.LogEntry]:
    return await region_log.entries(db, "BHO")


# ---- case codes -------------------------------------------------------------------------------


async def test_codes_carry_the_district_and_old_codes_keep_working(db: Database) -> None:
    old = await new_case(db, peer="+1")  # before the district was configured
    assert old.case.startswith("LF-")
    await on(db)
    new = await new_case(db, peer="+2")
    prefix, _, number = new.case.partition("-")
    assert prefix == "BHO" and number.isdigit()
    for typed in (new.case, new.case.lower(), f"BHO {number}", f"BHO{number}", number):
        found = await incidents.by_case(db, typed)
        assert found is not None and found.id == new.id, typed
    old_number = old.case.partition("-")[2]
    for typed in (old.case, f"lf {old_number}", old_number):
        found = await incidents.by_case(db, typed)
        assert found is not None and found.id == old.id, typed
    assert await incidents.by_case(db, f"LAL-{number}") is None  # another district's code


async def test_without_a_district_codes_stay_as_they_were(db: Database) -> None:
    await on(db, RegionSettings())
    case = await new_case(db)
    assert case.case.startswith("LF-")
    assert await incidents.by_case(db, case.case.partition("-")[2]) is not None


# ---- marks → entries --------------------------------------------------------------------------


async def test_one_event_per_change_in_seq_order(db: Database) -> None:
    await teams.sync_teams(db, [Team("boat-1", "boat", "ghat", 8)], 1.0)
    await on(db)
    case = await new_case(db)
    assert await pump(db) == 1
    async with db.transaction() as conn:  # a no-op write is not a change
        await incidents.update(conn, case.id, 150.0, status="open", people_count=7)
    assert await pump(db) == 0
    async with db.transaction() as conn:  # approve with a team: three writes, one change
        d = await incidents.create_dispatch(
            conn,
            incident_id=case.id,
            kind="boat",
            status="approved",
            priority=Priority.CRITICAL,
            location="",
            people_count=6,
            needs="",
            idem_key="d1",
            requested_by="@c:x",
            now=160.0,
        )
        await incidents.set_dispatch(conn, d.id, 160.0, team_id="boat-1")
        await incidents.update(conn, case.id, 160.0, status="assigned")
    assert await pump(db) == 1
    async with db.transaction() as conn:  # the team is on its way: same status, team, priority
        await incidents.set_dispatch(conn, d.id, 170.0, status="en_route")
    assert await region_log.pending(db)
    assert await pump(db) == 0
    entries = await logged(db)
    assert [(e.seq, e.kind) for e in entries] == [(1, "case"), (2, "case_state")]
    assert entries[1].data == {
        "code": case.case,
        "status": "assigned",
        "priority": "critical",
        "team": "boat-1",
    }


async def test_a_medium_case_is_published_when_it_becomes_high(db: Database) -> None:
    await on(db)
    case = await new_case(db, Priority.MEDIUM)
    assert await pump(db) == 0
    async with db.transaction() as conn:
        await incidents.escalate(conn, case.id, Priority.HIGH, 300.0)
    assert await pump(db) == 1
    assert [(e.kind, e.data["priority"]) for e in await logged(db)] == [("case", "high")]


async def test_no_marks_while_not_publishing(db: Database) -> None:
    await on(db, RegionSettings(district="BHO"))  # codes only, no room
    await new_case(db)
    assert not await region_log.pending(db)


async def test_a_mark_is_committed_or_rolled_back_with_its_change(db: Database) -> None:
    await on(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await incidents.create(
                conn,
                channel=Channel.SMS,
                reporter=PEER,
                conversation=PEER,
                priority=Priority.CRITICAL,
                lang="en",
                summary="x",
                now=1.0,
            )
            raise RuntimeError("crash before commit")
    assert not await region_log.pending(db)
    await new_case(db)
    assert await region_log.pending(db)  # survives until the publisher takes it


async def test_team_changes_publish_the_whole_list(db: Database) -> None:
    await on(db)
    inventory = [Team("boat-1", "boat", "ghat", 8), Team("med-1", "medical", "", 1)]
    await teams.sync_teams(db, inventory, 1.0)
    assert await pump(db) == 1
    async with db.transaction() as conn:
        await teams.set_team_status(conn, "boat-1", "busy", 2.0)
    assert await pump(db) == 1
    last = (await logged(db))[-1]
    assert last.kind == "teams"
    assert last.data == {
        "teams": [
            {"id": "boat-1", "kind": "boat", "status": "busy"},
            {"id": "med-1", "kind": "medical", "status": "free"},
        ]
    }


# ---- entries → outbox -------------------------------------------------------------------------


async def hand_over(db: Database, now: float = 300.0) -> int:
    async with db.transaction() as conn:
        return await publish.hand_over(conn, "BHO", ROOM, now)


async def queued(db: Database) -> list[Any]:
    return list(await db.fetchall("SELECT idem_key, peer, text, meta FROM outbox ORDER BY id", ()))


async def test_entries_go_to_the_outbox_once_in_seq_order(db: Database) -> None:
    await on(db)
    for i in range(3):
        await new_case(db, peer=f"+88017000000{i}")
    await pump(db)
    assert await hand_over(db) == 3
    assert await hand_over(db) == 0  # handed over once
    rows = await queued(db)
    assert [r["idem_key"] for r in rows] == [f"lifeline-region-BHO-{i}" for i in (1, 2, 3)]
    assert {r["peer"] for r in rows} == {ROOM}
    fields = [json.loads(r["meta"])["extra_content"][events.FIELD] for r in rows]
    assert [f["seq"] for f in fields] == [1, 2, 3]
    assert [events.validate(f).kind for f in fields] == ["case"] * 3


async def test_nothing_private_leaves_the_district(db: Database) -> None:
    await on(db)
    case = await new_case(db)
    async with db.transaction() as conn:
        await incidents.add_facts(
            conn, case.id, 120.0, location="Ulipur ghat, ask 01912345678", needs="boat"
        )
    await pump(db)
    await hand_over(db)
    published = json.dumps([dict(r) for r in await queued(db)])
    digits = "".join(c for c in published if c.isdigit())
    for number in (PEER, "01812345678", "01912345678"):
        assert number.lstrip("+")[-6:] not in digits
    for words in ("mother", "sick", "water to the roof"):
        assert words not in published
    assert "Ulipur ghat" in published and case.case in published


async def test_a_heartbeat_does_not_pile_up_while_the_link_is_down(db: Database) -> None:
    await on(db)
    for now in (1.0, 2.0, 3.0):
        async with db.transaction() as conn:
            await publish.heartbeat(conn, REGION, now)
    kinds = [e.kind for e in await logged(db)]
    assert kinds.count("hello") == 1
    assert kinds.count("sitrep") == 1  # unchanged counts are not repeated
    await hand_over(db)
    async with db.transaction() as conn:  # still queued in the outbox: no second hello
        await publish.heartbeat(conn, REGION, 4.0)
    assert [e.kind for e in await logged(db)].count("hello") == 1
    await db.execute("UPDATE outbox SET status='sent'")
    async with db.transaction() as conn:
        await publish.heartbeat(conn, REGION, 5.0)
    assert [e.kind for e in await logged(db)].count("hello") == 2


async def test_a_bad_event_takes_no_seq(db: Database) -> None:
    await on(db)
    async with db.transaction() as conn:
        with pytest.raises(events.EventError):
            await publish.record(conn, REGION, "need", {"to": "LAL", "kind": "boat"}, 1.0)
        ev = await publish.record(
            conn, REGION, "need", {"to": "LAL", "kind": "boat", "count": 2, "note": ""}, 1.0
        )
    assert ev is not None and ev.seq == 1 and ev.txn_id == "lifeline-region-BHO-1"


async def test_the_outbox_row_is_a_room_notice_with_the_machine_field(db: Database) -> None:
    from bot.transports.matrix.send import message_content

    await on(db)
    case = await new_case(db)
    async with db.transaction() as conn:
        await incidents.update(conn, case.id, 101.0, lat=23.8103, lon=90.4125)
    await pump(db, now=200.25)
    await hand_over(db)
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT id FROM outbox")
        row_id = (await cur.fetchone())[0]
    row = await outbox.claim_next(db, Channel.MATRIX, now=400.0, lease_s=60)
    assert row is not None and row.id == row_id
    content = message_content(row.to_outbound())
    assert content["msgtype"] == "m.notice"
    assert content["body"].startswith("BHO: new CRITICAL case BHO-")
    ev = events.parse(content)
    assert ev is not None and (ev.district, ev.seq, ev.kind) == ("BHO", 1, "case")
    # Synapse refuses floats in events (canonical JSON): M_BAD_JSON, a dead letter
    assert "." not in json.dumps(content[events.FIELD]["at"])
    assert isinstance(content[events.FIELD]["at"], int)
    assert ev.data["lat"] == "23.81030" and ev.data["lon"] == "90.41250"


# ---- numbered in the change's own transaction ---------------------------------------------------


async def test_each_transaction_numbers_its_change_before_commit(db: Database) -> None:
    await on(db)
    db.before_commit.append(publish.numbering_hook(REGION, lambda: 500.0))
    case = await new_case(db)
    assert [e.kind for e in await logged(db)] == ["case"]  # no publisher pass needed
    for status in ("dispatch_requested", "assigned", "resolved"):  # quick, one after another
        async with db.transaction() as conn:
            await incidents.update(conn, case.id, 501.0, status=status)
    states = [e.data["status"] for e in await logged(db) if e.kind == "case_state"]
    assert states == ["dispatch_requested", "assigned", "resolved"]  # none skipped
    assert await db.fetchall("SELECT 1 FROM region_dirty") == []


async def test_a_numbering_failure_never_fails_the_change(db: Database) -> None:
    await on(db)
    db.before_commit.append(publish.numbering_hook(REGION, lambda: 500.0))
    async with db.transaction() as conn:
        await region_log.mark(conn, "case:not-a-number", 1.0)  # a bug's mark: numbering raises
        await incidents.create(
            conn,
            channel=Channel.SMS,
            reporter=PEER,
            conversation=PEER,
            priority=Priority.CRITICAL,
            lang="en",
            summary="x",
            now=1.0,
        )
    assert len(await db.fetchall("SELECT 1 FROM incidents")) == 1  # the case is there
    assert await logged(db) == []  # numbering undone as a whole
    assert await region_log.pending(db)  # its marks wait for the next pass
