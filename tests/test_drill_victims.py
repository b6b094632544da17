"""Matrix victims in drills, without a gateway: the scenario keys, the plan (who writes on
Matrix, who sends a voice note or a photo), the media the drill encodes at run time as the
gateway's own decoders read it, and each new checker path catching a planted violation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.drill import checks, media, plan
from bot.drill import scenario as sc
from bot.drill.checks import Evidence, Result
from bot.drill.journal import FaultSpan, Injected, Reply
from bot.media.audio import prepare_audio
from bot.media.image import prepare_image
from tests.harness.drill_evidence import PHOTO, STREET, T0, VOICE, audit_row, clean, inbox_row

SCENARIO = """
name = "unit"
duration_s = 600
areas = ["Ulipur", "Chilmari"]
[[teams]]
id = "boat-1"
[[victims]]
name = "sms"
count = 40
[[victims]]
name = "dm"
count = 40
"""


def load(tmp_path: Path, extra: str) -> sc.Scenario:
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO + extra, encoding="utf-8")
    return sc.load(path)


# ---- scenario and plan -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('channel = "email"', "channel"),
        ("channel = { sms = 0.5, matrx = 0.5 }", "did you mean 'matrix'"),
        ("channel = { sms = 0, matrix = 0 }", "must not all be 0"),
        ('channel = "matrix"\nmedia = { voice = 0.7, photo = 0.5 }', "more than 1"),
        ('channel = "matrix"\nmedia = { video = 0.1 }', "unknown 'video'"),
        ("media = { voice = 0.1 }", "from Matrix victims only"),
    ],
)
def test_bad_channel_and_media_keys_are_refused_clearly(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(sc.ScenarioError) as err:
        load(tmp_path, extra + "\n")
    assert message in str(err.value)


def test_matrix_victims_get_user_ids_voice_tones_and_photo_gps(tmp_path: Path) -> None:
    only_sms = plan.build(load(tmp_path, ""))
    mixed = plan.build(
        load(
            tmp_path,
            "channel = { sms = 0.5, matrix = 0.5 }\nmedia = { voice = 0.3, photo = 0.3 }\n",
        )
    )
    on_matrix = [p for p in mixed if p.channel == "matrix"]
    assert 8 <= len({p.number for p in on_matrix}) <= 32
    assert all(p.number.startswith("@victim-1-") and p.modem >= 0 for p in on_matrix)
    voice = [p for p in on_matrix if p.media == "voice"]
    photos = [p for p in on_matrix if p.media == "photo"]
    assert voice and photos
    assert len({p.tone_hz for p in voice}) == len(voice)  # each voice note is told apart
    assert all(p.lat and p.lon and p.text for p in photos)  # GPS and a caption
    # the same people and texts as before for the SMS population: its plan is unchanged
    assert [p for p in mixed if p.victim.startswith("sms/")] == [
        p for p in only_sms if p.victim.startswith("sms/")
    ]


def test_the_voice_note_is_heard_on_its_tone_after_the_gateway_prepared_it() -> None:
    prepared = prepare_audio(media.voice_note(655.0))  # the gateway's decoder: 16 kHz WAV clips
    tone = media.tone_of(prepared.clips[0].wav)
    assert tone is not None and abs(tone - 655.0) < plan.TONE_STEP_HZ / 4
    assert media.tone_of(b"not a wav") is None


def test_the_photo_carries_its_gps_to_the_gateway() -> None:
    prepared = prepare_image(media.photo(25.71234, 89.61234))
    assert prepared.gps is not None
    assert abs(prepared.gps[0] - 25.71234) < 1e-5 and abs(prepared.gps[1] - 89.61234) < 1e-5


# ---- each new checker path catches a planted violation -----------------------------------------


def only_failure(ev: Evidence) -> Result:
    failed = [r for r in checks.run_all(ev) if not r.ok]
    assert len(failed) == 1, [(r.promise, r.violations) for r in failed]
    return failed[0]


def _matrix_event_lost(ev: Evidence) -> None:
    ev.db.inbox[:] = [r for r in ev.db.inbox if r["dedup_key"] != "$voice"]


def _caption_altered(ev: Evidence) -> None:
    ev.db.inbox[4]["text"] = "Street under water"


def _stored_as_someone_else(ev: Evidence) -> None:
    ev.db.inbox[4]["peer"] = VOICE


def _no_reply_in_the_dm(ev: Evidence) -> None:
    ev.journal.replies[:] = [r for r in ev.journal.replies if r.peer != PHOTO]


def _late_reply_in_the_dm(ev: Evidence) -> None:
    ev.journal.replies[0] = Reply(T0 + 3 + 200, PHOTO, "Lifeline LF-1002: we got it", "$a1")


def _voice_never_alerted(ev: Evidence) -> None:
    ev.journal.notices[:] = [n for n in ev.journal.notices if "LF-1003" not in n.body]


def _matrix_stored_out_of_order(ev: Evidence) -> None:
    later = Injected(
        T0 + 50, PHOTO, "status", "p/2", "status", "en", channel="matrix", event_id="$later"
    )
    ev.journal.injected.append(later)
    row = inbox_row(7, "matrix", PHOTO, "status", T0 + 50.2, needs_model=0, key="$later")
    first = ev.db.inbox[4]
    # the same two rows, the later message under the smaller id
    ev.db.inbox[4] = {**first, "dedup_key": "$later", "text": "status"}
    ev.db.inbox.append({**row, "dedup_key": "$photo", "text": STREET})


def _closed_by_matrix_text(ev: Evidence) -> None:
    ev.db.audit.append(audit_row(9, T0 + 30, VOICE, "incident.closed", 4))


def _voice_never_reached_the_model(ev: Evidence) -> None:
    ev.journal.model_media[:] = [m for m in ev.journal.model_media if m.kind != "voice"]


def _photo_not_located(ev: Evidence) -> None:
    ev.db.incidents[2].update(lat=None, lon=None)


def _photo_located_elsewhere(ev: Evidence) -> None:
    ev.db.incidents[2]["lat"] += 0.01


@pytest.mark.parametrize(
    ("plant", "promise"),
    [
        (_matrix_event_lost, "nothing_lost"),
        (_caption_altered, "nothing_lost"),
        (_stored_as_someone_else, "nothing_lost"),
        (_no_reply_in_the_dm, "ack_in_time"),
        (_late_reply_in_the_dm, "ack_in_time"),
        (_voice_never_alerted, "critical_alerted"),
        (_matrix_stored_out_of_order, "conversation_order"),
        (_closed_by_matrix_text, "staff_authority"),
        (_voice_never_reached_the_model, "media_to_model"),
        (_photo_not_located, "photo_located"),
        (_photo_located_elsewhere, "photo_located"),
    ],
)
def test_a_planted_matrix_violation_is_caught(
    plant: Callable[[Evidence], None], promise: str
) -> None:
    ev = clean()
    plant(ev)
    failed = only_failure(ev)
    assert failed.promise == promise
    v = failed.violations[0]
    assert v.subject and v.evidence and v.at > 0


def test_a_homeserver_outage_extends_a_matrix_victims_ack_budget() -> None:
    ev = clean()
    ev.journal.replies[0] = Reply(T0 + 100, PHOTO, "Lifeline LF-1002: we got it", "$a1")
    assert not checks.acked_in_time(ev).ok
    ev.journal.faults.append(FaultSpan("homeserver_down", T0 + 2, T0 + 60))
    assert checks.acked_in_time(ev).ok


def test_a_voice_note_is_critical_once_the_model_can_hear_it() -> None:
    ev = clean()
    ev.journal.notices.append(ev.journal.notices.pop())  # LF-1003's request…
    late = ev.journal.notices[-1]
    ev.journal.notices[-1] = type(late)(T0 + 6 + 200, late.body)  # …200 s after the voice note
    assert not checks.critical_alerted(ev).ok
    ev.journal.faults.append(FaultSpan("model_down", T0 + 5, T0 + 180))
    assert checks.critical_alerted(ev).ok


def test_with_a_real_model_what_it_received_is_not_claimed() -> None:
    ev = clean()
    ev.journal.model_observed = False
    ev.journal.model_media.clear()
    result = checks.media_to_model(ev)
    assert result.ok and not result.checked and result.notes
