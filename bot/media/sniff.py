"""What a file is, judged from its bytes alone (the sender's mimetype is only a hint)."""

from __future__ import annotations

from typing import Literal

from bot.media.errors import check_size, fail

MediaKind = Literal["image", "audio"]

# ISO-BMFF brands of HEIF still images; any other `ftyp` is treated as MP4/M4A/3GP audio.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)


def _ftyp_brands(data: bytes) -> set[bytes] | None:
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    size = int.from_bytes(data[0:4], "big")
    end = min(max(size, 16), len(data), 256)
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def _is_mpeg_audio_frame(data: bytes) -> bool:
    """MPEG-1/2 layer I-III frame header (MP3 without an ID3 tag)."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version = (data[1] >> 3) & 0x3
    layer = (data[1] >> 1) & 0x3
    bitrate_idx = data[2] >> 4
    rate_idx = (data[2] >> 2) & 0x3
    return version != 1 and layer != 0 and bitrate_idx not in (0, 15) and rate_idx != 3


def sniff_format(data: bytes) -> tuple[MediaKind, str] | None:
    """(kind, format) from magic bytes; format is an FFmpeg demuxer or a Pillow format name."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image", "WEBP"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio", "wav"
    brands = _ftyp_brands(head)
    if brands is not None:
        if brands & _HEIF_BRANDS:
            return "image", "HEIF"
        return "audio", "mp4"
    if head.startswith(b"OggS"):
        return "audio", "ogg"
    if head.startswith(b"#!AMR"):  # AMR-NB "#!AMR\n" and AMR-WB "#!AMR-WB\n"
        return "audio", "amr"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio", "matroska"  # also WebM
    if head.startswith(b"fLaC"):
        return "audio", "flac"
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "audio", "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio", "aac"  # raw ADTS
    return None


def sniff_kind(data: bytes) -> str | None:
    """Return "image", "audio" or None, judged from the bytes alone."""
    found = sniff_format(data)
    return found[0] if found else None


def expect(data: bytes, kind: MediaKind, *, max_bytes: int, reason: str) -> str:
    """The format of ``data`` when it is a ``kind`` within ``max_bytes``; else MediaError with
    ``reason`` (or the size reasons)."""
    check_size(data, max_bytes)
    found = sniff_format(data)
    if found is None or found[0] != kind:
        what = found[1] if found else "unknown bytes"
        noun = "audio container" if kind == "audio" else "image format"
        raise fail(reason, f"not a known {noun} ({what})")
    return found[1]
