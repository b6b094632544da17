"""The one reply builder: answers go back the way the message came, shaped for the channel."""

from __future__ import annotations

from bot import sms_text
from bot.models import Channel, Inbound, Incident, IncidentStatus, Lane, Priority
from handlers.replies import reply_to, shape


def test_reply_goes_back_to_the_sender_and_conversation() -> None:
    msg = Inbound(Channel.MATRIX, "@v:x", "!dm:x", "hi", "$e", 0.0)
    meta = {"modem": None}
    out = reply_to(msg, "hello", "reply:3", Lane.URGENT, meta)
    assert (out.channel, out.peer, out.conversation) == (Channel.MATRIX, "@v:x", "!dm:x")
    assert (out.text, out.idem_key, out.lane, out.meta) == ("hello", "reply:3", Lane.URGENT, meta)
    assert out.meta is not meta  # the outbox row owns its meta
    assert reply_to(msg, "x", "k").lane is Lane.REPLY and reply_to(msg, "x", "k").meta == {}


def test_shape_fits_sms_and_keeps_the_suffix() -> None:
    long = "Move to the “highest” safe place now. " * 30
    sms = shape(Channel.SMS, long, 2, " [LF-1234]")
    assert sms.endswith(" [LF-1234]") and sms_text.segments(sms) <= 2
    assert "“" not in sms  # GSM-folded
    assert shape(Channel.MATRIX, "**Go** to the school", 1, " [LF-1]") == "Go to the school [LF-1]"


def test_a_case_is_answered_to_its_reporter_on_the_channel_it_came_from() -> None:
    to = "+15550001"  # the reporter, who wrote from this number
    case = Incident(
        1,
        "LF-1",
        Priority.HIGH,
        IncidentStatus.OPEN,
        "",
        2,
        "",
        "",
        to,
        Channel.SMS,
        to,
        "en",
        0,
        0,
    )
    out = reply_to(case, "Help is on the way", "ack:1", Lane.URGENT, {"modem": "sim2"})
    assert case.peer == to
    assert (out.channel, out.peer, out.conversation) == (Channel.SMS, to, to)
    assert (out.idem_key, out.lane, out.meta) == ("ack:1", Lane.URGENT, {"modem": "sim2"})
