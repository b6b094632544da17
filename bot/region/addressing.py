"""Which staff commands typed in the regional room this gateway acts on. Pure, unit-tested.

A command addressed to a case code (``!approve LAL-1234 boat-3``) belongs to the district of the
code's prefix: only LAL's gateway runs it, and only for one of LAL's coordinators (the transport
checks the sender's role). Everything else said in the regional room — chatter, commands for other
districts, codes without a district (``LF-1234`` exists in every district) — is not this gateway's
business and never becomes an inbox row here."""

from __future__ import annotations

import re

from bot.commands import Command, parse_command

# The existing case commands (bot/commands.py, handlers/responder.py) whose first word is a code.
CASE_COMMANDS = frozenset(
    {"approve", "reject", "assign", "arrived", "resolve", "priority", "people", "say", "case"}
)
_CODE = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,7})[-_]?\d{4,8}$")


def code_district(code: str) -> str | None:
    """``LAL-1234`` → ``LAL``; None for a code without a district prefix (``LF-1234``, ``1234``)."""
    m = _CODE.match(code.strip().strip("#.,;:!?()[]<>\"'"))
    if m is None or m.group(1).upper() == "LF":
        return None
    return m.group(1).upper()


def regional_command(text: str, bot_user_id: str, district: str) -> Command | None:
    """The command in a regional-room message if it is this district's to run, else None."""
    cmd = parse_command(text, bot_user_id)
    if cmd is None or cmd.name not in CASE_COMMANDS or not cmd.args:
        return None
    return cmd if code_district(cmd.args[0]) == district.upper() else None
