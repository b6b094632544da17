"""bot.media against real media encoded on the fly by PyAV / Pillow / pillow-heif."""

from __future__ import annotations

import asyncio
import io
import logging
import random
import wave
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from bot import media
from bot.media import (
    MediaError,
    PreparedAudio,
    PreparedImage,
    prepare_attachment,
    prepare_audio,
    prepare_image,
    sniff_kind,
)
from bot.media.image import _gps_coord
from tests.harness import media_samples as ms

DHAKA = (23.8103, 90.4125)


def read_wav(data: bytes) -> tuple[npt.NDArray[np.int16], wave._wave_params]:
    with wave.open(io.BytesIO(data), "rb") as w:
        params = w.getparams()
        frames = w.readframes(params.nframes)
    return np.frombuffer(frames, dtype="<i2").astype(np.int16), params


def assert_model_ready(prepared: PreparedAudio, clip_seconds: float = 30.0) -> None:
    """Every clip: RIFF/WAVE, 16 kHz, mono, 16-bit, ≤ clip_seconds, length matches .seconds."""
    assert prepared.clips
    for clip in prepared.clips:
        assert clip.wav[:4] == b"RIFF" and clip.wav[8:12] == b"WAVE"
        pcm, p = read_wav(clip.wav)
        assert (p.framerate, p.nchannels, p.sampwidth) == (16000, 1, 2)
        assert p.nframes / 16000 <= clip_seconds + 1e-9
        assert abs(clip.seconds - p.nframes / 16000) < 1e-6
        assert pcm.size == p.nframes


def dominant_hz(pcm: npt.NDArray[np.int16], rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum)) * rate / pcm.size


def all_pcm(prepared: PreparedAudio) -> npt.NDArray[np.int16]:
    return np.concatenate([read_wav(c.wav)[0] for c in prepared.clips])


def rms(pcm: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


# --- audio: formats -----------------------------------------------------------------------

AUDIO_MAKERS: dict[str, Callable[[float], bytes]] = {
    "ogg_opus": ms.ogg_opus_voice,
    "webm_opus": ms.webm_opus_voice,
    "mp3_stereo_44k": ms.mp3_clip,
    "m4a_aac": ms.m4a_clip,
    "wav_stereo_44k": lambda s: ms.wav_clip(s, rate=44100, channels=2),
    "wav_16k_mono": lambda s: ms.wav_clip(s, rate=16000, channels=1),  # resampler passthrough
}
if ms.HAVE_AMR_ENCODER:
    AUDIO_MAKERS["amr_nb"] = ms.amr_clip


@pytest.mark.parametrize("name", sorted(AUDIO_MAKERS))
def test_audio_formats_become_16k_mono_wav(name: str) -> None:
    data = AUDIO_MAKERS[name](6.0)
    assert sniff_kind(data) == "audio"
    prepared = prepare_audio(data)
    assert_model_ready(prepared)
    assert len(prepared.clips) == 1
    assert prepared.truncated is False
    # Codec priming/padding may add a few ms, never more.
    assert abs(prepared.seconds - 6.0) < 0.1
    assert abs(prepared.original_seconds - prepared.seconds) < 0.05
    pcm = all_pcm(prepared)
    # The tone survives decoding and resampling at the right pitch (a wrong rate shifts it).
    assert rms(pcm) > 1000
    assert abs(dominant_hz(pcm) - 440) < 5


def test_amr_encoder_available_here() -> None:
    # Not a product requirement, but if this flips the AMR case above silently disappears.
    assert ms.HAVE_AMR_ENCODER


def test_mimetype_is_only_a_hint() -> None:
    voice = ms.ogg_opus_voice(2.0)
    result = prepare_attachment(voice, "image/jpeg", max_audio_seconds=120, max_bytes=10**7)
    assert isinstance(result, PreparedAudio)
    photo = ms.png_image(100, 80)
    result2 = prepare_attachment(photo, "audio/ogg", max_audio_seconds=120, max_bytes=10**7)
    assert isinstance(result2, PreparedImage)


# --- audio: splitting and caps ------------------------------------------------------------


@pytest.fixture(scope="module")
def voice_75s() -> bytes:
    return ms.ogg_opus_voice(75.0)


@pytest.fixture(scope="module")
def voice_200s() -> bytes:
    return ms.ogg_opus_voice(200.0)


def test_75s_note_gives_three_clips(voice_75s: bytes) -> None:
    prepared = prepare_audio(voice_75s)
    assert_model_ready(prepared)
    assert len(prepared.clips) == 3
    assert abs(prepared.seconds - 75.0) < 0.05
    assert abs(prepared.original_seconds - 75.0) < 0.05
    assert prepared.truncated is False
    # Clips are cut near the 30 s boundaries, not early.
    assert all(c.seconds >= 27.0 for c in prepared.clips[:2])


def test_200s_note_truncated_at_cap(voice_200s: bytes) -> None:
    prepared = prepare_audio(voice_200s)
    assert_model_ready(prepared)
    assert prepared.truncated is True
    assert abs(prepared.seconds - 120.0) < 1e-6
    assert abs(prepared.original_seconds - 200.0) < 0.1
    assert len(prepared.clips) in (4, 5)


def test_custom_caps(voice_75s: bytes) -> None:
    prepared = prepare_audio(voice_75s, max_seconds=20.0, clip_seconds=8.0)
    assert_model_ready(prepared, clip_seconds=8.0)
    assert prepared.truncated is True
    assert abs(prepared.seconds - 20.0) < 1e-6
    assert len(prepared.clips) == 3


def test_decoding_stops_at_twice_the_cap(
    voice_75s: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.media"):
        prepared = prepare_audio(voice_75s, max_seconds=10.0)
    assert any("stopped decoding" in r.getMessage() for r in caplog.records)
    assert prepared.truncated is True
    assert abs(prepared.seconds - 10.0) < 1e-6
    # Decoding stopped at ~20 s, so the length comes from the Ogg stream's stated duration.
    assert abs(prepared.original_seconds - 75.0) < 0.1


def test_cut_lands_in_a_silence() -> None:
    # Continuous speech-like tone except two short pauses, neither at a 30 s mark: a fixed 30 s
    # cut would slice through sound, the quiet-point cut must land inside the pauses.
    gaps = [(27.6, 27.9), (56.0, 56.3)]
    prepared = prepare_audio(ms.ogg_opus_voice(65.0, silences=gaps))
    assert_model_ready(prepared)
    assert len(prepared.clips) == 3
    cut1 = prepared.clips[0].seconds
    cut2 = cut1 + prepared.clips[1].seconds
    assert 27.6 <= cut1 <= 27.9, cut1
    assert 56.0 <= cut2 <= 56.3, cut2
    pcm = all_pcm(prepared)
    loud = rms(pcm[16000 * 10 : 16000 * 11])
    for cut in (cut1, cut2):
        at = round(cut * 16000)
        around = pcm[at - 160 : at + 160]  # ±10 ms
        assert rms(around) < loud / 100, (cut, rms(around), loud)


def test_splitter_exact_on_synthetic_pcm() -> None:
    rate = 16000
    t = np.arange(70 * rate) / rate
    pcm = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    pcm[int(28.2 * rate) : int(28.4 * rate)] = 0
    pieces = media.split_at_quiet_points(pcm, 30 * rate)
    assert sum(p.size for p in pieces) == pcm.size
    assert np.array_equal(np.concatenate(pieces), pcm)  # nothing lost, nothing reordered
    assert 28.2 * rate <= pieces[0].size <= 28.4 * rate
    assert all(p.size <= 30 * rate for p in pieces)


def test_splitter_without_silence_still_respects_clip_length() -> None:
    rate = 16000
    t = np.arange(95 * rate) / rate
    pcm = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    pieces = media.split_at_quiet_points(pcm, 30 * rate)
    assert all(27 * rate <= p.size <= 30 * rate for p in pieces[:-1])
    assert sum(p.size for p in pieces) == pcm.size


def test_truncated_upload_keeps_what_arrived(voice_75s: bytes) -> None:
    prepared = prepare_audio(voice_75s[: len(voice_75s) // 2])
    assert_model_ready(prepared)
    assert 30.0 < prepared.seconds < 45.0


# --- audio: bad input ---------------------------------------------------------------------


def random_bytes(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (random_bytes(4096), "audio_corrupt"),
        (b"OggS" + random_bytes(4096), "audio_corrupt"),
        (b"#!AMR\n" + random_bytes(64), "audio_corrupt"),
        (ms.wav_clip(1.0)[:44], "audio_corrupt"),  # header only, no samples
        (ms.png_image(10, 10), "audio_corrupt"),
    ],
    ids=["empty", "random", "fake_ogg", "fake_amr", "wav_header_only", "png"],
)
def test_bad_audio(data: bytes, reason: str) -> None:
    with pytest.raises(MediaError) as err:
        prepare_audio(data)
    assert err.value.reason == reason
    assert err.value.user_message


def test_ogg_headers_only_is_corrupt() -> None:
    with pytest.raises(MediaError) as err:
        prepare_audio(ms.ogg_opus_voice(3.0)[:150])
    assert err.value.reason == "audio_corrupt"


def test_random_bytes_with_audio_mimetype() -> None:
    with pytest.raises(MediaError) as err:
        prepare_attachment(random_bytes(2000), "audio/ogg", max_audio_seconds=120, max_bytes=10**6)
    assert err.value.reason == "audio_corrupt"
    assert "voice note" in err.value.user_message


def test_audio_over_max_bytes() -> None:
    data = ms.ogg_opus_voice(3.0)
    with pytest.raises(MediaError) as err:
        prepare_audio(data, max_bytes=len(data) - 1)
    assert err.value.reason == "too_large"
    assert prepare_audio(data, max_bytes=len(data)).clips  # the limit is inclusive


# --- images ---------------------------------------------------------------------------------


def open_out(prepared: PreparedImage) -> Image.Image:
    img = Image.open(io.BytesIO(prepared.jpeg))
    assert img.format == "JPEG"
    assert img.mode == "RGB"
    assert img.size == (prepared.width, prepared.height)
    return img


def assert_no_metadata(prepared: PreparedImage) -> None:
    img = open_out(prepared)
    assert len(img.getexif()) == 0
    assert b"Exif" not in prepared.jpeg
    assert "icc_profile" not in img.info
    assert b"GPS" not in prepared.jpeg


def is_red(pixel: object) -> bool:
    assert isinstance(pixel, tuple)
    r, g, b = pixel[:3]
    return bool(r > 200 and g < 60 and b < 60)


@pytest.fixture(scope="module")
def phone_jpeg() -> bytes:
    return ms.jpeg_with_gps(4000, 3000, lat=DHAKA[0], lon=DHAKA[1], orientation=6)


def test_phone_jpeg_rotated_scaled_stripped(phone_jpeg: bytes) -> None:
    assert sniff_kind(phone_jpeg) == "image"
    prepared = prepare_image(phone_jpeg)
    # Stored 4000x3000 landscape, orientation 6 → displayed portrait: sides swap.
    assert (prepared.width, prepared.height) == (768, 1024)
    assert prepared.original_bytes == len(phone_jpeg)
    assert prepared.gps is not None
    assert abs(prepared.gps[0] - DHAKA[0]) < 1e-4
    assert abs(prepared.gps[1] - DHAKA[1]) < 1e-4
    assert_no_metadata(prepared)
    # The red block stored at the top-left must show at the top-right after a 90° CW turn.
    img = open_out(prepared)
    assert is_red(img.getpixel((prepared.width - 20, 20)))
    assert not is_red(img.getpixel((20, 20)))
    assert not is_red(img.getpixel((prepared.width - 20, prepared.height - 20)))


def test_gps_southern_western_hemisphere() -> None:
    data = ms.jpeg_with_gps(400, 300, lat=-33.4489, lon=-70.6693, orientation=1)
    prepared = prepare_image(data)
    assert prepared.gps is not None
    assert abs(prepared.gps[0] + 33.4489) < 1e-4
    assert abs(prepared.gps[1] + 70.6693) < 1e-4
    assert (prepared.width, prepared.height) == (400, 300)  # never upscaled
    img = open_out(prepared)
    assert is_red(img.getpixel((10, 10)))  # orientation 1: untouched


def test_gps_zero_or_absent_is_none() -> None:
    assert prepare_image(ms.jpeg_with_gps(200, 100, lat=0.0, lon=0.0)).gps is None
    assert prepare_image(ms.png_image(200, 100)).gps is None


def test_gps_coord_rejects_malformed_values() -> None:
    ok = (IFDRational(23), IFDRational(48), IFDRational(3708, 100))
    assert _gps_coord(ok, "N", ("N", "S"), 90.0) == pytest.approx(23.8103, abs=1e-6)
    assert _gps_coord(ok, b"S\x00", ("N", "S"), 90.0) == pytest.approx(-23.8103, abs=1e-6)
    assert _gps_coord(ok, "X", ("N", "S"), 90.0) is None
    bad_den = (IFDRational(23, 0), IFDRational(0), IFDRational(0))
    assert _gps_coord(bad_den, "N", ("N", "S"), 90.0) is None
    assert _gps_coord((IFDRational(95), 0, 0), "N", ("N", "S"), 90.0) is None
    assert _gps_coord("garbage", "N", ("N", "S"), 90.0) is None
    assert _gps_coord(None, "N", ("N", "S"), 90.0) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: ms.png_image(1600, 1200),
        lambda: ms.png_image(1600, 1200, alpha=True),
        lambda: ms.webp_image(1600, 1200),
    ],
    ids=["png", "png_alpha", "webp"],
)
def test_png_webp(make: Callable[[], bytes]) -> None:
    data = make()
    assert sniff_kind(data) == "image"
    prepared = prepare_image(data)
    assert (prepared.width, prepared.height) == (1024, 768)
    assert_no_metadata(prepared)
    px = open_out(prepared).getpixel((10, 10))
    assert isinstance(px, tuple)
    assert px[0] > 200 and px[0] - px[2] > 90  # the red corner (pinkish when half transparent)


def test_png_alpha_flattened_on_white() -> None:
    prepared = prepare_image(ms.png_image(400, 300, alpha=True))
    px = open_out(prepared).getpixel((300, 250))
    assert isinstance(px, tuple)
    # 50 % blue-ish (40, 90, 160) over white → light, not darkened towards black.
    assert px[0] > 130 and px[1] > 160


def test_heic_with_gps() -> None:
    try:
        data = ms.heic_image(1200, 900, lat=DHAKA[0], lon=DHAKA[1])
    except (OSError, KeyError, ValueError, RuntimeError) as exc:  # no HEVC encoder in this build
        pytest.skip(f"pillow-heif cannot encode HEIC here: {exc}")
    assert sniff_kind(data) == "image"
    prepared = prepare_image(data)
    assert (prepared.width, prepared.height) == (1024, 768)
    assert prepared.gps is not None
    assert abs(prepared.gps[0] - DHAKA[0]) < 1e-4
    assert_no_metadata(prepared)


def test_high_megapixel_jpeg_is_accepted() -> None:
    # 54 MP: above the full-decode limit, but JPEG is decoded at reduced scale (draft mode).
    buf = io.BytesIO()
    Image.new("L", (9000, 6000), 128).save(buf, "JPEG", quality=50)
    prepared = prepare_image(buf.getvalue())
    assert (prepared.width, prepared.height) == (1024, 683)


# --- images: bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: b"", "empty"),
        (lambda: ms.jpeg_with_gps(800, 600)[:3000], "image_corrupt"),
        (lambda: b"Meet at the school roof, 4 people, one injured.\n" * 20, "image_corrupt"),
        (lambda: b"\xff\xd8\xff" + random_bytes(5000), "image_corrupt"),
        (lambda: ms.png_bomb(20000, 20000), "image_too_large"),
        (lambda: ms.png_bomb(9000, 6000), "image_too_large"),  # 54 MP PNG: over our own limit
        (lambda: ms.ogg_opus_voice(1.0), "image_corrupt"),
    ],
    ids=["empty", "truncated_jpeg", "text", "fake_jpeg", "bomb_400mp", "png_54mp", "ogg"],
)
def test_bad_images(make: Callable[[], bytes], reason: str) -> None:
    with pytest.raises(MediaError) as err:
        prepare_image(make())
    assert err.value.reason == reason
    assert err.value.user_message
    assert err.value.user_message != err.value.reason


def test_text_named_jpg_via_attachment() -> None:
    text = b"help us please water rising\n"
    with pytest.raises(MediaError) as err:
        prepare_attachment(text, "image/jpeg", max_audio_seconds=120, max_bytes=10**6)
    assert err.value.reason == "image_corrupt"
    assert "photo" in err.value.user_message
    with pytest.raises(MediaError) as err2:
        prepare_attachment(text, "application/pdf", max_audio_seconds=120, max_bytes=10**6)
    assert err2.value.reason == "unsupported"


def test_image_over_max_bytes(phone_jpeg: bytes) -> None:
    with pytest.raises(MediaError) as err:
        prepare_image(phone_jpeg, max_bytes=len(phone_jpeg) - 1)
    assert err.value.reason == "too_large"
    with pytest.raises(MediaError) as err2:
        prepare_attachment(phone_jpeg, "image/jpeg", max_audio_seconds=120, max_bytes=1000)
    assert err2.value.reason == "too_large"


def test_rejection_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.media"), pytest.raises(MediaError):
        prepare_image(b"")
    assert any("reason=empty" in r.getMessage() for r in caplog.records)


# --- sniffing and async use ---------------------------------------------------------------


def test_sniff_kind() -> None:
    assert sniff_kind(b"") is None
    assert sniff_kind(b"hello world, this is text") is None
    assert sniff_kind(random_bytes(100, seed=3)) is None
    assert sniff_kind(ms.m4a_clip(0.5)) == "audio"
    assert sniff_kind(ms.webp_image(8, 8)) == "image"
    assert media.sniff_format(ms.m4a_clip(0.5)) == ("audio", "mp4")
    assert media.sniff_format(ms.wav_clip(0.1)) == ("audio", "wav")
    assert media.sniff_format(ms.webm_opus_voice(0.5)) == ("audio", "matroska")


async def test_runs_in_worker_threads_concurrently(phone_jpeg: bytes) -> None:
    voice = ms.ogg_opus_voice(5.0)
    audio, image = await asyncio.gather(
        asyncio.to_thread(prepare_audio, voice),
        asyncio.to_thread(prepare_image, phone_jpeg),
    )
    assert abs(audio.seconds - 5.0) < 0.1
    assert image.gps is not None
