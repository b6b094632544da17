"""bot/media/sniff.expect: the one size + format gate in front of both decoders."""

from __future__ import annotations

import pytest

from bot.errors import PermanentError
from bot.media import (
    REASON_AUDIO_CORRUPT,
    REASON_EMPTY,
    REASON_IMAGE_CORRUPT,
    REASON_TOO_LARGE,
    MediaError,
)
from bot.media.sniff import expect
from tests.harness import media_samples as ms


def test_expect_returns_the_sniffed_format() -> None:
    assert expect(ms.wav_clip(0.1), "audio", max_bytes=10**7, reason=REASON_AUDIO_CORRUPT) == "wav"
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    assert expect(png, "image", max_bytes=10**7, reason=REASON_IMAGE_CORRUPT) == "PNG"


@pytest.mark.parametrize(
    ("data", "kind", "reason", "detail"),
    [
        (b"", "audio", REASON_EMPTY, "0 bytes"),
        (b"x" * 11, "image", REASON_TOO_LARGE, "11 bytes > limit 10"),
        (b"\x89PNG\r\n\x1a\n", "audio", REASON_AUDIO_CORRUPT, "not a known audio container (PNG)"),
        (b"OggS", "image", REASON_IMAGE_CORRUPT, "not a known image format (ogg)"),
        (b"hello", "image", REASON_IMAGE_CORRUPT, "not a known image format (unknown bytes)"),
    ],
)
def test_expect_rejects(data: bytes, kind: str, reason: str, detail: str) -> None:
    wanted = REASON_AUDIO_CORRUPT if kind == "audio" else REASON_IMAGE_CORRUPT
    with pytest.raises(MediaError) as info:
        expect(data, kind, max_bytes=10, reason=wanted)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert info.value.detail == detail


def test_media_error_is_permanent_and_keeps_its_message() -> None:
    err = MediaError(REASON_EMPTY, "0 bytes")
    assert isinstance(err, PermanentError) and not err.transient
    assert err.reason == REASON_EMPTY and err.detail == "0 bytes"
    assert str(err) == "empty: 0 bytes" and str(MediaError(REASON_EMPTY)) == "empty"
    assert err.user_message.startswith("Your file arrived empty")
