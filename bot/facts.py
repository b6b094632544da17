"""The intake boundary: the transports' ``meta`` keys become typed `Facts`, once.

The transports still describe what they saw as ``meta`` keys (binary, empty, partial, modem on
SMS; is_direct, addressed, edit_of, undecryptable, media_error, lat/lon … on Matrix). Intake calls
`with_facts` on every message before anything decides on it; from there on, routing and handlers
read ``Inbound.facts`` / ``InboxRow.facts`` only. ``meta`` itself is stored unchanged as the
transport's diagnostic record (event id, SMSC time, parts …)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.models import Facts, Inbound

_NO_FACTS = Facts()


def facts_from_meta(meta: Mapping[str, Any]) -> Facts:
    """Typed facts from a transport's ``meta``; a key's truthiness decides, as it always did
    (a malformed value never raises: the message must still be stored)."""
    lat, lon = _coordinate(meta.get("lat")), _coordinate(meta.get("lon"))
    if lat is None or lon is None:
        lat = lon = None  # half a position is no position
    direct = meta.get("is_direct")
    return Facts(
        modem=_text(meta.get("modem")),
        binary=bool(meta.get("binary")),
        empty=bool(meta.get("empty")),
        partial=bool(meta.get("partial")),
        undecryptable=bool(meta.get("undecryptable")),
        is_direct=None if direct is None else bool(direct),
        addressed=bool(meta.get("addressed")),
        edit_of=_text(meta.get("edit_of")),
        in_reply_to=_text(meta.get("in_reply_to")),
        msgtype=_text(meta.get("msgtype")) or "",
        voice=bool(meta.get("voice")),
        media_error=_text(meta.get("media_error")),
        lat=lat,
        lon=lon,
    )


def with_facts(msg: Inbound) -> Inbound:
    """``msg`` with its facts read from ``meta``, unless its transport filled them already."""
    if msg.facts != _NO_FACTS:
        return msg
    return replace(msg, facts=facts_from_meta(msg.meta))


def _text(value: object) -> str | None:
    return str(value) if value else None


def _coordinate(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
