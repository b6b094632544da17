"""The Matrix transport's pure parts without a homeserver: room events (real nio event objects,
parsed from the JSON a homeserver sends) → Inbound, room facts (invites, m.direct), outbound
content, and error classification by kind."""

from __future__ import annotations

from typing import Any

import pytest
from nio import (
    Event,
    InviteMemberEvent,
    MegolmEvent,
    RoomMessageText,
    UnknownAccountDataEvent,
)
from nio.responses import InviteInfo

from bot.errors import PermanentError, TransientError
from bot.models import Channel, Facts, Outbound
from bot.transports.matrix import (
    MatrixSendError,
    MatrixStartError,
    classify_send_error,
    parse_geo_uri,
    safe_filename,
)
from bot.transports.matrix.e2ee import MAX_PENDING_UNDECRYPTED, Undecrypted
from bot.transports.matrix.errors import login_refused
from bot.transports.matrix.mapping import Mapped, MediaRef, merge_backfill, to_inbound
from bot.transports.matrix.rooms import direct_in, invites_in
from bot.transports.matrix.send import image_type, message_content

ME = "@lifeline:hs"
ROOM = "!room:hs"
COORD = "@coord:hs"
VICTIM = "@victim:hs"
CAP = 1000


def message(
    content: dict[str, Any], *, sender: str = VICTIM, eid: str = "$ev1", ts: int = 0
) -> Any:
    return Event.parse_event(
        {
            "type": "m.room.message",
            "event_id": eid,
            "sender": sender,
            "origin_server_ts": ts,
            "content": content,
        }
    )


def mapped(event: Any, *, is_direct: bool = False, now: float = 5.0) -> Mapped:
    out = to_inbound(
        event,
        ROOM,
        me=ME,
        is_direct=is_direct,
        max_media_bytes=CAP,
        now=now,
    )
    assert out is not None
    return out


def test_text_message_maps_to_inbound_with_its_facts() -> None:
    ev = RoomMessageText.from_dict(
        {
            "type": "m.room.message",
            "event_id": "$t1",
            "sender": COORD,
            "origin_server_ts": 1_700_000_000_000,
            "content": {"msgtype": "m.text", "body": "!list"},
        }
    )
    m = mapped(ev, is_direct=True)
    ib = m.inbound
    assert m.media is None and not m.undecryptable
    assert (ib.channel, ib.peer, ib.conversation, ib.text) == (Channel.MATRIX, COORD, ROOM, "!list")
    assert ib.dedup_key == "$t1" and ib.received_at == 1_700_000_000.0
    assert ib.attachments == ()
    assert ib.meta == {"event_id": "$t1", "room_id": ROOM, "encrypted": False}
    assert ib.facts == Facts(is_direct=True, msgtype="m.text")


def test_no_server_timestamp_uses_arrival_time() -> None:
    assert (
        mapped(message({"msgtype": "m.text", "body": "hi"}), now=42.0).inbound.received_at == 42.0
    )


def test_own_events_and_non_messages_are_not_delivered() -> None:
    own = message({"msgtype": "m.notice", "body": "ack"}, sender=ME)
    member = Event.parse_event(
        {
            "type": "m.room.member",
            "event_id": "$m1",
            "sender": VICTIM,
            "origin_server_ts": 1,
            "state_key": VICTIM,
            "content": {"membership": "join"},
        }
    )
    for ev in (own, member):
        assert to_inbound(ev, ROOM, me=ME, is_direct=False, max_media_bytes=CAP, now=0.0) is None


def test_a_pill_mention_addresses_the_bot() -> None:
    m = mapped(message({"msgtype": "m.text", "body": "help", "m.mentions": {"user_ids": [ME]}}))
    assert m.inbound.facts.addressed is True
    other = mapped(message({"msgtype": "m.text", "body": "x", "m.mentions": {"user_ids": [COORD]}}))
    assert not other.inbound.facts.addressed


def test_reply_to_the_bot_strips_the_fallback_and_addresses_it() -> None:
    body = f"> <{ME}> Case LF-1 opened\n\n!approve LF-1"
    relates = {"m.in_reply_to": {"event_id": "$orig"}}
    m = mapped(message({"msgtype": "m.text", "body": body, "m.relates_to": relates}))
    assert m.inbound.text == "!approve LF-1"
    assert m.inbound.facts.in_reply_to == "$orig" and m.inbound.facts.addressed is True
    to_other = mapped(
        message({"msgtype": "m.text", "body": f"> <{COORD}> hi\n\nSTOP", "m.relates_to": relates})
    )
    assert to_other.inbound.text == "STOP" and not to_other.inbound.facts.addressed


def test_an_edit_carries_the_new_text_and_what_it_edits() -> None:
    content = {
        "msgtype": "m.text",
        "body": "* 5 people",
        "m.new_content": {"msgtype": "m.text", "body": "5 people"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$first"},
    }
    m = mapped(message(content))
    assert m.inbound.text == "5 people" and m.inbound.facts.edit_of == "$first"


def test_location_is_parsed_into_facts() -> None:
    m = mapped(message({"msgtype": "m.location", "body": "here", "geo_uri": "geo:23.7,90.4;u=12"}))
    meta, facts = m.inbound.meta, m.inbound.facts
    assert (facts.lat, facts.lon, meta["accuracy_m"]) == (23.7, 90.4, 12.0)
    assert meta["geo_uri"] == "geo:23.7,90.4;u=12" and m.inbound.text == "here"
    msc = mapped(
        message(
            {
                "msgtype": "m.location",
                "body": "pin",
                "org.matrix.msc3488.location": {"uri": "geo:1.5,2.5"},
            }
        )
    )
    assert (msc.inbound.facts.lat, msc.inbound.facts.lon) == (1.5, 2.5)
    bad = mapped(message({"msgtype": "m.location", "body": "?", "geo_uri": "geo:north"}))
    assert bad.inbound.meta["location_error"] == "unparseable" and bad.inbound.facts.lat is None


def test_unknown_msgtype_is_delivered_as_text() -> None:
    m = mapped(message({"msgtype": "org.example.custom", "body": "water rising"}))
    assert m.inbound.text == "water rising" and m.inbound.facts.msgtype == "org.example.custom"


def test_image_is_handed_over_for_download_with_a_safe_name_and_caption() -> None:
    content = {
        "msgtype": "m.image",
        "body": "roof is gone",
        "filename": "../../etc/pass wd.png",
        "url": "mxc://hs/abc",
        "info": {"mimetype": "image/png", "size": 10},
    }
    m = mapped(message(content))
    assert m.media == MediaRef("image", "mxc://hs/abc", None, "pass_wd.png", "image/png")
    assert m.inbound.text == "roof is gone"  # the body is a caption when a filename is given
    assert m.inbound.meta["media_name"] == "pass_wd.png" and m.inbound.facts.media_error is None
    bare = mapped(message({"msgtype": "m.image", "body": "IMG_1.jpg", "url": "mxc://hs/x"}))
    assert bare.inbound.text == "" and bare.media is not None and bare.media.name == "IMG_1.jpg"


def test_media_over_the_cap_or_without_mxc_is_not_downloaded() -> None:
    big = {"msgtype": "m.file", "body": "a.pdf", "url": "mxc://hs/f", "info": {"size": CAP + 1}}
    m = mapped(message(big))
    assert m.media is None and m.inbound.facts.media_error == "too_large"
    no_mxc = mapped(message({"msgtype": "m.video", "body": "v.mp4", "url": "https://evil/v"}))
    assert no_mxc.media is None and no_mxc.inbound.facts.media_error == "download_failed"


def test_voice_note_is_marked_and_defaults_to_ogg() -> None:
    content = {
        "msgtype": "m.audio",
        "body": "Voice message",
        "url": "mxc://hs/v",
        "org.matrix.msc3245.voice": {},
    }
    m = mapped(message(content))
    assert m.inbound.facts.voice is True
    assert m.media is not None and (m.media.kind, m.media.mimetype) == ("audio", "audio/ogg")


def test_decrypted_encrypted_file_keeps_its_keys_for_the_download() -> None:
    file = {
        "url": "mxc://hs/enc",
        "key": {"kty": "oct", "alg": "A256CTR", "ext": True, "k": "K", "key_ops": ["decrypt"]},
        "iv": "IV",
        "hashes": {"sha256": "SHA"},
        "v": "v2",
    }
    ev = Event.parse_decrypted_event(
        {
            "type": "m.room.message",
            "event_id": "$enc",
            "sender": VICTIM,
            "origin_server_ts": 1,
            "room_id": ROOM,
            "content": {
                "msgtype": "m.image",
                "body": "p.jpg",
                "file": file,
                "info": {"mimetype": "image/jpeg"},
            },
        }
    )
    ev.decrypted = True
    m = mapped(ev)
    assert m.inbound.meta["encrypted"] is True
    assert m.media is not None and m.media.url == "mxc://hs/enc" and m.media.enc == file


def test_undecryptable_event_is_delivered_empty_with_its_source() -> None:
    source = {
        "type": "m.room.encrypted",
        "event_id": "$meg",
        "sender": VICTIM,
        "origin_server_ts": 2000,
        "content": {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AAAA",
            "sender_key": "curve",
            "session_id": "sess",
            "device_id": "DEV",
        },
    }
    ev = MegolmEvent.from_dict(source)
    m = mapped(ev)
    assert m.undecryptable and m.media is None and m.inbound.text == ""
    meta = m.inbound.meta
    assert m.inbound.facts.msgtype == "m.room.encrypted" and meta["session_id"] == "sess"
    assert m.inbound.facts.undecryptable
    assert meta["encrypted"] is True and meta["encrypted_event"] == {**source, "room_id": ROOM}
    assert m.inbound.received_at == 2.0


def test_merge_backfill_puts_older_first_without_the_overlap() -> None:
    a, b, c = (message({"msgtype": "m.text", "body": n}, eid=f"${n}") for n in "abc")
    b_again = message({"msgtype": "m.text", "body": "b"}, eid="$b")
    merged = merge_backfill([a, b_again], [b, c])
    assert [e.event_id for e in merged] == ["$a", "$b", "$c"] and merged[1] is b


def test_invites_name_the_inviter_and_whether_it_is_a_dm() -> None:
    def member(state_key: str, sender: str, content: dict[str, Any]) -> InviteMemberEvent:
        ev = InviteMemberEvent.from_dict(
            {"type": "m.room.member", "sender": sender, "state_key": state_key, "content": content}
        )
        assert isinstance(ev, InviteMemberEvent)
        return ev

    rooms = {
        "!dm:hs": InviteInfo([member(ME, VICTIM, {"membership": "invite", "is_direct": True})]),
        "!ops:hs": InviteInfo(
            [
                member(COORD, COORD, {"membership": "join"}),
                member(ME, COORD, {"membership": "invite"}),
            ]
        ),
        "!other:hs": InviteInfo([member("@x:hs", COORD, {"membership": "invite"})]),
    }
    assert invites_in(rooms, ME) == {
        "!dm:hs": (VICTIM, True),
        "!ops:hs": (COORD, False),
        "!other:hs": ("", False),
    }


def test_direct_in_takes_the_latest_m_direct() -> None:
    events = [
        UnknownAccountDataEvent("m.direct", {"@a:hs": ["!1:hs"]}),
        UnknownAccountDataEvent("m.push_rules", {}),
        UnknownAccountDataEvent("m.direct", {"@a:hs": ["!1:hs", "!2:hs"], "@bad:hs": "x"}),
    ]
    assert direct_in(events) == {"@a:hs": ["!1:hs", "!2:hs"]}
    assert direct_in(events[1:2]) is None


def test_message_content_cleans_text_and_keeps_reply_and_html() -> None:
    out = Outbound(
        channel=Channel.MATRIX,
        peer="",
        conversation=ROOM,
        text="SOS\x1b[31m from \u202eboat",
        idem_key="k1",
        meta={"formatted_body": "<b>SOS</b>", "in_reply_to": "$q", "msgtype": "m.text"},
    )
    content = message_content(out)
    assert content["msgtype"] == "m.text" and "\x1b" not in content["body"]
    assert "\u202e" not in content["body"]
    assert content["format"] == "org.matrix.custom.html" and content["formatted_body"]
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$q"}}
    plain = message_content(Outbound(Channel.MATRIX, "", ROOM, "hi", "k2"))
    assert plain == {"msgtype": "m.notice", "body": "hi"}


def test_image_type_accepts_png_and_jpeg_only() -> None:
    assert image_type(b"\x89PNG\r\n") == ("image/png", "png")
    assert image_type(b"\xff\xd8\xff") == ("image/jpeg", "jpg")
    with pytest.raises(MatrixSendError) as ei:
        image_type(b"GIF89a")
    assert isinstance(ei.value, PermanentError) and not ei.value.transient


class _Resp:
    def __init__(self, errcode: str, status: int | None, retry_ms: int | None = None) -> None:
        self.status_code = errcode
        self.retry_after_ms = retry_ms
        self.transport_response = type("T", (), {"status": status})()

    def __str__(self) -> str:
        return f"{self.status_code} {self.transport_response.status}"


def test_send_errors_are_classified_by_kind() -> None:
    limited = classify_send_error(_Resp("M_LIMIT_EXCEEDED", 429, 1500))
    assert isinstance(limited, TransientError) and limited.retry_after_s == 1.5
    assert isinstance(classify_send_error(_Resp("M_UNKNOWN", 502)), TransientError)
    forbidden = classify_send_error(_Resp("M_FORBIDDEN", 403))
    assert isinstance(forbidden, PermanentError) and isinstance(forbidden, MatrixSendError)
    assert forbidden.transient is False and forbidden.retry_after_s is None
    assert forbidden.reason == "M_FORBIDDEN 403"


def test_login_refusals_are_classified_by_kind() -> None:
    wrong_password = login_refused(_Resp("M_FORBIDDEN", 403))
    assert isinstance(wrong_password, MatrixStartError)
    assert isinstance(wrong_password, PermanentError)
    assert isinstance(login_refused(_Resp("M_UNKNOWN_TOKEN", 401)), PermanentError)
    busy = login_refused(_Resp("M_LIMIT_EXCEEDED", 429, 2000))
    assert isinstance(busy, TransientError) and busy.retry_after_s == 2.0


def test_geo_uri_and_file_names() -> None:
    assert parse_geo_uri("geo:91,0") is None and parse_geo_uri("http://x") is None
    assert parse_geo_uri("GEO:-1,2,30;u=abc") == {"lat": -1.0, "lon": 2.0}
    assert safe_filename("..\\..\\x y.png") == "x_y.png"
    assert safe_filename("...", fallback="image") == "image"


def test_undecrypted_waiting_list_is_bounded_and_forgets_only_when_told() -> None:
    waiting = Undecrypted()
    waiting.remember({"event_id": "$no-room"}, 1.0)
    waiting.remember({"room_id": ROOM}, 1.0)
    assert not waiting  # neither can be decrypted later: no room or no id
    for i in range(MAX_PENDING_UNDECRYPTED):
        waiting.remember({"event_id": f"${i}", "room_id": ROOM}, 100.0 + i)
    waiting.remember({"event_id": "$0", "room_id": ROOM}, 1.0)  # a replay keeps the first sighting
    assert len(waiting) == MAX_PENDING_UNDECRYPTED
    waiting.remember({"event_id": "$new", "room_id": ROOM}, 5000.0)
    assert len(waiting) == MAX_PENDING_UNDECRYPTED  # the oldest ($0, first seen at 100) gave way
    waiting.forget(["$0"])
    assert len(waiting) == MAX_PENDING_UNDECRYPTED  # $0 was the one dropped
    waiting.forget(["$1", "$unknown"])
    assert len(waiting) == MAX_PENDING_UNDECRYPTED - 1
