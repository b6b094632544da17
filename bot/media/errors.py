"""Why a voice note or photo cannot be used: a machine reason and a short message fit to send
back to the sender. Every rejection is logged where it is made."""

from __future__ import annotations

import logging

from bot.errors import PermanentError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

REASON_EMPTY = "empty"
REASON_TOO_LARGE = "too_large"
REASON_UNSUPPORTED = "unsupported"
REASON_AUDIO_CORRUPT = "audio_corrupt"
REASON_IMAGE_CORRUPT = "image_corrupt"
REASON_IMAGE_TOO_LARGE = "image_too_large"

_USER_MESSAGES: dict[str, str] = {
    REASON_EMPTY: "Your file arrived empty. Please send it again or send your message as text.",
    REASON_TOO_LARGE: (
        "Your file is too large for us to process. "
        "Please send a shorter voice note, a smaller photo, or text."
    ),
    REASON_UNSUPPORTED: (
        "We cannot read this kind of file. Please send a photo, a voice note, or text."
    ),
    REASON_AUDIO_CORRUPT: ("We could not play your voice note. Please send your message as text."),
    REASON_IMAGE_CORRUPT: (
        "We could not open your photo. Please send it again or describe the situation in text."
    ),
    REASON_IMAGE_TOO_LARGE: (
        "Your photo is too large for us to process. "
        "Please send a smaller photo or describe the situation in text."
    ),
}


class MediaError(PermanentError):
    """A voice note or photo we cannot use (sending the same bytes again cannot help).

    reason: machine code (one of the REASON_* constants), for logs, metrics and branching.
    user_message: short plain English for the sender.
    detail: technical cause, for logs only (never sent to the sender).
    """

    def __init__(self, reason: str, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(reason)
        self.user_message = user_message or _USER_MESSAGES.get(
            reason, _USER_MESSAGES[REASON_UNSUPPORTED]
        )
        self.detail = detail
        self.args = (f"{reason}: {detail}" if detail else reason,)


def fail(reason: str, detail: str) -> MediaError:
    """Build the error and log it here, so no rejection goes unrecorded."""
    log.warning("media rejected: reason=%s detail=%s", reason, detail)
    return MediaError(reason, detail)


def check_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise fail(REASON_EMPTY, "0 bytes")
    if len(data) > max_bytes:
        raise fail(REASON_TOO_LARGE, f"{len(data)} bytes > limit {max_bytes}")
