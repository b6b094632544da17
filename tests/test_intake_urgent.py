"""A burst read in one modem pass: its life threats are committed first (each with its sender's
other messages, in their order), so a model slot can take them before the rest of the batch is
stored; FIFO order (``[queue] order = "fifo"``) keeps the batch as it came. Real SQLite, the real
route table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from bot.intake import Accepted, Intake
from bot.models import Channel, Inbound, Priority, Role
from bot.store.db import Database
from handlers.router import RouteTable

NOW = 1_800_000_000.0
DROWNING = "my child is drowning, water over the roof"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "l.db")
    await database.open()
    yield database
    await database.close()


async def _no_hook(conn: aiosqlite.Connection, item: Accepted, now: float) -> None:
    return None


def make_intake(db: Database, commits: list[list[str]], *, urgent_first: bool) -> Intake:
    return Intake(
        db,
        role_of=lambda channel, peer: Role.PUBLIC,
        route=RouteTable("@lifeline:hs").decide,
        hook=_no_hook,
        per_sender_per_hour=100,
        clock=lambda: NOW,
        on_committed=lambda items: commits.append([i.msg.text for i in items]),
        urgent_first=urgent_first,
    )


def sms(peer: str, text: str) -> Inbound:
    return Inbound(Channel.SMS, peer, peer, text, f"{peer}|{text}", NOW)


BURST = [
    sms("+8801700000001", "is the road to Ulipur flooded?"),
    sms("+8801700000002", "where can we get dry food"),
    sms("+8801700000003", "need drinking water at Kurigram"),
    sms("+8801700000002", f"{DROWNING} (2)"),
    sms("+8801700000004", "when does the relief camp open?"),
    sms("+8801700000005", f"{DROWNING} (5)"),
]


async def stored(db: Database) -> list[tuple[str, int]]:
    rows = await db.fetchall("SELECT text, priority FROM inbox ORDER BY id")
    return [(r[0], r[1]) for r in rows]


async def test_life_threats_of_a_batch_are_committed_first_in_sender_order(
    db: Database,
) -> None:
    commits: list[list[str]] = []
    accepted = await make_intake(db, commits, urgent_first=True).accept(BURST)
    assert [a.msg.text for a in accepted] == [m.text for m in BURST]  # returned as it came
    # First commit: sender 2 (their earlier question first, raised to the life threat's
    # priority so it does not hold the threat back) and sender 5; then the rest, in order.
    assert commits == [
        ["where can we get dry food", f"{DROWNING} (2)", f"{DROWNING} (5)"],
        [
            "is the road to Ulipur flooded?",
            "need drinking water at Kurigram",
            "when does the relief camp open?",
        ],
    ]
    rows = await stored(db)
    assert [t for t, _ in rows] == [*commits[0], *commits[1]]
    assert [p for _, p in rows[:3]] == [Priority.CRITICAL] * 3


async def test_fifo_order_stores_the_batch_as_it_came(db: Database) -> None:
    commits: list[list[str]] = []
    await make_intake(db, commits, urgent_first=False).accept(BURST)
    assert commits == [[m.text for m in BURST]]
    assert [t for t, _ in await stored(db)] == [m.text for m in BURST]


async def test_a_batch_without_life_threats_is_one_commit(db: Database) -> None:
    commits: list[list[str]] = []
    routine = [m for m in BURST if DROWNING not in m.text]
    await make_intake(db, commits, urgent_first=True).accept(routine)
    assert commits == [[m.text for m in routine]]
