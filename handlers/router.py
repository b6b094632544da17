"""The route table: evaluated once at intake, first match wins, the model turn is the fallback.

Each rule names the handler that will answer the row; the decision (route, handler, keyword,
role, command and arguments) is stored on the inbox row and workers dispatch on it, so nothing
downstream parses the text or looks at the sender's role again. Rows stored before the decision
existed (migration 6) are decided by the same table when a worker first takes them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from bot.addressing import command_text, mention_pattern
from bot.commands import Command, keyword_command, parse_command
from bot.models import Channel, Facts, Inbound, Outbound, Role
from bot.route import Decision, Handler, Route
from bot.store.inbox import InboxRow
from bot.triage import Triage, triage
from handlers.authority import is_yes

if TYPE_CHECKING:
    from handlers.public import PublicCommands
    from handlers.responder import ResponderFlow
    from handlers.victim import VictimFlow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """A message as the rules see it."""

    channel: Channel
    text: str
    facts: Facts
    role: Role
    verdict: Triage
    bot_user_id: str

    @property
    def public(self) -> bool:
        return self.role is Role.PUBLIC

    @property
    def group(self) -> bool:
        """A Matrix room that is not a direct chat (an unknown room counts as one for staff)."""
        return self.channel is Channel.MATRIX and not self.facts.is_direct

    @cached_property
    def command_text(self) -> str:
        return command_text(self.text, self.bot_user_id)

    @cached_property
    def command(self) -> Command | None:
        if self.public:  # nothing a member of the public sends runs a staff command
            k = self.verdict.keyword
            return None if k is None else keyword_command(k, self.verdict.argument)
        return parse_command(self.text, self.bot_user_id)

    @property
    def addressed(self) -> bool:
        return self.facts.addressed or bool(
            mention_pattern(self.bot_user_id).search(self.command_text)
        )


@dataclass(frozen=True)
class Rule:
    name: str
    when: Callable[[Subject], bool]
    route: Route
    handler: Handler


def _unreadable(s: Subject) -> bool:
    return s.facts.binary or s.facts.empty or s.facts.undecryptable


# First match wins. A member of the public editing a message (Matrix m.replace) goes through like
# any new message: "we are 6, not 4" is exactly the correction a case needs. Staff edits are never
# run again (an edited !say would relay twice, an edited !advise would broadcast twice).
RULES: tuple[Rule, ...] = (
    Rule("unreadable", lambda s: s.public and _unreadable(s), Route.FAST, Handler.UNREADABLE),
    Rule(
        "keyword", lambda s: s.public and s.verdict.keyword is not None, Route.FAST, Handler.KEYWORD
    ),
    # A stranger in a group room: recorded, not a case (a DM is said explicitly by Matrix).
    Rule(
        "public_group",
        lambda s: s.public and s.channel is Channel.MATRIX and s.facts.is_direct is False,
        Route.FAST,
        Handler.IGNORE,
    ),
    Rule(
        "staff_edit_of_command",
        lambda s: not s.public and bool(s.facts.edit_of) and s.command is not None,
        Route.FAST,
        Handler.EDIT_OF_COMMAND,
    ),
    Rule(
        "staff_edit",
        lambda s: (
            not s.public and bool(s.facts.edit_of) and (bool(s.facts.is_direct) or s.addressed)
        ),
        Route.FAST,
        Handler.EDIT,
    ),
    Rule(
        "staff_edit_chatter",
        lambda s: not s.public and bool(s.facts.edit_of),
        Route.FAST,
        Handler.IGNORE,
    ),
    Rule(
        "command",
        lambda s: not s.public and s.command_text.lstrip().startswith("!"),
        Route.FAST,
        Handler.COMMAND,
    ),
    # A "yes" answers a confirmation: no model needed (or wanted).
    Rule(
        "yes",
        lambda s: not s.public and is_yes(s.command_text, s.bot_user_id),
        Route.FAST,
        Handler.YES,
    ),
    Rule(
        "staff_chatter",
        lambda s: not s.public and s.group and not s.addressed,
        Route.FAST,
        Handler.IGNORE,
    ),
    Rule("victim", lambda s: s.public, Route.MODEL, Handler.VICTIM),
    Rule("staff", lambda s: True, Route.MODEL, Handler.STAFF),  # the last fallback
)


class RouteTable:
    def __init__(self, bot_user_id: str, rules: Sequence[Rule] = RULES) -> None:
        self.bot_user_id = bot_user_id
        self.rules = tuple(rules)

    def decide(self, msg: Inbound, role: Role, verdict: Triage) -> Decision:
        return self._decide(
            Subject(msg.channel, msg.text, msg.facts, role, verdict, self.bot_user_id)
        )

    def decide_row(self, row: InboxRow) -> Decision:
        """For a row stored before decisions were (migration 6): the same table, once."""
        subject = Subject(
            row.channel, row.text, row.facts, row.role, triage(row.text), self.bot_user_id
        )
        return self._decide(subject)

    def _decide(self, s: Subject) -> Decision:
        rule = next(r for r in self.rules if r.when(s))
        return Decision(
            route=rule.route,
            rule=rule.name,
            handler=rule.handler,
            role=s.role,
            keyword=s.verdict.keyword if s.public else None,
            command=s.command,
        )


HandlerFn = Callable[[InboxRow, Decision], Awaitable[list[Outbound]]]


async def _nothing(row: InboxRow, decision: Decision) -> list[Outbound]:
    return []


class Dispatcher:
    """What a worker runs for a row: the handler its stored decision names."""

    def __init__(self, table: RouteTable, handlers: Mapping[Handler, HandlerFn]) -> None:
        missing = set(Handler) - set(handlers) - {Handler.IGNORE}
        if missing:
            raise ValueError(f"no handler for {sorted(missing)}")
        self._table = table
        self._handlers = {Handler.IGNORE: _nothing, **handlers}

    async def __call__(self, row: InboxRow) -> list[Outbound]:
        decision = row.decision
        if decision is None:
            decision = self._table.decide_row(row)
            log.info("inbox #%d stored before routing was: decided now (%s)", row.id, decision.rule)
        return await self._handlers[decision.handler](row, decision)


def routes(
    bot_user_id: str, public: PublicCommands, responder: ResponderFlow, victim: VictimFlow
) -> tuple[RouteTable, Dispatcher]:
    """The table intake decides with, and the dispatcher both workers run: the handler wiring."""

    async def victim_turn(row: InboxRow, decision: Decision) -> list[Outbound]:
        return await victim.handle(row)

    table = RouteTable(bot_user_id)
    return table, Dispatcher(
        table,
        {
            Handler.UNREADABLE: public.unreadable,
            Handler.KEYWORD: public.keyword,
            Handler.EDIT_OF_COMMAND: responder.edit_of_command,
            Handler.EDIT: responder.edit,
            Handler.COMMAND: responder.command,
            Handler.YES: responder.yes,
            Handler.VICTIM: victim_turn,
            Handler.STAFF: responder.model_turn,
        },
    )
