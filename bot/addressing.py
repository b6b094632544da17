"""How a Matrix message addresses the bot: reply fallbacks and leading mentions.

Pure text helpers shared by the Matrix transport (which strips reply fallbacks as the spec asks
clients to) and the router/command parser (which also accept "Lifeline: !approve LF-1234")."""

from __future__ import annotations

import re
from functools import lru_cache

# A reply's body starts with the quoted original ("> <@alice:hs> text", more "> " lines for a
# multi-line original), then a blank line, then the reply itself. Emotes quote as "> * <@alice>".
_REPLY_FALLBACK = re.compile(r"\A> (?:\* )?<(?P<sender>[^>\n]+)>[^\n]*\n(?:>[^\n]*\n)*\n")


def strip_reply_fallback(text: str) -> str:
    """The reply without the quoted original; any other text is returned unchanged."""
    m = _REPLY_FALLBACK.match(text)
    return text[m.end() :] if m else text


def reply_fallback_sender(text: str) -> str | None:
    """Who wrote the message a reply quotes ("> <@alice:hs> …"), when the body has a fallback."""
    m = _REPLY_FALLBACK.match(text)
    return m.group("sender") if m else None


@lru_cache(maxsize=8)
def _names(bot_user_id: str) -> str:
    localpart = bot_user_id.lstrip("@").split(":", 1)[0].lower()
    names = {"lifeline"} | ({localpart} if localpart else set())
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


@lru_cache(maxsize=8)
def mention_pattern(bot_user_id: str) -> re.Pattern[str]:
    """Anywhere in the text: the bot's localpart or "lifeline" as a word."""
    return re.compile(rf"\b({_names(bot_user_id)})\b", re.I)


@lru_cache(maxsize=8)
def _leading_mention(bot_user_id: str) -> re.Pattern[str]:
    # "Lifeline: !x", "lifeline !x", "@lifeline:hs: !x", "lifeline, !x" — only before a command.
    return re.compile(
        rf"\A\s*@?(?:{_names(bot_user_id)})(?::[\w.-]+(?::\d+)?)?\s*[:,]?\s*(?=!)", re.I
    )


def command_text(text: str, bot_user_id: str = "") -> str:
    """The text a command parser should see: no reply fallback, no leading bot mention before a
    ``!command``. Text that is not a command comes back without its fallback only."""
    text = strip_reply_fallback(text)
    m = _leading_mention(bot_user_id).match(text)
    return text[m.end() :] if m else text
