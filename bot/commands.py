"""The one parsed-command type: a staff ``!name args…`` or a public SMS keyword (JOIN, STOP …).

Parsed once, at intake, by the route table (handlers/router.py); the decision stored on the inbox
row carries it, and handlers read it from there instead of parsing the text again."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bot.addressing import command_text
from bot.triage import Keyword


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # "approve", "say" … or a keyword's value ("join", "stop", "help", "status")
    args: tuple[str, ...] = ()  # shell-like words after the name
    rest: str = ""  # raw text after the name (a !say's message, a JOIN's area)


def parse_command(text: str, bot_user_id: str = "") -> Command | None:
    """``!name args…``; a Matrix reply's quoted fallback and a leading mention of the bot
    ("Lifeline: !approve LF-1234") are not part of the command."""
    text = command_text(text, bot_user_id).strip()
    if not text.startswith("!") or len(text) < 2:
        return None
    head, _, rest = text[1:].partition(" ")
    try:
        args = shlex.split(rest)
    except ValueError:
        args = rest.split()
    return Command(head.lower(), tuple(args), rest.strip())


def keyword_command(keyword: Keyword, argument: str) -> Command:
    """An SMS keyword as a command: the argument (JOIN area, STATUS case code) is ``rest``."""
    return Command(keyword.value, tuple(argument.split()), argument)
