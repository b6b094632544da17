"""Voice notes and photos for the drill's Matrix victims, encoded at run time (nothing binary is
shipped): an Element-style Opus/Ogg voice note on a victim's own tone, and a phone-like JPEG with
EXIF GPS. The same FFmpeg (PyAV) and libjpeg (Pillow) builds the gateway decodes with.

A small copy of tests/harness/media_samples.py's generators: production code does not import
from tests/. ``tone_of`` is the stand-in model's ear (bot/drill/model.py): the dominant frequency
of the 16 kHz WAV clip the gateway made from a voice note."""

from __future__ import annotations

import io
import wave
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

VOICE_S = 3.0
RATE = 48000


def voice_note(tone_hz: float, seconds: float = VOICE_S) -> bytes:
    """Opus in Ogg, 48 kHz mono: tone bursts with a syllable-like envelope (not speech, but
    loud and varying like it), the fundamental at ``tone_hz``."""
    t = np.arange(round(seconds * RATE), dtype=np.float64) / RATE
    tone = np.sin(2 * np.pi * tone_hz * t) + 0.3 * np.sin(2 * np.pi * 2 * tone_hz * t)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)
    pcm = np.clip(0.4 * tone * envelope * 32767, -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        assert isinstance(stream, av.AudioStream)
        stream.bit_rate = 24000
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=RATE)
        for start in range(0, pcm.shape[0], 960):
            frame = av.AudioFrame.from_ndarray(
                pcm[start : start + 960].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            for out in resampler.resample(frame):
                container.mux(stream.encode(out))
        for out in resampler.resample(None):
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))
    return buf.getvalue()


def tone_of(wav: bytes) -> float | None:
    """The dominant frequency (Hz) of a PCM WAV clip; None if it is not one."""
    try:
        with wave.open(io.BytesIO(wav)) as w:
            if w.getsampwidth() != 2:
                return None
            rate, channels = w.getframerate(), w.getnchannels()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (wave.Error, EOFError):
        return None
    mono = pcm[::channels].astype(np.float64)
    if mono.size < rate // 10:
        return None
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    spectrum[: max(1, int(50 * mono.size / rate))] = 0  # no DC / rumble
    return float(np.argmax(spectrum) * rate / mono.size)


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    deg = int(value)
    minutes = int((value - deg) * 60)
    seconds = ((value - deg) * 60 - minutes) * 60
    return IFDRational(deg, 1), IFDRational(minutes, 1), IFDRational(round(seconds * 10000), 10000)


def photo(lat: float, lon: float, width: int = 1600, height: int = 1200) -> bytes:
    """A phone-like JPEG with EXIF GPS (degrees/minutes/seconds rationals) of a flooded street."""
    img = Image.new("RGB", (width, height), (70, 110, 150))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, height * 2 // 3, width, height), fill=(90, 80, 60))  # the water line
    draw.rectangle((width // 5, height // 4, width // 2, height * 2 // 3), fill=(180, 170, 150))
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[0] = b"\x02\x02\x00\x00"  # GPSVersionID
    gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(lat)
    gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(lon)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    return buf.getvalue()
