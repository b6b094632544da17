"""The line a message posted late carries: its real age and why it was held back.

A coordinator reading alerts after a homeserver outage must see that "new case" happened 23
minutes ago, not now."""

from __future__ import annotations


def age_text(seconds: float) -> str:
    """45 s, 23 min, 2 h 05 min."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def why_late(last_error: str | None) -> str:
    """What held the message back, from the row's last send error (the transport's words)."""
    if not last_error:
        return "the queue was busy"
    if "M_LIMIT_EXCEEDED" in last_error:
        return "homeserver was rate-limiting"
    return "homeserver was down"


def late_note(
    created_at: float, now: float, last_error: str | None, *, after_s: float
) -> str | None:
    """``raised 23 min ago, delivered late: homeserver was down``, or None when on time."""
    age = now - created_at
    if age <= after_s:
        return None
    return f"raised {age_text(age)} ago, delivered late: {why_late(last_error)}"
