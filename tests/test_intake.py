"""Intake without a gateway: a real SQLite file, the real route table and dispatcher. The decision
is made once, stored on the row, survives a restart, and workers dispatch on it."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.intake import Accepted, Intake
from bot.models import Channel, Facts, Inbound, Outbound, Priority, Role
from bot.route import Decision, Handler, Route
from bot.store import inbox
from bot.store.db import Database
from bot.store.inbox import InboxRow
from bot.store.migrations import MIGRATIONS
from handlers.router import Dispatcher, HandlerFn, RouteTable

BOT = "@lifeline:hs"
COORD = "@coord:hs"
NOW = 1_800_000_000.0


class Roles:
    """The role policy, counting how often it is asked."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, channel: Channel, peer: str) -> Role:
        self.calls[peer] += 1
        return Role.COORDINATOR if channel is Channel.MATRIX and peer == COORD else Role.PUBLIC


async def _no_hook(conn: aiosqlite.Connection, item: Accepted, now: float) -> None:
    return None


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "l.db")
    await database.open()
    yield database
    await database.close()


def make_intake(db: Database, roles: Roles, *, per_hour: int = 100) -> Intake:
    return Intake(
        db,
        role_of=roles,
        route=RouteTable(BOT).decide,
        hook=_no_hook,
        per_sender_per_hour=per_hour,
        clock=lambda: NOW,
    )


def sms(text: str, key: str, **facts: Any) -> Inbound:
    return Inbound(
        Channel.SMS, "+8801711000000", "+8801711000000", text, key, NOW, facts=Facts(**facts)
    )


def matrix(text: str, key: str, peer: str = COORD, **facts: Any) -> Inbound:
    return Inbound(Channel.MATRIX, peer, "!ops:hs", text, key, NOW, facts=Facts(**facts))


def recording_dispatcher(table: RouteTable) -> tuple[Dispatcher, list[tuple[Handler, Decision]]]:
    seen: list[tuple[Handler, Decision]] = []

    def record(h: Handler) -> HandlerFn:
        async def run(row: InboxRow, decision: Decision) -> list[Outbound]:
            seen.append((h, decision))
            return []

        return run

    return Dispatcher(table, {h: record(h) for h in Handler}), seen


async def test_decision_is_stored_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "lifeline.db"
    db = Database(path)
    await db.open()
    roles = Roles()
    batch = [
        sms("JOIN Sylhet Sadar", "k1", modem="sim2"),
        sms("", "k2", modem="sim1", binary=True),
        matrix("Lifeline: !reject LF-1234 no boats left", "$a", is_direct=False),
        matrix("how many open cases?", "$b", is_direct=True),
        matrix("where are you?", "$c", peer="@stranger:hs", is_direct=True, lat=22.7, lon=90.3),
    ]
    accepted = await make_intake(db, roles).accept(batch)
    assert len(accepted) == 5
    decided = {a.inbox_id: a.decision for a in accepted}
    facts = {a.inbox_id: a.msg.facts for a in accepted}
    assert [a.decision.rule for a in accepted] == [
        "keyword",
        "unreadable",
        "command",
        "staff",
        "victim",
    ]
    await db.close()

    db = Database(path)  # a restart: nothing but the file
    await db.open()
    try:
        rows = [await inbox.get(db, i) for i in decided]
        assert all(r is not None and r.decision == decided[r.id] for r in rows)
        assert all(r is not None and r.facts == facts[r.id] for r in rows)
        assert rows[1] is not None and rows[1].facts == Facts(modem="sim1", binary=True)
        assert rows[4] is not None and (rows[4].facts.lat, rows[4].facts.lon) == (22.7, 90.3)
        reject = decided[accepted[2].inbox_id].command
        assert reject is not None and (reject.name, reject.rest) == (
            "reject",
            "LF-1234 no boats left",
        )

        # The workers dispatch on the stored decision: a table that would decide differently
        # (here: one with no rules at all) is never consulted for these rows.
        dispatcher, seen = recording_dispatcher(RouteTable(BOT, rules=()))
        for needs_model in (False, True):
            while (
                row := await inbox.claim_next(
                    db, needs_model=needs_model, fifo=True, now=NOW, lease_s=60
                )
            ) is not None:
                await dispatcher(row)
                async with db.transaction() as conn:
                    await inbox.complete(conn, row.id, NOW)
        assert sorted(h for h, _ in seen) == sorted(
            [Handler.KEYWORD, Handler.UNREADABLE, Handler.COMMAND, Handler.STAFF, Handler.VICTIM]
        )
        assert {d for _, d in seen} == set(decided.values())
    finally:
        await db.close()


async def test_role_is_decided_once_per_message(db: Database) -> None:
    roles = Roles()
    accepted = await make_intake(db, roles).accept(
        [matrix("!teams", "$1", is_direct=True), sms("we are trapped", "s1")]
    )
    assert roles.calls == Counter({COORD: 1, "+8801711000000": 1})
    assert [a.decision.role for a in accepted] == [Role.COORDINATOR, Role.PUBLIC]
    dispatcher, seen = recording_dispatcher(RouteTable(BOT))
    for a in accepted:
        row = await inbox.get(db, a.inbox_id)
        assert row is not None and row.role is a.decision.role and row.decision == a.decision
        await dispatcher(row)
    assert roles.calls == Counter({COORD: 1, "+8801711000000": 1})  # not asked again
    assert [d.role for _, d in seen] == [Role.COORDINATOR, Role.PUBLIC]


async def test_admission_throttles_and_merges_after_the_table(db: Database) -> None:
    intake = make_intake(db, Roles(), per_hour=2)
    first, repeat = await intake.accept([sms("water rising", "a"), sms("water rising", "b")])
    assert (first.decision.route, repeat.decision.route) == (Route.MODEL, Route.MERGED)
    assert repeat.decision.rule == "merged" and repeat.decision.handler is Handler.VICTIM
    (flood,) = await intake.accept([sms("please come", "c")])
    assert (flood.decision.route, flood.decision.rule) == (Route.THROTTLED, "throttled")
    (stop,) = await intake.accept([sms("STOP", "d")])
    assert stop.decision.route is Route.FAST  # a keyword is never throttled
    rows = [await inbox.get(db, a.inbox_id) for a in (first, repeat, flood, stop)]
    assert [(r.status, r.needs_model) for r in rows if r is not None] == [
        ("queued", True),
        ("merged", False),
        ("throttled", False),
        ("queued", False),
    ]
    assert [r.decision.route for r in rows if r is not None and r.decision] == [
        Route.MODEL,
        Route.MERGED,
        Route.THROTTLED,
        Route.FAST,
    ]


async def test_rows_from_before_routing_are_decided_by_the_same_table(tmp_path: Path) -> None:
    """A database written before migration 6: the facts come from the stored meta, and a queued
    row (no decision yet) is decided once, by the same table, when a worker takes it."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        for version, script in enumerate(MIGRATIONS[:5], start=1):
            old.executescript(f"{script}\nPRAGMA user_version = {version};")
        for key, role, needs_model, text, meta in (
            ("$x", "coordinator", 0, "!say LF-1234 boat is coming", {"is_direct": True}),
            ("$y", "coordinator", 0, "yes", {"is_direct": False, "edit_of": "$o"}),
            ("k", "public", 1, "see photo", {"modem": "sim2", "media_error": "too_large",
                                            "lat": 22.5, "lon": 90.1, "partial": True}),
        ):  # fmt: skip
            old.execute(
                """INSERT INTO inbox (channel, dedup_key, peer, conversation, order_key, role,
                   needs_model, text, meta, priority, received_at, created_at, updated_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                ("sms" if key == "k" else "matrix", key, COORD, "!ops:hs", key, role,
                 needs_model, text, json.dumps(meta), int(Priority.MEDIUM), NOW, NOW, NOW),
            )  # fmt: skip
    db = Database(path)
    await db.open()
    try:
        rows = [await inbox.claim_next(db, needs_model=False, fifo=True, now=NOW, lease_s=60)]
        rows.append(await inbox.claim_next(db, needs_model=False, fifo=True, now=NOW, lease_s=60))
        rows.append(await inbox.claim_next(db, needs_model=True, fifo=True, now=NOW, lease_s=60))
        assert all(r is not None and r.decision is None for r in rows)
        photo = rows[2]
        assert photo is not None and photo.facts == Facts(
            modem="sim2", partial=True, media_error="too_large", lat=22.5, lon=90.1
        )
        dispatcher, seen = recording_dispatcher(RouteTable(BOT))
        for row in rows:
            assert row is not None
            await dispatcher(row)
        assert [(h, d.rule) for h, d in seen] == [
            (Handler.COMMAND, "command"),
            (Handler.IGNORE, "staff_edit_chatter"),  # an edited "yes" in a room: not run
            (Handler.VICTIM, "victim"),
        ]
        say = seen[0][1].command
        assert say is not None and (say.name, say.rest) == ("say", "LF-1234 boat is coming")
    finally:
        await db.close()
