"""Coordination over Matrix, end to end against a real Synapse: alerts, commands, approval closing
the loop to the victim's SMS, role checks, free text to the model, voice notes from a Matrix DM."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import io
import json
import time
import wave
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    ErrorResponse,
    RoomCreateResponse,
    RoomMessageNotice,
    RoomMessagesResponse,
    RoomSendResponse,
    UploadResponse,
)

from bot import sms_text
from bot.models import Channel, Priority
from bot.store import incidents
from tests.harness.gateway import Gateway, make_settings, running_gateway, tool_call, wait_for
from tests.harness.matrix_room import Room, ask, joined, matrix_settings, roof_rescue_turn
from tests.harness.media_samples import ogg_opus_voice
from tests.harness.ollama_standin import OllamaStandIn, text_reply, tool_reply
from tests.harness.synapse_server import make_client, register, sync_once

VICTIM = "+8801712345678"


async def test_alert_list_refuse_approve_closes_loop_to_sms(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    ollama_standin.push_chat(*roof_rescue_turn())
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
        await gw.wait_sent(VICTIM, 2)
        case = (await gw.rows("SELECT case_code FROM incidents"))[0][0]
        alert = await room.wait_notice("DISPATCH REQUEST")
        assert case in alert and "CRITICAL" in alert and "Char Bhadrasan school roof" in alert

        await room.say(room.coord, "!incidents unassigned")
        listing = await room.wait_notice("unassigned case(s)")
        assert case in listing and "pending_approval" in listing

        await room.say(room.resp, f"!approve {case}")
        refusal = await room.wait_notice("Only coordinators can use !approve")
        assert refusal
        assert (await gw.rows("SELECT status FROM dispatches"))[0][0] == "pending_approval"
        audit = await gw.rows("SELECT actor FROM audit WHERE action='authority.denied'")
        assert [r[0] for r in audit] == [room.responder.user_id]

        await room.say(room.coord, f"!approve {case} boat-2")
        await room.wait_notice(f"{case}: approved, team boat-2")
        sms = await gw.wait_sent(VICTIM, 3)
        assert "rescue approved" in sms[2]["text"] and "boat-2" in sms[2]["text"]
        d = await gw.rows("SELECT status, team_id, decided_by FROM dispatches")
        assert tuple(d[0]) == ("assigned", "boat-2", room.coordinator.user_id)

        await room.say(room.coord, f"!say {case} Boat leaves the ghat in 10 minutes")
        sms = await gw.wait_sent(VICTIM, 4)
        assert "Boat leaves the ghat" in sms[3]["text"]
        await room.say(room.resp, f"!arrived {case}")
        sms = await gw.wait_sent(VICTIM, 5)
        assert "boat-2 has reached your area" in sms[4]["text"]
        await room.say(room.resp, f"!resolve {case} everyone safe at the shelter")
        sms = await gw.wait_sent(VICTIM, 6)
        assert "closed" in sms[5]["text"]
        teams = await gw.rows("SELECT status FROM teams WHERE id='boat-2'")
        assert teams[0][0] == "available"


async def test_free_text_goes_to_the_model_with_responder_tools(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    ollama_standin.push_chat(
        tool_reply(tool_call("list_open_incidents", filter="open")),
        text_reply("There are no open cases right now."),
    )
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        await room.say(room.coord, "chatting among ourselves, no bot here")
        await room.say(room.coord, "lifeline, how many open cases do we have?")
        await room.wait_notice("no open cases right now")
        chats = [r for r in ollama_standin.requests if r.path == "/api/chat"]
        assert len(chats) == 2  # only the message that addressed the bot
        tools = {t["function"]["name"] for t in chats[0].body["tools"]}
        assert tools == {"list_open_incidents", "update_incident", "get_incident_status"}
        assert "dispatch_rescue_team" not in tools


async def test_two_member_coordination_room_is_not_a_direct_chat(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """The coordinator and the bot alone in the configured coordination room (2 members, like a
    DM): chatter is recorded, not answered by the model; addressing the bot still works, across
    a restart too (the room must not turn into a DM once the client forgets its state)."""
    created = await coordination.coord.room_create(
        name="coordination-2", invite=[coordination.bot.user_id]
    )
    assert isinstance(created, RoomCreateResponse), created
    room = dataclasses.replace(coordination, room_id=created.room_id)
    ollama_standin.push_chat(text_reply("There are no open cases right now."))
    settings = matrix_settings(tmp_path, ollama_standin, room)
    chatter = ["anyone got the boat keys?", "ok thanks, heading to the ghat"]
    for attempt, text in enumerate(chatter):
        async with running_gateway(settings) as gw:
            await joined(gw, room.room_id)
            members = await room.coord.joined_members(room.room_id)
            assert len(members.members) == 2
            await room.say(room.coord, text)
            if attempt == 0:
                await room.say(room.coord, "lifeline, how many open cases do we have?")
                await room.wait_notice("no open cases right now")
            await wait_for(functools.partial(_inbox_done, gw, text), timeout=20, every=0.2)
            rows = await gw.rows("SELECT is_direct FROM inbox WHERE text=?", text)
            assert rows[0][0] == 0  # typed column: not a DM
    chats = [r for r in ollama_standin.requests if r.path == "/api/chat"]
    assert len(chats) == 1  # only the message that addressed the bot
    assert not any(t in n for n in await room.notices() for t in chatter)


async def _inbox_done(gw: Gateway, text: str) -> bool:
    rows = await gw.rows("SELECT status FROM inbox WHERE text=?", text)
    return bool(rows) and rows[0][0] == "done"


async def test_room_posts_never_carry_control_or_bidi_characters(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """An SMS with ANSI escapes and a bidi override: the new-case alert and !case in the room show
    it cleaned (through the real Synapse), while the inbox and the case keep it as received."""
    room = coordination
    hostile = "\x1b[2J\x1b[31mdrowning\x1b[0m on the roof\r of the \u202eschool\u2069 \x9b5m"
    ollama_standin.push_chat(text_reply("Stay on the roof."))
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        gw.sms_in(VICTIM, hostile)
        alert = await room.wait_notice("new case")
        case = (await gw.rows("SELECT case_code FROM incidents"))[0][0]
        shown = await ask(room, f"!case {case}")
        stored = await gw.rows("SELECT text FROM inbox WHERE peer=?", VICTIM)
        summary = await gw.rows("SELECT summary FROM incidents")
    assert alert.startswith("[CRITICAL]")  # the escapes do not hide "drowning" from triage
    for body in (alert, shown):
        assert "> drowning on the roof\n> of the school" in body, body
        assert not [c for c in "\x1b\x9b\r\u202e\u2069" if c in body], repr(body)
    assert stored[0][0] == hostile and summary[0][0] == hostile


async def test_emoji_only_sos_alerts_the_coordinators_at_once(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """ "🆘🌊🏠😭🙏" by SMS is a life threat: a CRITICAL case, the coordinators alerted, and the
    victim told help is being arranged (it was rated low and raised no alert)."""
    room = coordination
    ollama_standin.push_chat(text_reply("Where are you? How many people?"))
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        gw.sms_in(VICTIM, "🆘🌊🏠😭🙏")
        alert = await room.wait_notice("new case")
        ack = (await gw.wait_sent(VICTIM, 1))[0]["text"]
        priority = await gw.rows("SELECT priority FROM incidents")
    assert alert.startswith("[CRITICAL]")
    assert priority[0][0] == Priority.CRITICAL
    assert "Help is being arranged" in ack


async def test_bot_restart_does_not_reprocess(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    settings = matrix_settings(tmp_path, ollama_standin, room)
    async with running_gateway(settings) as gw:
        await joined(gw, room.room_id)
        await room.say(room.coord, "!teams")
        await room.wait_notice("boat-1 boat")
    before = len(await room.notices())
    async with running_gateway(settings) as gw:
        await joined(gw, room.room_id)
        await room.say(room.coord, "!help")
        await room.wait_notice("Lifeline commands")
        await asyncio.sleep(1.0)
        rows = await gw.rows("SELECT text FROM inbox ORDER BY id")
        assert [r[0] for r in rows] == ["!teams", "!help"]
    assert len(await room.notices()) == before + 1


def wav_of(clip: bytes) -> tuple[int, int, float]:
    with wave.open(io.BytesIO(clip)) as w:
        return w.getframerate(), w.getnchannels(), w.getnframes() / w.getframerate()


async def test_voice_note_by_matrix_dm_is_one_multimodal_call(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    ollama_standin.push_chat(text_reply("We heard you. Stay on the roof and wave a cloth."))
    victim_acct = register(room.hs, "victim")
    victim = await make_client(room.hs, victim_acct)
    try:
        async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
            await joined(gw, room.room_id)
            dm = await victim.room_create(invite=[room.bot.user_id], is_direct=True)
            assert isinstance(dm, RoomCreateResponse)
            await joined(gw, dm.room_id)
            note = ogg_opus_voice(75.0)
            up, _ = await victim.upload(
                io.BytesIO(note), content_type="audio/ogg", filename="voice.ogg", filesize=len(note)
            )
            assert isinstance(up, UploadResponse), up
            await victim.room_send(
                dm.room_id,
                "m.room.message",
                {
                    "msgtype": "m.audio",
                    "body": "Voice message",
                    "url": up.content_uri,
                    "info": {"mimetype": "audio/ogg", "size": len(note), "duration": 75000},
                    "org.matrix.msc3245.voice": {},
                },
            )
            reply = await room.wait_notice(
                "We heard you", client=victim, room_id=dm.room_id, timeout=40
            )
            assert "LF-" in reply
        chats = [r for r in ollama_standin.requests if r.path == "/api/chat"]
        assert len(chats) == 1
        user = chats[0].body["messages"][-1]
        clips = [base64.b64decode(x) for x in user["images"]]
        assert len(clips) == 3  # 75 s → three clips of ≤ 30 s, cut at quiet points
        for clip in clips:
            assert clip[:4] == b"RIFF" and clip[8:12] == b"WAVE"
            rate, channels, seconds = wav_of(clip)
            assert (rate, channels) == (16000, 1) and seconds <= 30.0
        assert "voice note 1: 3 audio clip(s)" in user["content"]
        assert "Message from the public sender" in user["content"]  # text and audio, one message
    finally:
        await victim.close()


async def _dm(gw: Gateway, room: Room, victim: AsyncClient) -> str:
    dm = await victim.room_create(invite=[room.bot.user_id], is_direct=True)
    assert isinstance(dm, RoomCreateResponse)
    await joined(gw, dm.room_id)
    return str(dm.room_id)


async def _send_file(
    victim: AsyncClient,
    room_id: str,
    data: bytes,
    msgtype: str,
    mimetype: str,
    name: str,
    declared_size: int | None = None,
) -> None:
    up, _ = await victim.upload(
        io.BytesIO(data), content_type=mimetype, filename=name, filesize=len(data)
    )
    assert isinstance(up, UploadResponse), up
    await victim.room_send(
        room_id,
        "m.room.message",
        {
            "msgtype": msgtype,
            "body": name,
            "url": up.content_uri,
            "info": {"mimetype": mimetype, "size": declared_size or len(data)},
        },
    )


async def test_photo_with_gps_is_downscaled_stripped_and_located(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    from PIL import Image

    from tests.harness.media_samples import jpeg_with_gps

    room = coordination
    ollama_standin.push_chat(text_reply("We see the flooded street. Move upstairs."))
    victim = await make_client(room.hs, register(room.hs, "victim"))
    try:
        async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
            dm = await _dm(gw, room, victim)
            photo = jpeg_with_gps(4000, 3000, lat=25.80567, lon=89.63651)
            await _send_file(victim, dm, photo, "m.image", "image/jpeg", "street.jpg")
            await room.wait_notice("Move upstairs", client=victim, room_id=dm, timeout=40)
            inc = (await gw.rows("SELECT lat, lon, case_code FROM incidents"))[0]
            assert abs(inc[0] - 25.80567) < 1e-4 and abs(inc[1] - 89.63651) < 1e-4
            await room.say(room.coord, f"!case {inc[2]}")
            assert inc[2] in await room.wait_notice("GPS: 25.80567,89.63651")
            stored = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
            assert len(stored) == 1
            assert b"Exif" not in stored[0].read_bytes()[:4096]
            with Image.open(stored[0]) as kept:  # closed: an open file is a ResourceWarning
                assert not kept.getexif()
        user = [r for r in ollama_standin.requests if r.path == "/api/chat"][0].body["messages"][-1]
        assert len(user["images"]) == 1
        sent = Image.open(io.BytesIO(base64.b64decode(user["images"][0])))
        assert max(sent.size) <= 1024 and sent.format == "JPEG" and not sent.getexif()
    finally:
        await victim.close()


@pytest.mark.parametrize("case", ["corrupt-audio", "oversize", "no-audio-capability"])
async def test_bad_media_gets_a_clear_reply_and_is_kept(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room, case: str
) -> None:
    room = coordination
    ollama_standin.push_chat(text_reply("Please tell us in writing where you are."))
    extra: dict[str, Any] = {}
    if case == "oversize":
        extra["media"] = {"max_bytes": 50_000}
    if case == "no-audio-capability":
        ollama_standin.set_capabilities(["completion", "tools", "vision"])
    victim = await make_client(room.hs, register(room.hs, "victim"))
    try:
        settings = matrix_settings(tmp_path, ollama_standin, room)
        if case == "oversize":
            settings = settings.model_copy(
                update={"matrix": settings.matrix.model_copy(update={"max_media_bytes": 50_000})}
            )
        async with running_gateway(settings) as gw:
            dm = await _dm(gw, room, victim)
            if case == "corrupt-audio":
                await _send_file(
                    victim,
                    dm,
                    b"OggS" + bytes(range(256)) * 20,
                    "m.audio",
                    "audio/ogg",
                    "voice.ogg",
                )
                needle = "could not play"
            elif case == "oversize":
                await _send_file(
                    victim,
                    dm,
                    ogg_opus_voice(20.0) + bytes(60_000),
                    "m.audio",
                    "audio/ogg",
                    "voice.ogg",
                )
                needle = "too large"
            else:
                await _send_file(
                    victim, dm, ogg_opus_voice(5.0), "m.audio", "audio/ogg", "voice.ogg"
                )
                needle = "coordinator will check it"
                alert = await room.wait_notice("media the model cannot process", timeout=40)
                assert "voice.ogg" in alert
            reply = await room.wait_notice(needle, client=victim, room_id=dm, timeout=40)
            assert "LF-" in reply
            rows = await gw.rows("SELECT status, meta FROM inbox")
            assert rows[0][0] == "done"  # handled, kept, not lost
        chats = [r for r in ollama_standin.requests if r.path == "/api/chat"]
        assert len(chats) == 1 and not chats[0].body["messages"][-1].get("images")
    finally:
        await victim.close()


async def test_advisory_reaches_matrix_dm_subscribers_and_stop_is_honoured(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """JOIN from a Matrix DM subscribes that room: advisories arrive there as notices (next to
    SMS subscribers), STOP in the DM ends them; nothing goes to the model."""
    room = coordination
    victim_acct = register(room.hs, "victim")
    victim = await make_client(room.hs, victim_acct)
    try:
        async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
            await joined(gw, room.room_id)
            dm = await _dm(gw, room, victim)
            await victim.room_send(
                dm, "m.room.message", {"msgtype": "m.text", "body": "JOIN Ward 5"}
            )
            await room.wait_notice("alerts for Ward 5", client=victim, room_id=dm)
            gw.sms_in(VICTIM, "JOIN ward 5")
            await gw.wait_sent(VICTIM, 1)

            await room.say(room.coord, "!advise ward-5 Boil drinking water for 1 minute.")
            await room.wait_notice("queued 2 message(s)")
            advisory = await room.wait_notice("Boil drinking water", client=victim, room_id=dm)
            assert advisory == "Advisory for ward 5: Boil drinking water for 1 minute."
            await gw.wait_sent(VICTIM, 2)
            assert gw.sent()[-1]["text"] == "Lifeline advisory: Boil drinking water for 1 minute."

            await victim.room_send(dm, "m.room.message", {"msgtype": "m.text", "body": "STOP"})
            await room.wait_notice("STOP", client=victim, room_id=dm)
            await room.say(room.coord, "!advise ward-5 Boats leave the ghat at 6.")
            await room.wait_notice("queued 1 message(s)")
            await gw.wait_sent(VICTIM, 3)
            await gw.idle(timeout=20)
            dm_notices = await room.notices(client=victim, room_id=dm)
        assert not any("Boats leave" in n for n in dm_notices)
        assert sum("Advisory for" in n for n in dm_notices) == 1
        assert not [r for r in ollama_standin.requests if r.path == "/api/chat"]
    finally:
        await victim.close()


async def test_wrong_broadcast_arguments_get_a_clear_error_and_nothing_is_sent(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """Typed in the coordination room on a real Synapse: a wrong time, interval, area or id is
    refused with a message that says what is wrong, and nothing is queued or scheduled."""
    room = coordination
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        gw.sms_in(VICTIM, "JOIN ward 5")
        await gw.wait_sent(VICTIM, 1)
        cases = [
            ("!advise * test at 25:99", "'at 25:99' is not a time"),
            ("!advise ward-5 Boil water at 24:00", "'at 24:00' is not a time"),
            ("!advise ward-5 Boil water at 7:5", "'at 7:5' is not a time"),
            ("!broadcast every 30 * Boil water at 9:99", "'at 9:99' is not a time"),
            ("!broadcast every 0 * Boil water", "Minutes must be a whole number from 1"),
            ("!broadcast every 99999999999 * Boil water", "Minutes must be a whole number"),
            ("!broadcast every -5 * Boil water", "Minutes must be a whole number"),
            ("!broadcast every 1.5 * Boil water", "Minutes must be a whole number"),
            ('!advise "a b c d e f g" Boil water', "An area is at most 6 words"),
            ('!advise "!!" Boil water', "is not an area name"),
            ("!broadcast cancel abc", "'abc' is not a broadcast id"),
            ("!broadcast cancel 99999999999999999999999", "is not a broadcast id"),
            ("!broadcast cancel", "Usage: !broadcast cancel <id>"),
            ("!broadcast cancel 1 2", "Usage: !broadcast cancel <id>"),
        ]
        for command, expected in cases:
            answer = await ask(room, command)
            assert expected in answer, (command, answer)
            if "Usage" not in expected:
                done = "Nothing was cancelled." if "cancel" in command else "Nothing was sent."
                assert answer.endswith(done), answer
        await gw.idle()
        advisories = await gw.rows("SELECT COUNT(*) FROM broadcasts WHERE kind='advisory'")
        sms = await gw.rows("SELECT COUNT(*) FROM outbox WHERE channel='sms'")
        # A valid time in the same shape is still a schedule; a text ending in "." is sent now.
        scheduled = await ask(room, "!advise ward-5 Boil water at 23:59")
        now = await ask(room, "!advise ward-5 Water level at 5.75.")
    assert advisories[0][0] == 0
    assert sms[0][0] == 1  # the JOIN confirmation only
    assert "scheduled for 23:59" in scheduled
    assert "queued 1 message(s)" in now
    assert not [r for r in ollama_standin.requests if r.path == "/api/chat"]


async def _share_room_key_late(victim: AsyncClient, bot_user: str, key: dict[str, Any]) -> None:
    """What a sender's client does when it finally shares a megolm key: an Olm-encrypted
    ``m.room_key`` to-device message to each of the bot's devices."""
    from nio.event_builders import ToDeviceMessage

    await sync_once(victim)
    missing = victim.get_missing_sessions(key["room_id"])
    if missing:
        await victim.keys_claim(missing)
    assert victim.olm is not None
    devices = list(victim.olm.device_store.active_user_devices(bot_user))
    assert devices, "the sender never saw the bot's device keys"
    for device in devices:
        session = victim.olm.session_store.get(device.curve25519)
        assert session is not None
        payload = victim.olm._olm_encrypt(session, device, "m.room_key", key)
        resp = await victim.to_device(
            ToDeviceMessage("m.room.encrypted", bot_user, device.id, payload)
        )
        assert not isinstance(resp, ErrorResponse), resp


async def test_message_whose_key_arrives_late_is_delivered_after_a_restart(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """An encrypted DM the bot cannot decrypt gets an immediate "could not read" reply; when the
    sender's key arrives later (here: after a gateway restart) the message is decrypted and
    handled like any other, once."""
    room = coordination
    ollama_standin.push_chat(text_reply("Stay on the roof; a boat is being arranged."))
    victim = await make_client(room.hs, register(room.hs, "victim"), tmp_path / "victim-store")
    settings = matrix_settings(tmp_path, ollama_standin, room)
    settings = settings.model_copy(
        update={"matrix": settings.matrix.model_copy(update={"encryption": True})}
    )
    try:
        await sync_once(victim)
        async with running_gateway(settings) as gw:
            await joined(gw, room.room_id)
            created = await victim.room_create(
                invite=[room.bot.user_id],
                is_direct=True,
                initial_state=[
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                ],
            )
            assert isinstance(created, RoomCreateResponse)
            dm = created.room_id
            await joined(gw, dm)
            async with asyncio.timeout(30):  # the sender sees the bot in the room

                def bot_in_room() -> bool:
                    r = victim.rooms.get(dm)
                    return r is not None and room.bot.user_id in r.users and not r.invited_users

                while not bot_in_room():
                    await sync_once(victim, 500)
            # The sender's client encrypts but does not share the key (its phone lost signal).
            assert victim.olm is not None
            victim.olm.create_outbound_group_session(dm)
            session = victim.olm.outbound_group_sessions[dm]
            key = {
                "algorithm": "m.megolm.v1.aes-sha2",
                "room_id": dm,
                "session_id": session.id,
                "session_key": session.session_key,
            }
            session.shared = True
            sent = await victim.room_send(
                dm,
                "m.room.message",
                {"msgtype": "m.text", "body": "3 of us on the roof of Char school, water rising"},
                ignore_unverified_devices=True,
            )
            assert isinstance(sent, RoomSendResponse), sent

            async def first_reply() -> list[Any]:
                return await gw.rows(
                    "SELECT text FROM outbox WHERE conversation=? AND status='sent'", dm
                )

            assert "could not" in (await wait_for(first_reply, 30))[0][0].lower()
        assert not [r for r in ollama_standin.requests if r.path == "/api/chat"]

        await _share_room_key_late(victim, room.bot.user_id, key)
        async with running_gateway(settings) as gw:

            async def model_reply() -> list[Any]:
                return [
                    r
                    for r in await gw.rows(
                        "SELECT text FROM outbox WHERE conversation=? AND status='sent'", dm
                    )
                    if "boat is being arranged" in r[0]
                ]

            await wait_for(model_reply, 40)
            await gw.idle(timeout=20)
            rows = await gw.rows(
                "SELECT dedup_key, text FROM inbox WHERE channel='matrix' AND conversation=?", dm
            )
        assert [tuple(r) for r in rows] == [
            (sent.event_id, ""),
            (sent.event_id + ":late-key", "3 of us on the roof of Char school, water rising"),
        ]
        chats = [r for r in ollama_standin.requests if r.path == "/api/chat"]
        assert len(chats) == 1
        assert "roof of Char school" in chats[0].body["messages"][-1]["content"]
        # The reply sent after the restart is readable by the victim (room keys went to them).
        readable: list[str] = []
        async with asyncio.timeout(30):
            while not any("boat is being arranged" in b for b in readable):
                sync = await sync_once(victim, 500)
                joined_dm = sync.rooms.join.get(dm)
                readable += [
                    e.body
                    for e in (joined_dm.timeline.events if joined_dm else [])
                    if isinstance(e, RoomMessageNotice)
                ]
    finally:
        await victim.close()


async def test_dm_after_gateway_restart_is_still_a_dm(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """After a restart the sync resumes from the stored token, so the client knows nothing about
    old rooms; a victim's next DM must still be answered (not taken for group-room chatter)."""
    room = coordination
    ollama_standin.push_chat(
        text_reply("We got your first message."), text_reply("We got your second message.")
    )
    victim = await make_client(room.hs, register(room.hs, "victim"))
    settings = matrix_settings(tmp_path, ollama_standin, room)
    try:
        async with running_gateway(settings) as gw:
            await joined(gw, room.room_id)
            dm = await _dm(gw, room, victim)
            await victim.room_send(
                dm, "m.room.message", {"msgtype": "m.text", "body": "help, 2 of us"}
            )
            await room.wait_notice("first message", client=victim, room_id=dm)
        async with running_gateway(settings) as gw:
            await joined(gw, room.room_id)
            await victim.room_send(
                dm, "m.room.message", {"msgtype": "m.text", "body": "water at the window now"}
            )
            await room.wait_notice("second message", client=victim, room_id=dm, timeout=40)
    finally:
        await victim.close()


async def _forward(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: tuple[str, int]
) -> None:
    """A TCP pass-through to the homeserver (stands for the network path coming back)."""
    up_r, up_w = await asyncio.open_connection(*target)

    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    await asyncio.gather(pump(reader, up_w), pump(up_r, writer))


async def test_homeserver_down_at_start_sms_works_and_alerts_wait(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """Synapse unreachable when the gateway starts (first login never happened): SMS victims are
    served, !status-style health says Matrix is not connected, the critical alert waits in the
    outbox; when the homeserver is reachable the channel comes up by itself and the alert is
    posted to the coordination room, given by #alias."""
    import socket
    import urllib.parse

    room = coordination
    alias = f"#ops{room.room_id[1:8].lower()}:localhost"
    put = await room.coord.room_put_alias(alias, room.room_id)
    assert not isinstance(put, ErrorResponse), put
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there yet
    hs = urllib.parse.urlsplit(room.hs.url)
    settings = matrix_settings(tmp_path, ollama_standin, room)
    settings = settings.model_copy(
        update={
            "matrix": settings.matrix.model_copy(
                update={"homeserver": f"http://127.0.0.1:{port}", "coordination_room": alias}
            )
        }
    )
    ollama_standin.push_chat(*roof_rescue_turn())
    proxy: asyncio.Server | None = None
    try:
        async with running_gateway(settings) as gw:
            gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
            sent = await gw.wait_sent(VICTIM, 2, timeout=30)
            assert "Stay on the roof" in sent[1]["text"]
            status = await gw.app.status_text(gw.runtime)
            assert "matrix: NOT CONNECTED" in status
            waiting = await gw.rows(
                "SELECT text FROM outbox WHERE channel='matrix' AND status='queued'"
            )
            assert any("DISPATCH REQUEST" in r[0] for r in waiting)

            proxy = await asyncio.start_server(
                lambda r, w: _forward(r, w, (hs.hostname or "127.0.0.1", hs.port or 80)),
                "127.0.0.1",
                port,
            )
            alert = await room.wait_notice("DISPATCH REQUEST", timeout=60)
            assert "Char Bhadrasan school roof" in alert
            assert "NOT CONNECTED" not in await gw.app.status_text(gw.runtime)
    finally:
        if proxy is not None:
            proxy.close()


# ---- coordinator decisions: edits, replies, mentions, repeated decisions, SMS shaping ---------


async def event_id_of(room: Room, body: str) -> str:
    """The id of the latest message in the room with exactly this body."""
    msgs = await room.coord.room_messages(room.room_id, start="", limit=100)
    assert isinstance(msgs, RoomMessagesResponse), msgs
    return next(e.event_id for e in msgs.chunk if getattr(e, "body", None) == body)


async def sms_case(gw: Gateway, *, pending_dispatch: bool = False) -> tuple[str, int]:
    """An SMS victim's open case made directly in the store (no model turn): (code, id)."""
    now = time.time()
    async with gw.db.transaction() as conn:
        inc = await incidents.create(
            conn,
            channel=Channel.SMS,
            reporter=VICTIM,
            conversation=VICTIM,
            priority=Priority.HIGH,
            lang="en",
            summary="4 people on a roof",
            now=now,
        )
        if pending_dispatch:
            await incidents.create_dispatch(
                conn,
                incident_id=inc.id,
                kind="boat",
                status="pending_approval",
                priority=Priority.HIGH,
                location="school roof",
                people_count=4,
                needs="rescue",
                idem_key=f"dispatch:test:{inc.id}",
                requested_by=VICTIM,
                now=now,
            )
            await incidents.update(conn, inc.id, now, status="dispatch_requested")
    return inc.case, inc.id


async def victim_outbox(gw: Gateway) -> list[str]:
    rows = await gw.rows("SELECT text FROM outbox WHERE peer=? ORDER BY id", VICTIM)
    return [r[0] for r in rows]


async def test_edited_commands_are_not_run_again(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """Editing a sent command (m.replace) sends the whole new text as a new event; running it
    would relay a !say twice or re-notify on !resolve. The coordinator is told to resend."""
    room = coordination
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        case, _ = await sms_case(gw)
        sent = await room.coord.room_send(
            room.room_id, "m.room.message", {"msgtype": "m.text", "body": f"!say {case} boat"}
        )
        assert isinstance(sent, RoomSendResponse), sent
        await room.wait_notice("Relayed to the reporter")
        for original, new in [
            (sent.event_id, f"!say {case} boat coming in 10 min"),
            (None, f"!resolve {case} all safe, 4 people"),
        ]:
            if original is None:
                before = await ask(room, f"!resolve {case} all safe")
                assert "resolved" in before
                original = await event_id_of(room, f"!resolve {case} all safe")
            notice = await ask(
                room,
                f"* {new}",
                **{
                    "m.new_content": {"msgtype": "m.text", "body": new},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": original},
                },
            )
            assert notice == "Edits are not run as commands; send the command again."
        await gw.idle()
        texts = await victim_outbox(gw)
        assert texts == [f"Lifeline {case} responder: boat", texts[1]]
        assert "your case is closed. all safe" in texts[1]
        edits = await gw.rows("SELECT status FROM inbox WHERE edit_of IS NOT NULL")
        assert [r[0] for r in edits] == ["done", "done"]
        assert not [r for r in ollama_standin.requests if r.path == "/api/chat"]


async def test_commands_in_replies_and_after_a_mention_are_commands(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """A command sent as a reply to the bot's alert (body starts with the quoted fallback) or
    after a mention ("Lifeline: !case …") is run as a command, not sent to the model."""
    room = coordination
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        case, case_id = await sms_case(gw, pending_dispatch=True)
        async with gw.db.transaction() as conn:
            await incidents.update(conn, case_id, time.time(), lat=23.81, lon=90.41)
        teams = await ask(room, "!teams")
        alert_id = await event_id_of(room, teams)
        quoted = "\n".join(f"> {line}" for line in teams.splitlines())
        reply = f"> <{room.bot.user_id}> {quoted[2:]}\n\n!approve {case} boat-2"
        approved = await ask(
            room, reply, **{"m.relates_to": {"m.in_reply_to": {"event_id": alert_id}}}
        )
        assert approved.startswith(f"{case}: approved, team boat-2")
        shown = await ask(room, f"Lifeline: !case {case}")
        assert shown.startswith("[HIGH]") and case in shown and "boat-2 assigned" in shown
        assert shown.count("where:") == 1 and shown.count("GPS: 23.81000,90.41000") == 1
        assert (await ask(room, "lifeline !teams")).startswith("boat-1 boat")
        localpart = room.bot.user_id.split(":")[0]
        assert "Lifeline commands" in await ask(room, f"{room.bot.user_id}: !help")
        assert "Lifeline commands" in await ask(room, f"{localpart[1:]}, !help")
        assert not [r for r in ollama_standin.requests if r.path == "/api/chat"]
        texts = await victim_outbox(gw)
        assert len(texts) == 1 and "boat-2" in texts[0]


async def test_every_decision_reaches_the_victim_once_and_no_team_free_is_said_plainly(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """Approval with every team busy tells the victim a team will come when one is free (not
    "Team -"), a second !approve points to !assign; a reassignment back to boat-1 and a second
    team arriving are each told (notices keyed by the command, not the dispatch); team ids are
    case-insensitive; a repeated !arrived is refused."""
    room = coordination
    async with running_gateway(matrix_settings(tmp_path, ollama_standin, room)) as gw:
        await joined(gw, room.room_id)
        case, _ = await sms_case(gw, pending_dispatch=True)
        async with gw.db.transaction() as conn:
            await conn.execute("UPDATE teams SET status='busy'")  # all out on other jobs
        first = await ask(room, f"!approve {case}")
        assert "no team is free" in first and f"!assign {case} <team>" in first
        again = await ask(room, f"!approve {case}")
        assert again.startswith("Cannot do that:") and f"!assign {case} <team>" in again
        async with gw.db.transaction() as conn:
            await conn.execute("UPDATE teams SET status='available'")
        for team in ("BOAT-1", "boat-2", "Boat-1"):
            done = await ask(room, f"!assign {case} {team}")
            assert done.startswith(f"{case}: approved, team {team.lower()}"), done
        assert "arrived" in await ask(room, f"!arrived {case}", room.resp)
        assert "already marked arrived" in await ask(room, f"!arrived {case}", room.resp)
        assert "boat-2" in await ask(room, f"!assign {case} boat-2")
        assert "boat-2 arrived" in await ask(room, f"!arrived {case}", room.resp)
        await gw.idle()
        texts = await victim_outbox(gw)
        assert not any("Team -" in t for t in texts)
        assert texts == [
            f"Lifeline {case}: rescue approved. A team will be assigned to you as soon as one is "
            "free; we will text you. Stay where you are if safe, keep your phone on.",
            f"Lifeline {case}: team boat-1 is assigned to you.",
            f"Lifeline {case}: team boat-2 is assigned to you.",
            f"Lifeline {case}: team boat-1 is assigned to you.",
            texts[4],
            f"Lifeline {case}: team boat-2 is assigned to you.",
            texts[6],
        ]
        assert "team boat-1 has reached your area" in texts[4]
        assert "team boat-2 has reached your area" in texts[6]
        teams = dict(tuple(r) for r in await gw.rows("SELECT id, status FROM teams"))
        assert teams == {"boat-1": "available", "boat-2": "busy", "med-1": "available"}


async def test_notices_to_an_sms_victim_fit_the_budget_use_their_modem_and_close_once(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """Coordinator text to an SMS victim is plain GSM-7 within the segment budget and goes out on
    the modem the victim wrote to; an over-long !say is reported as shortened; case codes are
    accepted as 6609 / LF6609 / lf-6609; a second !resolve is refused and not re-sent."""
    room = coordination
    ollama_standin.push_chat(*roof_rescue_turn())
    modems = [
        {
            "name": name,
            "device": str(tmp_path / f"modem-{name}"),
            "poll_interval_s": 0.1,
            "send_per_minute": 120,
        }
        for name in ("sim1", "sim2")
    ]
    settings = matrix_settings(
        tmp_path, ollama_standin, room, sms={"modems": modems, "segment_budget": 3}
    )
    async with running_gateway(settings) as gw:
        await joined(gw, room.room_id)
        gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school", modem=1)
        await gw.wait_sent(VICTIM, 2)
        await room.wait_notice("DISPATCH REQUEST")
        case = (await gw.rows("SELECT case_code FROM incidents"))[0][0]
        digits = case.split("-")[1]
        assert "team boat-1" in await ask(room, f"!approve {digits}")
        long_say = (
            "**Boat leaves** the ghat now — it’s the “blue” one. " * 10
            + "Stay on the roof and wave a cloth."
        )
        relayed = await ask(room, f"!say LF{digits} {long_say}")
        assert "SHORTENED to fit 3 SMS" in relayed and case in relayed
        note = "Everyone reached the “school shelter” — thank you for waiting. " * 8
        assert "resolved" in await ask(room, f"!resolve lf-{digits} {note}")
        refused = await ask(room, f"!resolve {case} duplicate")
        assert refused == f"Cannot do that: {case} is already resolved"
        await gw.idle()
        texts = await victim_outbox(gw)
        notices = texts[2:]
        assert len(notices) == 3 and sum("case is closed" in t for t in texts) == 1
        for text in notices:
            assert sms_text.segments(text) <= 3 and sms_text.encoding(text) == "gsm7", text
            assert "**" not in text and "’" not in text and "—" not in text
        assert notices[1].startswith(f"Lifeline {case} responder: Boat leaves the ghat now - ")
        assert notices[2].startswith(f"Lifeline {case}: your case is closed. Everyone")
        assert notices[2].endswith(" Text again if you need help.")
        sent = await gw.wait_sent(VICTIM, 5)
        assert {m["modem"] for m in sent} == {"sim2"}
        metas = await gw.rows("SELECT meta FROM outbox WHERE peer=? ORDER BY id", VICTIM)
        assert all(json.loads(m[0]).get("modem") == "sim2" for m in metas[2:])


async def test_team_removed_from_the_config_goes_offline(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """A team taken out of [[teams]] (boat broke down) is offline after the restart: shown so in
    !teams, never picked or assignable, and closing its last case does not bring it back."""
    room = coordination
    settings = matrix_settings(tmp_path, ollama_standin, room)
    async with running_gateway(settings) as gw:
        await joined(gw, room.room_id)
        first, _ = await sms_case(gw)
        assert "team boat-1" in await ask(room, f"!assign {first} boat-1")
    fewer = settings.model_copy(update={"teams": [t for t in settings.teams if t.id != "boat-1"]})
    async with running_gateway(fewer) as gw:
        await joined(gw, room.room_id)
        teams = await ask(room, "!teams")
        assert "boat-1 boat @ghat cap 8: offline" in teams and "boat-2 boat" in teams
        second, _ = await sms_case(gw, pending_dispatch=True)
        assert "boat-1 is offline" in await ask(room, f"!assign {second} boat-1")
        assert "team boat-2" in await ask(room, f"!approve {second}")
        assert "resolved" in await ask(room, f"!resolve {first} done")
        states = dict(tuple(r) for r in await gw.rows("SELECT id, status FROM teams"))
        assert states == {"boat-1": "offline", "boat-2": "busy", "med-1": "available"}
    async with running_gateway(settings) as gw:  # back in the config: free again
        states = dict(tuple(r) for r in await gw.rows("SELECT id, status FROM teams"))
        assert states == {"boat-1": "available", "boat-2": "busy", "med-1": "available"}


async def test_drill_alert_queued_before_the_local_homeserver_is_up_reaches_the_room(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    """Drill mode starts its own Synapse in the background; a life-threat SMS that arrives
    before it is up still gets its coordinator alert (queued, then posted to the drill room)."""
    settings = make_settings(
        tmp_path,
        ollama_standin.url,
        matrix={
            "enabled": True,
            "homeserver": "",
            "drill_dir": str(tmp_path / "drill"),
            "store_path": str(tmp_path / "matrix-store"),
            "encryption": False,
            "sync_timeout_s": 2,
        },
        broadcasts={"sitrep_every_min": 0},
    )
    async with running_gateway(settings) as gw:
        gw.sms_in(VICTIM, "house collapsed, 6 people trapped at Kazipur bazar")
        await gw.wait_sent(VICTIM, 1)  # acked while the homeserver may still be starting

        async def drill_ready() -> bool:
            return gw.runtime.drill is not None and gw.runtime.matrix is not None

        await wait_for(drill_ready, timeout=120, every=0.5)
        drill = gw.runtime.drill
        assert drill is not None
        coord = AsyncClient(drill.homeserver, drill.coordinator_user_id)
        try:
            login = await coord.login(drill.coordinator_password)
            assert not isinstance(login, ErrorResponse), login

            async def alerted() -> bool:
                resp = await coord.room_messages(drill.room_id, start="", limit=50)
                return any(
                    isinstance(e, RoomMessageNotice) and "Kazipur" in e.body
                    for e in getattr(resp, "chunk", [])
                )

            await wait_for(alerted, timeout=60, every=0.5)
        finally:
            await coord.close()
