"""The SMS boundary's errors and how gammu's error names are classified.

``SendError`` is the base callers catch; it is always raised as ``TransientSendError`` (another
attempt later or on another modem may succeed) or ``PermanentSendError`` (dead letter), so
``isinstance(exc, TransientError)`` and ``exc.transient`` agree (bot/errors.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bot.errors import LifelineError, PermanentError, TransientError

# The modem said the message itself is wrong: no other SIM will take it either.
PERMANENT_SEND_ERRORS: Final = frozenset({"ERR_INVALIDDATA"})
# The link to the modem is broken: the modem goes down and the watchdog re-inits it.
_LINK_ERRORS: Final = frozenset(
    {
        "ERR_TIMEOUT",
        "ERR_NOTCONNECTED",
        "ERR_PHONEOFF",
        "ERR_NOSIM",
        "ERR_NOTRUNNING",
        "ERR_UNKNOWNRESPONSE",
        "ERR_FRAMENOTREQUESTED",
        "ERR_ABORTED",
        "ERR_CORRUPTED",
        "ERR_WRONGCRC",
        "ERR_NOECHO",
    }
)
UNSUPPORTED: Final = frozenset({"ERR_NOTSUPPORTED", "ERR_NOTIMPLEMENTED"})
# Errors that mean "this stored message cannot be parsed", not "the modem is broken".
UNREADABLE_SLOT: Final = frozenset(
    {
        "ERR_FILENOTSUPPORTED",
        "ERR_CORRUPTED",
        "ERR_UNKNOWNRESPONSE",
        "ERR_NOTSUPPORTED",
        "ERR_INVALIDDATA",
        "ERR_BUG",
    }
)


def is_link_error(exc: BaseException) -> bool:
    """A gammu error that means the modem link is broken (not just this one request)."""
    name = type(exc).__name__
    return name in _LINK_ERRORS or name.startswith("ERR_DEVICE")


def gsm_error_text(exc: BaseException) -> str:
    """``ERR_TIMEOUT in GetNextSMS: No response in specified timeout.`` from a gammu.GSMError."""
    info = exc.args[0] if exc.args else None
    if isinstance(info, Mapping):
        return f"{type(exc).__name__} in {info.get('Where', '?')}: {info.get('Text', '')}"
    return f"{type(exc).__name__}: {exc}"


class SendError(LifelineError):
    """A send failed; raised only as one of the two subclasses below."""

    def __str__(self) -> str:
        kind = "transient" if self.transient else "permanent"
        return f"{kind}: {self.reason}"


class TransientSendError(SendError, TransientError):
    """Another attempt (later, or on another modem) may succeed."""


class PermanentSendError(SendError, PermanentError):
    """No modem will ever send this (invalid number, unencodable or too long text)."""


class ModemError(TransientError):
    """The modem failed (gammu error or timeout); it is ``down`` until the watchdog re-inits it."""


class ReceiveHandlerError(TransientError):
    """``on_receive`` raised; nothing was deleted from the SIM (the next pass re-reads it)."""
