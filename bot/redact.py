"""Personal data stays out of logs: the one masker for phone numbers and Matrix ids, and
message bodies only when explicitly allowed."""

from __future__ import annotations

import logging

_log_bodies = False


def configure(*, log_bodies: bool) -> None:
    global _log_bodies  # noqa: PLW0603 - one process-wide switch set at start-up
    _log_bodies = log_bodies


def mask_peer(peer: str) -> str:
    """A sender or recipient as it may appear in a log line.

    '+8801712345123' -> '+88017*****123' (country and operator prefix kept for routing
    questions, the subscriber part hidden); a short number keeps only its last 2 digits;
    '@alice:example.org' -> '@al***:example.org'; room ids and aliases are not people and
    stay as they are."""
    if peer.startswith(("!", "#")):
        return peer  # a room, not a person
    if peer.startswith("@"):
        local, _, server = peer.partition(":")
        return f"{local[:3]}***:{server}" if len(local) > 3 else peer
    if len(peer) <= 6:
        return "*" * max(len(peer) - 2, 0) + peer[-2:]
    if len(peer) <= 9:  # too short to keep a prefix and still hide anything
        return "*" * (len(peer) - 3) + peer[-3:]
    return peer[:6] + "*" * (len(peer) - 9) + peer[-3:]


def body(text: str) -> str:
    """Message text for a log line: only at DEBUG and only when configured."""
    if _log_bodies and logging.getLogger().isEnabledFor(logging.DEBUG):
        return repr(text[:200])
    return f"<{len(text)} chars>"
