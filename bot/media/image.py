"""Photos: JPEG/PNG/WebP/HEIC/GIF becomes an upright RGB JPEG of at most 1024 px, stripped of all
metadata (the copy that is stored and forwarded), plus the EXIF GPS position if there was one.
Synchronous and CPU-bound: callers run it with ``asyncio.to_thread``."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from typing import Any

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from bot.media.errors import (
    DEFAULT_MAX_BYTES,
    REASON_IMAGE_CORRUPT,
    REASON_IMAGE_TOO_LARGE,
    fail,
)
from bot.media.sniff import expect

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class PreparedImage:
    jpeg: bytes  # upright RGB baseline JPEG, no EXIF/ICC/XMP
    width: int
    height: int
    gps: tuple[float, float] | None  # (lat, lon) decimal degrees from EXIF, a location candidate
    original_bytes: int


def prepare_image(
    data: bytes, *, max_side: int = 1024, max_bytes: int = DEFAULT_MAX_BYTES
) -> PreparedImage:
    """Upright RGB JPEG ≤ max_side px, no metadata, plus EXIF GPS (lat, lon) if present."""
    fmt = expect(data, "image", max_bytes=max_bytes, reason=REASON_IMAGE_CORRUPT)
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise fail(REASON_IMAGE_TOO_LARGE, f"{fmt}: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise fail(REASON_IMAGE_CORRUPT, f"{fmt}: open failed: {exc}") from exc

    with img:
        width, height = img.size
        limit = MAX_JPEG_PIXELS if fmt == "JPEG" else MAX_PIXELS
        if width <= 0 or height <= 0 or width * height > limit:
            raise fail(REASON_IMAGE_TOO_LARGE, f"{fmt} {width}x{height} exceeds {limit} pixels")
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
            raise fail(REASON_IMAGE_TOO_LARGE, f"{fmt}: {exc}") from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            # Truncated or damaged pixel data ("image file is truncated", broken HEIF, …).
            raise fail(REASON_IMAGE_CORRUPT, f"{fmt}: decode failed: {exc}") from exc

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
