"""Which path a message takes: the model, the fast deterministic path, or none."""

from __future__ import annotations

import re

from bot.intake import Route, RouteFn
from bot.models import Channel, Inbound, Role
from bot.triage import Triage


def make_route(bot_user_id: str) -> RouteFn:
    localpart = bot_user_id.lstrip("@").split(":", 1)[0].lower()
    mention = re.compile(rf"\b({re.escape(localpart)}|lifeline)\b", re.I)

    def route(msg: Inbound, role: Role, verdict: Triage) -> Route:
        if role is Role.PUBLIC:
            if msg.meta.get("binary") or msg.meta.get("empty") or msg.meta.get("undecryptable"):
                return "fast"
            if verdict.keyword is not None:
                return "fast"
            if msg.channel is Channel.MATRIX and not msg.meta.get("is_direct", True):
                return "fast"  # a stranger in a group room: recorded, not a case
            return "model"
        if msg.text.lstrip().startswith("!"):
            return "fast"
        if msg.channel is Channel.MATRIX and not msg.meta.get("is_direct", False):
            return "model" if mention.search(msg.text) else "fast"
        return "model"

    return route
