"""Prepare voice notes and photos for Gemma 4 on Ollama.

The format is always sniffed from the bytes (sniff.py); the sender's mimetype is only a hint.
Voice notes become 16 kHz mono WAV clips (audio.py), photos an upright metadata-free JPEG plus
the EXIF GPS position (image.py). Every rejection is a :class:`MediaError` (errors.py) carrying a
machine reason and a short message fit to send back. Everything here is synchronous and
CPU-bound: callers run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging

from bot.media.audio import (
    SAMPLE_RATE,
    AudioClip,
    PreparedAudio,
    prepare_audio,
    rms_dbfs,
    split_at_quiet_points,
)
from bot.media.errors import (
    DEFAULT_MAX_BYTES,
    REASON_AUDIO_CORRUPT,
    REASON_EMPTY,
    REASON_IMAGE_CORRUPT,
    REASON_IMAGE_TOO_LARGE,
    REASON_TOO_LARGE,
    REASON_UNSUPPORTED,
    MediaError,
    check_size,
    fail,
)
from bot.media.image import MAX_JPEG_PIXELS, MAX_PIXELS, PreparedImage, prepare_image
from bot.media.sniff import MediaKind, sniff_format, sniff_kind

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_JPEG_PIXELS",
    "MAX_PIXELS",
    "REASON_AUDIO_CORRUPT",
    "REASON_EMPTY",
    "REASON_IMAGE_CORRUPT",
    "REASON_IMAGE_TOO_LARGE",
    "REASON_TOO_LARGE",
    "REASON_UNSUPPORTED",
    "SAMPLE_RATE",
    "AudioClip",
    "MediaError",
    "MediaKind",
    "PreparedAudio",
    "PreparedImage",
    "prepare_attachment",
    "prepare_audio",
    "prepare_image",
    "rms_dbfs",
    "sniff_format",
    "sniff_kind",
    "split_at_quiet_points",
]

log = logging.getLogger(__name__)


def prepare_attachment(
    data: bytes, mimetype: str, *, max_audio_seconds: float, max_bytes: int
) -> PreparedAudio | PreparedImage:
    """Prepare by what the bytes are; the mimetype only picks the error message when they are
    neither a known image nor a known audio format."""
    check_size(data, max_bytes)
    kind = sniff_kind(data)
    hint = mimetype.split("/", 1)[0].strip().lower()
    if kind is not None and hint in ("audio", "image") and hint != kind:
        log.info("attachment declared %s but bytes are %s; using the bytes", mimetype, kind)
    if kind == "audio":
        return prepare_audio(data, max_seconds=max_audio_seconds, max_bytes=max_bytes)
    if kind == "image":
        return prepare_image(data, max_bytes=max_bytes)
    reason = {"audio": REASON_AUDIO_CORRUPT, "image": REASON_IMAGE_CORRUPT}.get(
        hint, REASON_UNSUPPORTED
    )
    raise fail(reason, f"unrecognised bytes declared as {mimetype!r}")
