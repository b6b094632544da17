"""One error hierarchy for every boundary (modem, homeserver, model, config, commands).

Each boundary classifies its failures into one of three kinds, and the callers decide by kind, never
by message text or ``getattr``:

- ``TransientError``: worth another attempt later (or on another modem / host); never spends a
  message's attempt budget on its own and never dead-letters a message.
- ``PermanentError``: the same attempt will fail again (invalid number, text that cannot be encoded,
  a rejected model); dead letter with ``reason``.
- ``UserError``: the sender asked for something wrong (bad command argument); answer them with
  ``reason``, which is written for a human.
"""

from __future__ import annotations


class LifelineError(Exception):
    """Base of the three kinds. ``reason`` is short, specific and safe to log."""

    transient: bool = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(LifelineError):
    """Retry later; ``retry_after_s`` when the other side said how long to wait."""

    transient = True

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentError(LifelineError):
    """Retrying cannot help; dead letter with the reason."""


class UserError(LifelineError):
    """The sender's request is wrong; ``reason`` is the message to show them."""
