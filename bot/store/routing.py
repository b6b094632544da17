"""The inbox row's typed facts and route decision (migration 6): written once at intake, read by
every worker. Separate from inbox.py so the row's lifecycle queries stay one module."""

from __future__ import annotations

import json

import aiosqlite

from bot.commands import Command
from bot.models import Facts, Role
from bot.route import Decision, Handler, Route
from bot.store.rows import RowLike
from bot.triage import Keyword


async def record_facts(conn: aiosqlite.Connection, inbox_id: int, facts: Facts) -> None:
    """With the row's insert (inbox.insert): what the transport observed, typed."""
    await conn.execute(
        """UPDATE inbox SET modem=?, binary=?, empty=?, partial=?, undecryptable=?,
               is_direct=?, addressed=?, edit_of=?, in_reply_to=?, msgtype=?, voice=?,
               media_error=?, lat=?, lon=?
           WHERE id=?""",
        (
            facts.modem,
            int(facts.binary),
            int(facts.empty),
            int(facts.partial),
            int(facts.undecryptable),
            None if facts.is_direct is None else int(facts.is_direct),
            int(facts.addressed),
            facts.edit_of,
            facts.in_reply_to,
            facts.msgtype,
            int(facts.voice),
            facts.media_error,
            facts.lat,
            facts.lon,
            inbox_id,
        ),
    )


async def record_decision(conn: aiosqlite.Connection, inbox_id: int, decision: Decision) -> None:
    """In the intake transaction, right after the row's insert: the route table's decision."""
    cmd = decision.command
    await conn.execute(
        """UPDATE inbox SET route=?, rule=?, handler=?, keyword=?, command=?, command_args=?,
               command_rest=?
           WHERE id=?""",
        (
            decision.route.value,
            decision.rule,
            decision.handler.value,
            None if decision.keyword is None else decision.keyword.value,
            None if cmd is None else cmd.name,
            None if cmd is None else json.dumps(list(cmd.args)),
            None if cmd is None else cmd.rest,
            inbox_id,
        ),
    )


def facts_of(r: RowLike) -> Facts:
    return Facts(
        modem=r["modem"],
        binary=bool(r["binary"]),
        empty=bool(r["empty"]),
        partial=bool(r["partial"]),
        undecryptable=bool(r["undecryptable"]),
        is_direct=None if r["is_direct"] is None else bool(r["is_direct"]),
        addressed=bool(r["addressed"]),
        edit_of=r["edit_of"],
        in_reply_to=r["in_reply_to"],
        msgtype=r["msgtype"],
        voice=bool(r["voice"]),
        media_error=r["media_error"],
        lat=r["lat"],
        lon=r["lon"],
    )


def decision_of(r: RowLike) -> Decision | None:
    """None for a row stored before migration 6 (the route table decides it when taken)."""
    if r["route"] is None:
        return None
    name = r["command"]
    return Decision(
        route=Route(r["route"]),
        rule=r["rule"],
        handler=Handler(r["handler"]),
        role=Role(r["role"]),
        keyword=None if r["keyword"] is None else Keyword(r["keyword"]),
        command=None
        if name is None
        else Command(name, tuple(json.loads(r["command_args"])), r["command_rest"]),
    )
