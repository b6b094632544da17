"""The one reply builder: an answer goes back the way the message came (same channel, sender and
conversation), under an idempotency key that names what it answers, shaped for that channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bot import sms_text
from bot.models import Channel, Lane, Outbound


class Sender(Protocol):
    """Where a message came from: an inbox row, or an inbound message still at intake."""

    @property
    def channel(self) -> Channel: ...
    @property
    def peer(self) -> str: ...
    @property
    def conversation(self) -> str: ...


def shape(channel: Channel, text: str, segment_budget: int, suffix: str = "") -> str:
    """Plain text; on SMS also GSM-folded where possible and cut to ``segment_budget`` segments
    (the ``suffix``, e.g. a case code, always survives the cut)."""
    if channel is Channel.SMS:
        return sms_text.fit(text, segment_budget, suffix=suffix)
    return sms_text.to_plain(text) + suffix


def reply_to(
    sender: Sender,
    text: str,
    key: str,
    lane: Lane = Lane.REPLY,
    meta: Mapping[str, Any] | None = None,
) -> Outbound:
    """``text`` as it will be sent (shape it first); ``meta`` carries e.g. the SMS modem the
    sender wrote to, so the answer leaves on the line they know."""
    to = (sender.channel, sender.peer, sender.conversation)  # Outbound's first three fields
    return Outbound(*to, text=text, idem_key=key, lane=lane, meta=dict(meta or {}))
