"""The route table without a gateway: each rule, first-match order, the model fallback, the one
command parser. (The transports' typed facts are tested with each transport:
tests/test_matrix_mapping.py, tests/test_sms_reassembly.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import Command, keyword_command, parse_command
from bot.models import Channel, Facts, Inbound, Role
from bot.route import Decision, Handler, Route
from bot.triage import Keyword, triage
from handlers.router import RULES, Dispatcher, RouteTable, Rule

BOT = "@lifeline:hs"
TABLE = RouteTable(BOT)


def msg(text: str, channel: Channel = Channel.MATRIX, **facts: Any) -> Inbound:
    peer = "+8801711000000" if channel is Channel.SMS else "@someone:hs"
    return Inbound(channel, peer, "!room:hs", text, "$e", 0.0, facts=Facts(**facts))


def decide(text: str, role: Role, channel: Channel = Channel.MATRIX, **meta: Any) -> Decision:
    return TABLE.decide(msg(text, channel, **meta), role, triage(text))


# (text, role, channel, meta) → the rule that must match, in table order.
CASES: list[tuple[str, Role, Channel, dict[str, Any], str, Route, Handler]] = [
    ("", Role.PUBLIC, Channel.SMS, {"binary": True}, "unreadable", Route.FAST, Handler.UNREADABLE),
    ("", Role.PUBLIC, Channel.SMS, {"empty": True}, "unreadable", Route.FAST, Handler.UNREADABLE),
    ("", Role.PUBLIC, Channel.MATRIX, {"undecryptable": True, "is_direct": True}, "unreadable",
     Route.FAST, Handler.UNREADABLE),
    ("STOP", Role.PUBLIC, Channel.SMS, {}, "keyword", Route.FAST, Handler.KEYWORD),
    ("hello all", Role.PUBLIC, Channel.MATRIX, {"is_direct": False}, "public_group", Route.FAST,
     Handler.IGNORE),
    ("!say LF-1 hi", Role.RESPONDER, Channel.MATRIX, {"edit_of": "$o", "is_direct": True},
     "staff_edit_of_command", Route.FAST, Handler.EDIT_OF_COMMAND),
    ("lifeline, how many?", Role.RESPONDER, Channel.MATRIX, {"edit_of": "$o", "is_direct": False},
     "staff_edit", Route.FAST, Handler.EDIT),
    ("how many?", Role.RESPONDER, Channel.MATRIX, {"edit_of": "$o", "is_direct": True},
     "staff_edit", Route.FAST, Handler.EDIT),
    ("we are busy", Role.RESPONDER, Channel.MATRIX, {"edit_of": "$o", "is_direct": False},
     "staff_edit_chatter", Route.FAST, Handler.IGNORE),
    ("!teams", Role.RESPONDER, Channel.MATRIX, {"is_direct": False}, "command", Route.FAST,
     Handler.COMMAND),
    ("yes", Role.COORDINATOR, Channel.MATRIX, {"is_direct": False}, "yes", Route.FAST,
     Handler.YES),
    ("chatting among ourselves", Role.COORDINATOR, Channel.MATRIX, {"is_direct": False},
     "staff_chatter", Route.FAST, Handler.IGNORE),
    ("water rising, we are on the roof", Role.PUBLIC, Channel.SMS, {}, "victim", Route.MODEL,
     Handler.VICTIM),
    ("which cases are overdue?", Role.COORDINATOR, Channel.MATRIX, {"is_direct": True}, "staff",
     Route.MODEL, Handler.STAFF),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "role", "channel", "meta", "rule", "route", "handler"),
    CASES,
    ids=[f"{c[4]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_rule(
    text: str,
    role: Role,
    channel: Channel,
    meta: dict[str, Any],
    rule: str,
    route: Route,
    handler: Handler,
) -> None:
    d = decide(text, role, channel, **meta)
    assert (d.rule, d.route, d.handler, d.role) == (rule, route, handler, role)


def test_every_rule_has_a_case_and_the_last_one_takes_anything() -> None:
    assert {r.name for r in RULES} == {c[4] for c in CASES}
    assert len({r.name for r in RULES}) == len(RULES)
    last = RULES[-1]
    assert last.route is Route.MODEL
    assert decide("anything at all", Role.RESPONDER, is_direct=True).rule == last.name


@pytest.mark.parametrize(
    ("text", "role", "meta", "rule"),
    [
        # A keyword wins over "a stranger in a group room": STOP is honoured anywhere.
        ("STOP", Role.PUBLIC, {"is_direct": False}, "keyword"),
        # Unreadable wins over the group rule too: the sender is asked to resend.
        ("", Role.PUBLIC, {"is_direct": False, "undecryptable": True}, "unreadable"),
        # An edited command is never run again, even though it is a command.
        ("!approve LF-1234", Role.COORDINATOR, {"edit_of": "$o", "is_direct": False},
         "staff_edit_of_command"),
        # An edited "yes" is not a confirmation.
        ("yes", Role.COORDINATOR, {"edit_of": "$o", "is_direct": True}, "staff_edit"),
        # A command in a group room needs no mention: it is not chatter.
        ("!teams", Role.RESPONDER, {"is_direct": False}, "command"),
        # "!yes" is the command, not the bare answer.
        ("!yes", Role.COORDINATOR, {"is_direct": True}, "command"),
        # Public text never runs a staff command: "!approve" from the public is a message.
        ("!approve LF-1234", Role.PUBLIC, {"is_direct": True}, "victim"),
        # A public edit goes through like a new message ("we are 6, not 4").
        ("we are 6, not 4", Role.PUBLIC, {"is_direct": True, "edit_of": "$o"}, "victim"),
    ],
)  # fmt: skip
def test_first_match_order(text: str, role: Role, meta: dict[str, Any], rule: str) -> None:
    assert decide(text, role, **meta).rule == rule


def test_first_match_wins_in_any_table() -> None:
    always = Rule("first", lambda s: True, Route.FAST, Handler.IGNORE)
    never = Rule("never", lambda s: False, Route.FAST, Handler.COMMAND)
    also = Rule("second", lambda s: True, Route.MODEL, Handler.STAFF)
    table = RouteTable(BOT, (never, always, also))
    assert table.decide(msg("x"), Role.RESPONDER, triage("x")).rule == "first"


def test_model_fallback_for_both_roles() -> None:
    victim = decide("boat needed at the school", Role.PUBLIC, Channel.SMS)
    assert (victim.route, victim.handler, victim.command) == (Route.MODEL, Handler.VICTIM, None)
    for meta in ({"is_direct": True}, {"is_direct": False, "addressed": True}):
        staff = decide("how many open cases?", Role.RESPONDER, **meta)
        assert (staff.route, staff.handler) == (Route.MODEL, Handler.STAFF)
    # Named in the text instead of a pill: still addressed.
    assert decide("lifeline, which cases are overdue?", Role.COORDINATOR).rule == "staff"


def test_decision_carries_command_and_keyword() -> None:
    d = decide("Lifeline: !reject LF-1234 no boats left", Role.COORDINATOR, is_direct=False)
    assert d.command == Command(
        "reject", ("LF-1234", "no", "boats", "left"), "LF-1234 no boats left"
    )
    assert d.keyword is None
    join = decide("JOIN Sylhet Sadar", Role.PUBLIC, Channel.SMS)
    assert join.keyword is Keyword.JOIN
    assert join.command == Command("join", ("Sylhet", "Sadar"), "Sylhet Sadar")
    # A staff member's "STOP" is not an SMS keyword.
    assert decide("STOP", Role.RESPONDER, is_direct=True).keyword is None


def test_command_parser() -> None:
    """The one parser: a reply's quoted fallback and a leading mention are not the command."""
    fallback = "> <@lifeline:hs> [CRITICAL] LF-1234 DISPATCH REQUEST\n> more\n\n!approve LF-1234"
    for text in (fallback, "lifeline, !approve LF-1234", "@lifeline:hs:!approve  LF-1234"):
        assert parse_command(text, BOT) == Command("approve", ("LF-1234",), "LF-1234"), text
        assert decide(text, Role.COORDINATOR, is_direct=False).rule == "command"
    assert parse_command("ops: !teams", "@ops:hs") == Command("teams", (), "")
    assert parse_command("lifeline, which cases are overdue?", BOT) is None
    assert parse_command("!say LF-1 'unbalanced", BOT) == Command(
        "say", ("LF-1", "'unbalanced"), "LF-1 'unbalanced"
    )
    assert parse_command("!", BOT) is None
    assert keyword_command(Keyword.STATUS, "LF-12") == Command("status", ("LF-12",), "LF-12")


def test_staff_routes_as_before() -> None:
    """The old router's cases (test_matrix_transport.test_command_addressing until issue 11)."""
    fallback = "> <@lifeline:hs> [CRITICAL] LF-1234 DISPATCH REQUEST\n> more\n\n!approve LF-1234"

    def staff(text: str, **meta: Any) -> Route:
        return decide(text, Role.COORDINATOR, **{"is_direct": False, **meta}).route

    assert staff("Lifeline: !approve LF-1234") is Route.FAST
    assert staff(fallback) is Route.FAST
    assert staff("lifeline, which cases are overdue?") is Route.MODEL
    assert staff("how many cases?", addressed=True) is Route.MODEL
    assert staff("chatting among ourselves") is Route.FAST
    assert staff("lifeline, which cases are overdue?", edit_of="$orig") is Route.FAST


def test_dispatcher_needs_a_handler_for_every_route() -> None:
    with pytest.raises(ValueError, match="no handler"):
        Dispatcher(TABLE, {})
