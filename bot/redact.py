"""Personal data stays out of logs: numbers masked, bodies only when explicitly allowed."""

from __future__ import annotations

import logging

_log_bodies = False


def configure(*, log_bodies: bool) -> None:
    global _log_bodies  # noqa: PLW0603 - one process-wide switch set at start-up
    _log_bodies = log_bodies


def mask_peer(peer: str) -> str:
    """'+8801712345123' -> '+88017*****123'; Matrix ids keep their server part."""
    if peer.startswith(("!", "#")):
        return peer  # a room, not a person
    if peer.startswith("@"):
        local, _, server = peer.partition(":")
        return f"{local[:3]}***:{server}" if len(local) > 3 else peer
    if len(peer) <= 6:
        return "*" * max(len(peer) - 2, 0) + peer[-2:]
    return peer[:6] + "*" * (len(peer) - 9) + peer[-3:]


def body(text: str) -> str:
    """Message text for a log line: only at DEBUG and only when configured."""
    if _log_bodies and logging.getLogger().isEnabledFor(logging.DEBUG):
        return repr(text[:200])
    return f"<{len(text)} chars>"
