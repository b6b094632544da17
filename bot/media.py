"""Prepare voice notes and photos for Gemma 4 on Ollama.

Voice: any phone/Matrix container (Ogg/Opus, WebM/Opus, AMR, M4A/AAC, MP3, WAV, FLAC) is decoded
with PyAV and becomes 16 kHz mono 16-bit WAV clips of at most 30 s, cut at the quietest moment
before each boundary — the only audio form Ollama passes to the model (see facts.md).
Photo: JPEG/PNG/WebP/HEIC/GIF becomes an upright RGB JPEG of at most 1024 px, stripped of all
metadata (the copy that is stored and forwarded), plus the EXIF GPS position if there was one.

Everything here is synchronous and CPU-bound: callers run it with ``asyncio.to_thread``. The
format is always sniffed from the bytes; the sender's mimetype is only a hint. Every rejection
is a :class:`MediaError` carrying a machine reason and a short message fit to send back.
"""

from __future__ import annotations

import io
import logging
import math
import wave
from dataclasses import dataclass
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# --- limits -----------------------------------------------------------------------------------

SAMPLE_RATE = 16000  # what Gemma 4's audio encoder expects
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Pixels we will fully decode (PNG/WebP/HEIC/GIF): 50 MP RGB is ~150 MB of RAM, and admits the
# 48 MP "HEIF Max" photos of recent iPhones.
MAX_PIXELS = 50_000_000
# JPEGs are decoded at 1/2..1/8 scale by libjpeg (Image.draft), so the 50-200 MP photos of
# high-end phones cost a fraction of that; still refuse anything bigger than any phone sensor.
MAX_JPEG_PIXELS = 210_000_000
# Pillow's own guard runs inside Image.open (warning above the limit, error above twice it).
# Our checks above are the real policy; this global only has to stay out of their way while
# still stopping absurd headers before Pillow allocates anything.
Image.MAX_IMAGE_PIXELS = MAX_JPEG_PIXELS // 2 + 1

pillow_heif.register_heif_opener()

_QUIET_SEARCH_S = 3.0  # look this far back from each clip boundary for a pause
_RMS_WINDOW_S = 0.020
_MAX_BAD_PACKETS = 50  # skip a few damaged packets, give up on a file that is mostly damage
_MIN_AUDIO_S = 0.05

# --- errors -----------------------------------------------------------------------------------

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


class MediaError(Exception):
    """A voice note or photo we cannot use.

    reason: machine code (one of the REASON_* constants), for logs, metrics and branching.
    user_message: short plain English for the sender.
    detail: technical cause, for logs only (never sent to the sender).
    """

    def __init__(self, reason: str, detail: str = "", *, user_message: str | None = None) -> None:
        self.reason = reason
        self.user_message = user_message or _USER_MESSAGES.get(
            reason, _USER_MESSAGES[REASON_UNSUPPORTED]
        )
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def _fail(reason: str, detail: str) -> MediaError:
    """Build the error and log it here, so no rejection goes unrecorded."""
    log.warning("media rejected: reason=%s detail=%s", reason, detail)
    return MediaError(reason, detail)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioClip:
    wav: bytes  # RIFF/WAVE, 16 kHz, mono, 16-bit PCM
    seconds: float


@dataclass(frozen=True)
class PreparedAudio:
    clips: tuple[AudioClip, ...]
    original_seconds: float  # as long as we could tell; a lower bound when decoding was capped
    truncated: bool  # audio beyond max_seconds was dropped: tell the sender
    damaged_packets: int = 0  # damaged packets skipped while decoding (0 for a clean file)

    @property
    def seconds(self) -> float:
        """Duration actually kept and sent to the model."""
        return sum(c.seconds for c in self.clips)


@dataclass(frozen=True)
class PreparedImage:
    jpeg: bytes  # upright RGB baseline JPEG, no EXIF/ICC/XMP
    width: int
    height: int
    gps: tuple[float, float] | None  # (lat, lon) decimal degrees from EXIF, a location candidate
    original_bytes: int


# --- sniffing ---------------------------------------------------------------------------------

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


def _check_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise _fail(REASON_EMPTY, "0 bytes")
    if len(data) > max_bytes:
        raise _fail(REASON_TOO_LARGE, f"{len(data)} bytes > limit {max_bytes}")


# --- audio ------------------------------------------------------------------------------------


def prepare_audio(
    data: bytes,
    *,
    max_seconds: float = 120.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    clip_seconds: float = 30.0,
) -> PreparedAudio:
    """Decode a voice note into ≤ clip_seconds 16 kHz mono WAV clips, at most max_seconds total.

    Longer audio is cut at max_seconds (truncated=True). Decoding stops at 2 × max_seconds so a
    tiny file that expands to hours of audio cannot pin a CPU; original_seconds then falls back to
    the container's stated duration when that is larger.
    """
    _check_size(data, max_bytes)
    found = sniff_format(data)
    if found is None or found[0] != "audio":
        what = found[1] if found else "unknown bytes"
        raise _fail(REASON_AUDIO_CORRUPT, f"not a known audio container ({what})")
    fmt = found[1]
    pcm, decoded_s, capped_at_s, bad = _decode_to_pcm(data, fmt, max_seconds)
    if pcm.size < _MIN_AUDIO_S * SAMPLE_RATE:
        raise _fail(REASON_AUDIO_CORRUPT, f"{fmt}: no audio decoded ({pcm.size} samples)")

    keep = int(max_seconds * SAMPLE_RATE)
    # A complete decode is the truth; headers (AMR, MP3 estimates) can be off by a bit.
    original_s = decoded_s if capped_at_s is None else max(decoded_s, capped_at_s)
    truncated = capped_at_s is not None or decoded_s > max_seconds + 0.02
    pcm = pcm[:keep]
    clips = tuple(
        AudioClip(wav=_wav_bytes(part), seconds=part.size / SAMPLE_RATE)
        for part in split_at_quiet_points(pcm, int(clip_seconds * SAMPLE_RATE))
    )
    if truncated:
        log.info(
            "voice note truncated: %s %.1f s -> kept %.1f s",
            fmt,
            original_s,
            pcm.size / SAMPLE_RATE,
        )
    log.debug(
        "voice note %s %.1f s -> %d clip(s), %d bad packets", fmt, original_s, len(clips), bad
    )
    return PreparedAudio(
        clips=clips,
        original_seconds=round(original_s, 3),
        truncated=truncated,
        damaged_packets=bad,
    )


def _new_resampler() -> Any:
    return av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)


def _decode_to_pcm(
    data: bytes, fmt: str, max_seconds: float
) -> tuple[npt.NDArray[np.int16], float, float | None, int]:
    """Return (int16 mono 16 kHz samples, decoded seconds, capped_at, damaged packets).

    capped_at is None when the whole stream was decoded; when decoding stopped at the bomb
    guard it is the duration the container states (or the decoded seconds if it states none).
    """
    keep_samples = int(max_seconds * SAMPLE_RATE)
    stop_at_s = 2.0 * max_seconds
    chunks: list[npt.NDArray[np.int16]] = []
    kept = 0
    decoded_s = 0.0
    capped_at: float | None = None
    bad = 0
    try:
        container = av.open(io.BytesIO(data), mode="r", format=fmt)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise _fail(REASON_AUDIO_CORRUPT, f"{fmt}: open failed: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise _fail(REASON_AUDIO_CORRUPT, f"{fmt}: no audio stream")
        stream = container.streams.audio[0]
        resampler = _new_resampler()
        shape: tuple[str, str, int] | None = None

        def take(frames: list[Any]) -> None:
            nonlocal kept
            for out in frames:
                # A passthrough resampler (input already 16 kHz mono s16) flushes as [None].
                if out is None or kept >= keep_samples:
                    continue
                # Packed s16 mono: one plane; the plane may be padded past `samples`.
                arr = np.frombuffer(out.planes[0], dtype=np.int16, count=out.samples).copy()
                arr = arr[: keep_samples - kept]
                chunks.append(arr)
                kept += arr.size

        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except (av.FFmpegError, ValueError) as exc:
                    bad += 1
                    log.debug("skipping damaged %s packet: %s", fmt, exc)
                    if bad > _MAX_BAD_PACKETS:
                        break
                    continue
                for frame in frames:
                    if not frame.sample_rate or not frame.samples:
                        continue
                    decoded_s += frame.samples / frame.sample_rate
                    if kept >= keep_samples:
                        continue  # past the cap: only counting, for original_seconds
                    # Sample format, layout or rate can change mid-stream (some AAC/AMR files);
                    # PyAV's resampler is fixed to its first frame, so start a new one.
                    new_shape = (frame.format.name, frame.layout.name, frame.sample_rate)
                    if shape is not None and new_shape != shape:
                        take(resampler.resample(None))
                        resampler = _new_resampler()
                    shape = new_shape
                    # Timestamps of damaged or concatenated streams jump; the resampler only
                    # needs the samples.
                    frame.pts = None
                    take(resampler.resample(frame))
                if decoded_s >= stop_at_s:
                    log.warning("stopped decoding %s after %.0f s of audio", fmt, decoded_s)
                    capped_at = _stated_seconds(container, stream) or decoded_s
                    break
        except (av.FFmpegError, ValueError, OSError) as exc:
            # Demuxer gave up part-way (truncated upload): keep what we have, if anything.
            bad += 1
            log.warning("%s audio damaged after %.1f s: %s", fmt, decoded_s, exc)
        try:
            take(resampler.resample(None))
        except (av.FFmpegError, ValueError) as exc:
            log.debug("resampler flush failed: %s", exc)

    if bad:
        log.warning("%s audio: skipped %d damaged packet(s)", fmt, bad)
    if bad > _MAX_BAD_PACKETS:
        raise _fail(REASON_AUDIO_CORRUPT, f"{fmt}: more than {_MAX_BAD_PACKETS} damaged packets")
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return pcm, decoded_s, capped_at, bad


def _stated_seconds(container: Any, stream: Any) -> float | None:
    """Duration the file claims (header/index); used only when decoding was cut short."""
    try:
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return float(container.duration) / 1_000_000  # AV_TIME_BASE
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    return None


def split_at_quiet_points(
    pcm: npt.NDArray[np.int16],
    clip_samples: int,
    *,
    rate: int = SAMPLE_RATE,
    search_s: float = _QUIET_SEARCH_S,
) -> list[npt.NDArray[np.int16]]:
    """Split into pieces ≤ clip_samples, each cut at the lowest-RMS 20 ms window within the last
    search_s before the boundary, so words are not chopped in half."""
    win = max(1, int(_RMS_WINDOW_S * rate))
    hop = max(1, win // 2)
    search = min(int(search_s * rate), clip_samples - win)
    pieces: list[npt.NDArray[np.int16]] = []
    start = 0
    total = pcm.size
    while total - start > clip_samples:
        boundary = start + clip_samples
        region_start = boundary - search
        cut = boundary
        if search > 0:
            region = pcm[region_start:boundary].astype(np.float64)
            cum = np.concatenate(([0.0], np.cumsum(region * region)))
            starts = np.arange(0, region.size - win + 1, hop)
            energy = cum[starts + win] - cum[starts]
            # Latest among the quietest windows keeps clips long (fewer clips, fewer tokens).
            best = int(starts[len(energy) - 1 - int(np.argmin(energy[::-1]))])
            cut = region_start + best + win // 2
        pieces.append(pcm[start:cut])
        start = cut
    if start < total:
        pieces.append(pcm[start:])
    return pieces


def rms_dbfs(pcm: npt.NDArray[np.int16]) -> float:
    """RMS level of int16 samples in dBFS (-inf for digital silence)."""
    if pcm.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(pcm.astype(np.float64) ** 2)))
    return 20 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


def _wav_bytes(pcm: npt.NDArray[np.int16]) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.astype("<i2", copy=False).tobytes())
    return buf.getvalue()


# --- images -----------------------------------------------------------------------------------


def prepare_image(
    data: bytes, *, max_side: int = 1024, max_bytes: int = DEFAULT_MAX_BYTES
) -> PreparedImage:
    """Upright RGB JPEG ≤ max_side px, no metadata, plus EXIF GPS (lat, lon) if present."""
    _check_size(data, max_bytes)
    found = sniff_format(data)
    if found is None or found[0] != "image":
        what = found[1] if found else "unknown bytes"
        raise _fail(REASON_IMAGE_CORRUPT, f"not a known image format ({what})")
    fmt = found[1]
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise _fail(REASON_IMAGE_TOO_LARGE, f"{fmt}: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _fail(REASON_IMAGE_CORRUPT, f"{fmt}: open failed: {exc}") from exc

    with img:
        width, height = img.size
        limit = MAX_JPEG_PIXELS if fmt == "JPEG" else MAX_PIXELS
        if width <= 0 or height <= 0 or width * height > limit:
            raise _fail(REASON_IMAGE_TOO_LARGE, f"{fmt} {width}x{height} exceeds {limit} pixels")
        gps = _exif_gps(img)
        try:
            if fmt == "JPEG":
                # Let libjpeg decode at a reduced scale (≥ the target size): a 12 MP photo
                # decodes at 1/2 or 1/4 size, several times faster and lighter.
                scale = max_side / max(width, height)
                if scale < 1:
                    img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            img.load()
            upright = ImageOps.exif_transpose(img)
            rgb = _to_rgb(upright)
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgb.info.clear()  # nothing from the original (EXIF, ICC, XMP, comments) travels on
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=85)
        except Image.DecompressionBombError as exc:
            raise _fail(REASON_IMAGE_TOO_LARGE, f"{fmt}: {exc}") from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            # Truncated or damaged pixel data ("image file is truncated", broken HEIF, …).
            raise _fail(REASON_IMAGE_CORRUPT, f"{fmt}: decode failed: {exc}") from exc

    jpeg = out.getvalue()
    log.debug(
        "photo %s %dx%d %d B -> %dx%d %d B gps=%s",
        fmt, width, height, len(data), rgb.width, rgb.height, len(jpeg), gps is not None,
    )  # fmt: skip
    return PreparedImage(
        jpeg=jpeg, width=rgb.width, height=rgb.height, gps=gps, original_bytes=len(data)
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparency flattened onto white (a black background hides dark details)."""
    if img.mode == "RGB":
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


_GPS_IFD = 0x8825


def _exif_gps(img: Image.Image) -> tuple[float, float] | None:
    """(lat, lon) from the EXIF GPS IFD, or None when absent, malformed or (0, 0)."""
    try:
        gps = img.getexif().get_ifd(_GPS_IFD)
    except Exception as exc:  # noqa: BLE001 - malformed EXIF must never sink the photo
        log.debug("unreadable EXIF: %s", exc)
        return None
    if not gps:
        return None
    lat = _gps_coord(gps.get(2), gps.get(1), ("N", "S"), 90.0)
    lon = _gps_coord(gps.get(4), gps.get(3), ("E", "W"), 180.0)
    if lat is None or lon is None:
        return None
    if lat == 0.0 and lon == 0.0:  # unset fix written as zeros by some cameras
        return None
    return lat, lon


def _gps_coord(value: Any, ref: Any, refs: tuple[str, str], bound: float) -> float | None:
    """EXIF (deg, min, sec) rationals plus hemisphere ref → signed decimal degrees."""
    try:
        parts = [float(v) for v in value] if isinstance(value, (tuple, list)) else [float(value)]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not parts or len(parts) > 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    deg = (
        parts[0]
        + (parts[1] / 60 if len(parts) > 1 else 0)
        + (parts[2] / 3600 if len(parts) > 2 else 0)
    )
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    ref_s = str(ref or "").strip("\x00 ").upper()[:1]
    if ref_s == refs[1]:
        deg = -deg
    elif ref_s and ref_s != refs[0]:
        return None
    if abs(deg) > bound:
        return None
    return round(deg, 7)


# --- dispatch ---------------------------------------------------------------------------------


def prepare_attachment(
    data: bytes, mimetype: str, *, max_audio_seconds: float, max_bytes: int
) -> PreparedAudio | PreparedImage:
    """Prepare by what the bytes are; the mimetype only picks the error message when they are
    neither a known image nor a known audio format."""
    _check_size(data, max_bytes)
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
    raise _fail(reason, f"unrecognised bytes declared as {mimetype!r}")
