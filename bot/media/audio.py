"""Voice notes for Gemma 4 on Ollama: any phone/Matrix container (Ogg/Opus, WebM/Opus, AMR,
M4A/AAC, MP3, WAV, FLAC) is decoded with PyAV and becomes 16 kHz mono 16-bit WAV clips of at most
30 s, cut at the quietest moment before each boundary — the only audio form Ollama passes to the
model (docs/facts.md). Synchronous and CPU-bound: callers run it with ``asyncio.to_thread``."""

from __future__ import annotations

import io
import logging
import math
import wave
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from bot.media.errors import DEFAULT_MAX_BYTES, REASON_AUDIO_CORRUPT, fail
from bot.media.sniff import expect

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # what Gemma 4's audio encoder expects
_QUIET_SEARCH_S = 3.0  # look this far back from each clip boundary for a pause
_RMS_WINDOW_S = 0.020
_MAX_BAD_PACKETS = 50  # skip a few damaged packets, give up on a file that is mostly damage
_MIN_AUDIO_S = 0.05


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
    fmt = expect(data, "audio", max_bytes=max_bytes, reason=REASON_AUDIO_CORRUPT)
    pcm, decoded_s, capped_at_s, bad = _decode_to_pcm(data, fmt, max_seconds)
    if pcm.size < _MIN_AUDIO_S * SAMPLE_RATE:
        raise fail(REASON_AUDIO_CORRUPT, f"{fmt}: no audio decoded ({pcm.size} samples)")

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
        raise fail(REASON_AUDIO_CORRUPT, f"{fmt}: open failed: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise fail(REASON_AUDIO_CORRUPT, f"{fmt}: no audio stream")
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
        raise fail(REASON_AUDIO_CORRUPT, f"{fmt}: more than {_MAX_BAD_PACKETS} damaged packets")
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
