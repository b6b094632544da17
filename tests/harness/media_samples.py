"""Generators of real media bytes (PyAV / Pillow) for tests and benchmarks.

Nothing binary is committed: every sample is encoded on the fly by the same FFmpeg / libjpeg /
libheif builds the gateway uses, so a test exercises the real decoders.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

# AMR-NB needs the libopencore encoder; the PyAV wheels checked here ship it, but a different
# build might not, so tests can skip on this flag instead of failing for the wrong reason.
HAVE_AMR_ENCODER: bool = "libopencore_amrnb" in av.codecs_available

# Default voice pattern: 1.3 s of "speech" then 0.4 s of silence. Any 3 s window holds a gap,
# so the quiet-point splitter always has something to find.
_BURST_S = 1.3
_GAP_S = 0.4


def speech_like_pcm(
    seconds: float,
    *,
    rate: int = 48000,
    freq: float = 440.0,
    silences: Sequence[tuple[float, float]] | None = None,
    amplitude: float = 0.5,
) -> npt.NDArray[np.float32]:
    """Mono float32 samples: tone bursts with a syllable-like envelope and silent gaps.

    silences: explicit (start_s, end_s) gaps with tone everywhere else; default is the
    periodic burst/gap pattern above.
    """
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    # Two partials and a 4 Hz envelope: not speech, but loud and varying like it.
    tone = np.sin(2 * np.pi * freq * t) + 0.4 * np.sin(2 * np.pi * 2.5 * freq * t)
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)
    signal = amplitude * tone * env / 1.4
    if silences is None:
        phase = np.mod(t, _BURST_S + _GAP_S)
        signal[phase >= _BURST_S] = 0.0
    else:
        for start, end in silences:
            signal[round(start * rate) : round(end * rate)] = 0.0
    return signal.astype(np.float32)


def _encode(
    samples: npt.NDArray[np.float32],
    *,
    rate: int,
    container_format: str,
    codec: str,
    channels: int = 1,
    bit_rate: int | None = None,
    codec_rate: int | None = None,
) -> bytes:
    """Encode mono float samples with PyAV into an in-memory container."""
    out_rate = codec_rate or rate
    layout = "mono" if channels == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        pcm = np.clip(samples * 32767.0, -32768, 32767).astype(np.int16)
        # Packed s16: channels interleaved in one plane of shape (1, samples * channels).
        interleaved = np.repeat(pcm, channels).reshape(1, -1)
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=out_rate)
        chunk = 1024
        pts = 0
        for start in range(0, pcm.shape[0], chunk):
            part = interleaved[:, start * channels : (start + chunk) * channels]
            frame = av.AudioFrame.from_ndarray(part, format="s16", layout=layout)
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += part.shape[1] // channels
            for rframe in resampler.resample(frame):
                container.mux(stream.encode(rframe))
        for rframe in resampler.resample(None):
            container.mux(stream.encode(rframe))
        container.mux(stream.encode(None))
    return buf.getvalue()


def ogg_opus_voice(
    seconds: float,
    *,
    freq: float = 440.0,
    silences: Sequence[tuple[float, float]] | None = None,
) -> bytes:
    """An Element-style voice note: Opus in Ogg, 48 kHz mono."""
    pcm = speech_like_pcm(seconds, freq=freq, silences=silences)
    return _encode(pcm, rate=48000, container_format="ogg", codec="libopus", bit_rate=24000)


def webm_opus_voice(seconds: float, *, freq: float = 440.0) -> bytes:
    """Opus in WebM (what browsers' MediaRecorder produces)."""
    pcm = speech_like_pcm(seconds, freq=freq)
    return _encode(pcm, rate=48000, container_format="webm", codec="libopus", bit_rate=24000)


def mp3_clip(seconds: float, *, freq: float = 440.0) -> bytes:
    """MP3, 44.1 kHz stereo."""
    pcm = speech_like_pcm(seconds, rate=44100, freq=freq)
    return _encode(
        pcm, rate=44100, container_format="mp3", codec="libmp3lame", channels=2, bit_rate=64000
    )


def amr_clip(seconds: float, *, freq: float = 440.0) -> bytes:
    """AMR-NB 8 kHz mono in the raw .amr container (old phones, MMS voice)."""
    if not HAVE_AMR_ENCODER:
        raise RuntimeError("this PyAV build has no libopencore_amrnb encoder")
    pcm = speech_like_pcm(seconds, rate=8000, freq=freq)
    return _encode(
        pcm, rate=8000, container_format="amr", codec="libopencore_amrnb", bit_rate=12200
    )


def m4a_clip(seconds: float, *, freq: float = 440.0) -> bytes:
    """AAC-LC in an MP4/M4A container, 44.1 kHz mono (iPhone voice memos, WhatsApp on iOS)."""
    pcm = speech_like_pcm(seconds, rate=44100, freq=freq)
    return _encode(pcm, rate=44100, container_format="ipod", codec="aac", bit_rate=64000)


def wav_clip(seconds: float, *, rate: int = 44100, channels: int = 2, freq: float = 440.0) -> bytes:
    """16-bit PCM RIFF/WAVE (stdlib writer: WAV needs no codec)."""
    pcm = np.clip(speech_like_pcm(seconds, rate=rate, freq=freq) * 32767, -32768, 32767)
    interleaved = np.repeat(pcm.astype("<i2"), channels)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(interleaved.tobytes())
    return buf.getvalue()


# --- images -------------------------------------------------------------------------------


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    deg = int(value)
    minutes_f = (value - deg) * 60
    minutes = int(minutes_f)
    seconds = (minutes_f - minutes) * 60
    return IFDRational(deg, 1), IFDRational(minutes, 1), IFDRational(round(seconds * 10000), 10000)


def gps_exif(lat: float, lon: float, *, orientation: int | None = None) -> bytes:
    """EXIF block with a GPS IFD (degrees/minutes/seconds rationals) and optional orientation."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[0] = b"\x02\x02\x00\x00"  # GPSVersionID
    gps[1] = "N" if lat >= 0 else "S"
    gps[2] = _dms(lat)
    gps[3] = "E" if lon >= 0 else "W"
    gps[4] = _dms(lon)
    return exif.tobytes()


def pattern_image(width: int, height: int, *, noise: bool = False) -> Image.Image:
    """RGB image with a red block at the top-left corner, so a rotation is detectable.

    noise=True adds sensor-like noise so JPEG sizes resemble real phone photos.
    """
    if noise:
        grey = Image.effect_noise((width, height), 40)
        img = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey))
    else:
        img = Image.new("RGB", (width, height), (40, 90, 160))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width // 4, height // 4), fill=(255, 0, 0))
    return img


def jpeg_with_gps(
    width: int = 4000,
    height: int = 3000,
    *,
    lat: float = 23.8103,
    lon: float = 90.4125,
    orientation: int = 6,
    noise: bool = False,
    quality: int = 90,
) -> bytes:
    """Phone-like JPEG: stored landscape with EXIF orientation and GPS (default: Dhaka)."""
    buf = io.BytesIO()
    pattern_image(width, height, noise=noise).save(
        buf, "JPEG", quality=quality, exif=gps_exif(lat, lon, orientation=orientation)
    )
    return buf.getvalue()


def png_image(width: int, height: int, *, alpha: bool = False) -> bytes:
    img = pattern_image(width, height)
    if alpha:
        img = img.convert("RGBA")
        img.putalpha(128)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def webp_image(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    pattern_image(width, height).save(buf, "WEBP", quality=80)
    return buf.getvalue()


def heic_image(
    width: int, height: int, *, lat: float | None = None, lon: float | None = None
) -> bytes:
    """HEIC via pillow-heif's x265 encoder (raises if this build cannot encode HEIF)."""
    pillow_heif.register_heif_opener()
    exif = gps_exif(lat, lon) if lat is not None and lon is not None else None
    buf = io.BytesIO()
    kwargs: dict[str, object] = {"quality": 60}
    if exif is not None:
        kwargs["exif"] = exif
    pattern_image(width, height).save(buf, "HEIF", **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A ~100-byte PNG whose header declares width x height pixels (a decompression bomb).

    Only one row of image data follows: a decoder that trusts the header would allocate the
    full canvas before noticing.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * (width + 1))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
