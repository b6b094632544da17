"""The regional view without a homeserver: applying events (dedupe, gaps, out of order, a forged
sender), the silent district, which regional-room commands a gateway runs, and mutual aid's
effect on the inventory. Real SQLite; events built by the shared schema (bot/region/events.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.commands import Command
from bot.models import Role, Team
from bot.region import events
from bot.region.addressing import code_district, regional_command
from bot.region.commands import RegionCommands
from bot.region.mutual_aid import MutualAid
from bot.region.reader import RegionReader, Seen
from bot.store import incidents, outbox
from bot.store import region_view as view
from bot.store.db import Database
from config.settings import RegionSettings

ME, LAL_BOT, MALLORY = "@bho:hs", "@lal:hs", "@mallory:hs"
COORD = "@coord:hs"
NOW = 1_800_000_000
SETTINGS = RegionSettings(
    district="BHO", room="!region:hs", peers={"LAL": LAL_BOT, "SYL": "@syl:hs"}
)


class Published:
    """Stands in for the publish log: records what would be published, with its seq."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    async def __call__(
        self, conn: aiosqlite.Connection, kind: str, data: dict[str, Any], now: float
    ) -> int:
        self.items.append((kind, data))
        return len(self.items)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "region.db")
    await database.open()
    await incidents.sync_teams(database, [Team("boat-3", "boat", "ghat", 8)], NOW)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def reader(db: Database, published: Published) -> RegionReader:
    async def notify(conn: aiosqlite.Connection, text: str, key: str, now: float) -> None:
        await outbox.enqueue(conn, _notice(text, key), now=now)

    aid = MutualAid("BHO", published, notify)
    roles = {COORD: Role.COORDINATOR}
    return RegionReader(
        SETTINGS,
        db,
        lambda: NOW,
        aid,
        me=ME,
        role_of=lambda peer: roles.get(peer, Role.PUBLIC),
    )


def _notice(text: str, key: str) -> Any:
    from bot.models import Channel, Outbound

    return Outbound(Channel.MATRIX, "!coord:hs", "!coord:hs", text=text, idem_key=key)


def ev(
    district: str,
    seq: int,
    kind: str,
    data: dict[str, Any],
    *,
    sender: str = LAL_BOT,
    ts: float = NOW,
) -> Seen:
    content = events.build(district, seq, kind, ts, data).content()
    return Seen(sender, f"$e-{district}-{seq}-{sender}", content, ts)


def case(
    code: str, status: str = "open", priority: str = "critical", team: str | None = None
) -> dict[str, Any]:
    return {
        "code": code,
        "status": status,
        "priority": priority,
        "team": team,
        "location": "Ulipur ghat",
        "people": 6,
        "needs": "boat",
        "summary": "family on a roof",
    }


async def cases(db: Database) -> dict[str, tuple[str, str, str]]:
    return {c.code: (c.priority, c.status, c.team) for c in await view.open_cases(db)}


async def test_an_event_applies_once_and_gaps_are_counted(
    reader: RegionReader, db: Database
) -> None:
    first = ev("LAL", 1, "case", case("LAL-1234"))
    assert await reader.apply([first]) == 1
    assert await reader.apply([first]) == 0  # the same (district, seq) again: nothing new
    await reader.apply([ev("LAL", 3, "hello", {"every_s": 300})])
    rows = {d.district: d for d in await view.districts(db)}
    assert (rows["LAL"].last_seq, rows["LAL"].events) == (3, 2)
    assert await view.event_count(db) == 2
    report = await _commands(reader).run(Command("region"))
    assert "1 event(s) not received yet" in report


async def test_out_of_order_events_never_overwrite_newer_facts(
    reader: RegionReader, db: Database
) -> None:
    # the state change (seq 3) arrives before the case it changes (seq 2)
    await reader.apply(
        [
            ev(
                "LAL",
                3,
                "case_state",
                {
                    "code": "LAL-1234",
                    "status": "assigned",
                    "priority": "critical",
                    "team": "boat-1",
                },
            )
        ]
    )
    await reader.apply([ev("LAL", 2, "case", case("LAL-1234"))])
    assert (await cases(db))["LAL-1234"] == ("critical", "assigned", "boat-1")
    c = (await view.open_cases(db))[0]
    assert (c.area, c.people) == ("Ulipur ghat", 6)  # the description still filled in
    free = {"id": "boat-1", "kind": "boat", "status": "free"}
    busy = {**free, "status": "busy"}
    await reader.apply([ev("LAL", 9, "teams", {"teams": [busy]})])
    await reader.apply([ev("LAL", 8, "teams", {"teams": [free]})])  # older snapshot: ignored
    assert [(t.team, t.status) for t in await view.teams(db)] == [("boat-1", "busy")]
    await reader.apply(
        [
            ev(
                "LAL",
                10,
                "case_state",
                {"code": "LAL-1234", "status": "resolved", "priority": "critical", "team": None},
            )
        ]
    )
    assert await cases(db) == {}


async def test_a_forged_event_changes_nothing_and_is_logged_once(
    reader: RegionReader, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.region.reader")
    forged = [ev("LAL", n, "case", case(f"LAL-{1000 + n}"), sender=MALLORY) for n in (1, 2)]
    # a peer's bot speaking for another peer is as false as a stranger
    forged.append(ev("SYL", 1, "case", case("SYL-1111"), sender=LAL_BOT))
    assert await reader.apply(forged) == 0
    assert await view.event_count(db) == 0 and await cases(db) == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if MALLORY in w]) == 1, warnings  # once per sender+reason
    assert any("claims to speak for SYL" in w for w in warnings)
    # the genuine event with the same (district, seq) is still applied afterwards
    assert await reader.apply([ev("LAL", 1, "case", case("LAL-1001"))]) == 1


async def test_a_silent_district_is_shown_silent_and_nothing_waits(
    reader: RegionReader, db: Database
) -> None:
    await reader.apply([ev("LAL", 1, "case", case("LAL-1234"), ts=NOW - 23 * 60)])
    await reader.apply([ev("BHO", 1, "hello", {"every_s": 300}, sender=ME, ts=NOW - 60)])
    report = await _commands(reader).run(Command("region"))
    lines = {line.split(":", 1)[0]: line for line in report.splitlines()}
    assert "SILENT for 23 min" in lines["LAL"], report
    assert "open 1 (1 critical), unassigned critical 1" in lines["LAL"]
    assert "last heard 1 min ago" in lines["BHO (this district)"]
    assert "never heard from" in lines["SYL"]
    listing = await _commands(reader).run(Command("region", ("cases",)))
    assert "LAL-1234 CRITICAL open | Ulipur ghat | 6p" in listing and "district SILENT" in listing


def test_only_this_districts_case_commands_are_taken_from_the_regional_room() -> None:
    assert code_district("LAL-1234") == "LAL" and code_district("lal-1234") == "LAL"
    assert code_district("LF-1234") is None and code_district("1234") is None
    assert regional_command("!approve BHO-1234 boat-3", ME, "BHO") is not None
    assert regional_command("Lifeline: !resolve bho-1234 safe", ME, "BHO") is not None
    assert regional_command("!approve LAL-1234 boat-3", ME, "BHO") is None
    assert regional_command("!approve LF-1234", ME, "BHO") is None  # every district has LF codes
    assert regional_command("!teams", ME, "BHO") is None
    assert regional_command("!lend boat-3 LAL", ME, "BHO") is None  # typed at home, not here
    assert regional_command("approve BHO-1234", ME, "BHO") is None


async def test_divert_keeps_only_our_coordinators_commands(reader: RegionReader) -> None:
    class Event:
        def __init__(self, sender: str, body: str) -> None:
            self.sender, self.event_id = sender, f"$x{id(self)}"
            self.source = {"content": {"msgtype": "m.text", "body": body}, "origin_server_ts": 0}

    ours = Event(COORD, "!approve BHO-1234")
    kept = await reader.divert(
        [
            ours,
            Event(COORD, "!approve LAL-1234"),
            Event(MALLORY, "!approve BHO-1234"),
            Event(COORD, "hello all"),
        ]
    )
    assert kept == [ours]


async def test_lend_from_a_peer_joins_the_inventory_and_a_recall_removes_it(
    reader: RegionReader, db: Database
) -> None:
    await reader.apply(
        [ev("LAL", 1, "teams", {"teams": [{"id": "boat-7", "kind": "boat", "status": "free"}]})]
    )
    await reader.apply([ev("LAL", 2, "lend", {"team": "boat-7", "to": "BHO", "until": NOW + 3600})])
    teams = {t.id: t.status for t in await incidents.list_teams(db)}
    assert teams["LAL/boat-7"] == "available"
    # a dispatch by this district names it; LAL's gateway would relay it to its crew
    async with db.transaction() as conn:
        await view.set_team(conn, "LAL/boat-7", "busy", NOW)
    await reader.apply([ev("LAL", 2, "lend", {"team": "boat-7", "to": "BHO"})])  # replay
    assert {t.id: t.status for t in await incidents.list_teams(db)}["LAL/boat-7"] == "busy"
    await reader.apply([ev("LAL", 3, "return", {"team": "boat-7"})])
    assert {t.id: t.status for t in await incidents.list_teams(db)}["LAL/boat-7"] == "offline"
    notices = [r[0] for r in await db.fetchall("SELECT text FROM outbox ORDER BY id")]
    assert any("Dispatch it as LAL/boat-7" in n for n in notices)
    assert any("reassign that case" in n for n in notices)


async def test_lending_our_team_and_its_hand_back(
    reader: RegionReader, db: Database, published: Published
) -> None:
    commands = _commands(reader)
    reply = await commands.run(Command("lend", ("boat-3", "LAL", "6")))
    assert "boat-3 lent to LAL" in reply, reply
    assert published.items == [("lend", {"team": "boat-3", "to": "LAL", "until": NOW + 6 * 3600})]
    assert {t.id: t.status for t in await incidents.list_teams(db)}["boat-3"] == "lent"
    assert "is lent" in await commands.run(Command("lend", ("boat-3", "SYL")))
    assert "no district XYZ" in await commands.run(Command("lend", ("boat-3", "XYZ")))
    # LAL dispatches it: the notice reaches this district's coordination room
    state = {"code": "LAL-4321", "status": "assigned", "priority": "critical", "team": "BHO/boat-3"}
    await reader.apply([ev("LAL", 5, "case_state", state)])
    notices = [r[0] for r in await db.fetchall("SELECT text FROM outbox")]
    assert any("LAL dispatched your lent team boat-3 on LAL-4321" in n for n in notices), notices
    # LAL hands it back: available here, and the end of the lend is ours to publish
    await reader.apply([ev("LAL", 6, "return", {"team": "boat-3", "to": "BHO"})])
    assert {t.id: t.status for t in await incidents.list_teams(db)}["boat-3"] == "available"
    assert published.items[-1] == ("return", {"team": "boat-3"})
    assert await view.lends(db) == []
    assert "not lent out" in await commands.run(Command("return", ("boat-3",)))


async def test_need_is_published_and_shown(reader: RegionReader, published: Published) -> None:
    commands = _commands(reader)
    reply = await commands.run(
        Command("need", ("LAL", "boat", "2", "roofs", "at", "Ulipur"), "LAL boat 2 roofs at Ulipur")
    )
    assert reply == "Request posted to LAL: 2 boat (roofs at Ulipur)."
    assert published.items == [
        ("need", {"to": "LAL", "kind": "boat", "count": 2, "note": "roofs at Ulipur"})
    ]
    await reader.apply(
        [ev("LAL", 1, "need", {"to": "*", "kind": "medical", "count": 1, "note": ""})]
    )
    assert "LAL asks every district for 1 medical" in await commands.run(Command("region"))
    assert "kind is one of" in await commands.run(Command("need", ("LAL", "tank", "2")))


def _commands(reader: RegionReader) -> RegionCommands:
    return RegionCommands(SETTINGS, reader.db, reader.clock, reader.aid)


async def test_a_borrowed_team_survives_a_restart(reader: RegionReader, db: Database) -> None:
    await reader.apply([ev("LAL", 1, "lend", {"team": "boat-7", "to": "BHO"})])
    # at start the config is the inventory; a borrowed team is not in it, the lend decides
    await incidents.sync_teams(db, [Team("boat-3", "boat", "ghat", 8)], NOW + 60)
    assert {t.id: t.status for t in await incidents.list_teams(db)}["LAL/boat-7"] == "available"


async def test_a_failure_applying_events_never_stops_the_room_for_the_inbox(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(conn: aiosqlite.Connection, text: str, key: str, now: float) -> None:
        raise RuntimeError("a bug in a notice")

    reader = RegionReader(SETTINGS, db, lambda: NOW, MutualAid("BHO", Published(), broken), me=ME)
    reader.role_of = lambda peer: Role.COORDINATOR

    class Event:
        def __init__(self, sender: str, content: dict[str, Any]) -> None:
            self.sender, self.event_id = sender, f"$x{id(self)}"
            self.source = {"content": content, "origin_server_ts": NOW * 1000}

    need = ev("LAL", 1, "need", {"to": "BHO", "kind": "boat", "count": 2, "note": ""})
    command = Event(COORD, {"msgtype": "m.text", "body": "!approve BHO-1234"})
    kept = await reader.divert([Event(LAL_BOT, need.content), command])
    assert kept == [command]  # the district's own commands still reach its inbox
    assert await view.event_count(db) == 0  # rolled back whole: a rebuild reads it again
    assert any("APPLYING 1 EVENT(S) FAILED" in r.getMessage() for r in caplog.records)
