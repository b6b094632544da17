"""What intake decided about a message: the route table's verdict, stored on its inbox row.

Types only; the table itself is handlers/router.py. Workers and handlers read the stored
`Decision` and never decide again, so a restart handles a persisted row exactly as planned."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.commands import Command
from bot.models import Role
from bot.triage import Keyword


class Route(StrEnum):
    MODEL = "model"  # a model turn (worker "model")
    FAST = "fast"  # deterministic, no model (worker "fast")
    THROTTLED = "throttled"  # kept and attached to the case; over the sender's hourly cap
    MERGED = "merged"  # a repeat of a text still waiting: the first one's turn answers both


class Handler(StrEnum):
    """Which handler a worker runs for the row."""

    UNREADABLE = "public.unreadable"  # binary / empty / undecryptable: ask for plain text
    KEYWORD = "public.keyword"  # JOIN / STOP / HELP / STATUS
    IGNORE = "ignore"  # recorded, nothing to answer (chatter in a group room)
    EDIT_OF_COMMAND = "responder.edit_of_command"  # staff edit of a command: not run again
    EDIT = "responder.edit"  # staff edit addressed to the bot: not answered
    COMMAND = "responder.command"  # staff !command
    YES = "responder.yes"  # staff "yes" to a waiting confirmation
    VICTIM = "victim"  # model turn with victim tools
    STAFF = "responder.model"  # model turn with responder tools


@dataclass(frozen=True, slots=True)
class Decision:
    route: Route
    rule: str  # the rule of the table that matched (or "throttled" / "merged")
    handler: Handler
    role: Role
    keyword: Keyword | None = None  # the SMS keyword triage found (public senders)
    command: Command | None = None  # the command and its arguments, parsed once
