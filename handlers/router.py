"""Which path a message takes: the model, the fast deterministic path, or none."""

from __future__ import annotations

from bot.addressing import command_text, mention_pattern
from bot.intake import Route, RouteFn
from bot.models import Channel, Inbound, Role
from bot.triage import Triage
from handlers.authority import is_yes


def make_route(bot_user_id: str) -> RouteFn:
    mention = mention_pattern(bot_user_id)

    def route(msg: Inbound, role: Role, verdict: Triage) -> Route:
        if role is Role.PUBLIC:
            # A member of the public editing a message (Matrix m.replace) goes through like any
            # new message: the edit has its own event id, and "we are 6, not 4" is exactly the
            # kind of correction a case needs. Nothing a victim sends can run a command.
            if msg.meta.get("binary") or msg.meta.get("empty") or msg.meta.get("undecryptable"):
                return "fast"
            if verdict.keyword is not None:
                return "fast"
            if msg.channel is Channel.MATRIX and not msg.meta.get("is_direct", True):
                return "fast"  # a stranger in a group room: recorded, not a case
            return "model"
        if msg.meta.get("edit_of"):
            # Staff edits are never run again (an edited !say would relay twice, an edited
            # !advise would broadcast twice); the fast path answers with a notice instead.
            return "fast"
        text = command_text(msg.text, bot_user_id)
        if text.lstrip().startswith("!") or is_yes(text, bot_user_id):
            return "fast"  # a "yes" answers a confirmation: no model needed (or wanted)
        if msg.channel is Channel.MATRIX and not msg.meta.get("is_direct", False):
            addressed = msg.meta.get("addressed") or mention.search(text)
            return "model" if addressed else "fast"
        return "model"

    return route
