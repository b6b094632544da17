"""Multipart reassembly as pure functions: part dicts shaped like python-gammu's, no phone, no I/O.

The same behaviour through the real libGammu dummy modem is in tests/test_sms_transport.py."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.models import Channel, Facts
from bot.transports.sms.codec import MAX_PARTS, dedup_key
from bot.transports.sms.reassembly import (
    PARTIAL_MARKER,
    REDELIVERY_WINDOW_S,
    Group,
    Reassembler,
    Verdict,
    arrival_order,
    merge_incomplete,
    to_inbound,
)

NUMBER = "+8801711000123"
WHEN = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TIMEOUT = 600.0
_slots = itertools.count(1)


def part(
    text: Any = "",
    *,
    n: int = 1,
    of: int = 1,
    ref: int = 42,
    number: str = NUMBER,
    when: datetime | None = WHEN,
    kind: str = "Deliver",
    coding: str = "Default_No_Compression",
    slot: int | None = None,
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "Type": kind,
        "Number": number,
        "Folder": 1,
        "Location": next(_slots) if slot is None else slot,
        "Text": text,
        "Coding": coding,
    }
    if when is not None:
        p["DateTime"] = when
    if of > 1:
        p["UDH"] = {"AllParts": of, "PartNumber": n, "ID8bit": ref, "ID16bit": -1}
    return p


def group(*parts: dict[str, Any], decoded: str | None = None) -> Group:
    return Group(parts=list(parts), decoded=decoded)


def verdicts(plan: Any) -> list[Verdict]:
    return [d.verdict for d in plan.decisions]


# ---- Group ----------------------------------------------------------------------------------


def test_group_counts_parts_and_keeps_the_first_copy_of_a_duplicate() -> None:
    g = group(part("a", n=1, of=3), part("b", n=3, of=3), part("x", n=1, of=3))
    assert g.all_parts == 3
    assert g.texts == {1: "a", 3: "b"}
    assert not g.complete
    assert g.key == (NUMBER, 42, -1, 3)
    single = group(part("hi"))
    assert single.all_parts == 1 and single.complete and single.texts == {1: "hi"}


def test_merge_joins_non_adjacent_parts_of_one_message_in_order() -> None:
    first = group(part("one ", n=1, of=3), decoded="one ")
    third = group(part("three", n=3, of=3))
    other = group(part("x", n=1, of=3, ref=7))
    merged = merge_incomplete([first, other, third])
    assert len(merged) == 2
    joined = merged[0]
    assert [p["Text"] for p in joined.parts] == ["one ", "three"]
    assert joined.decoded is None  # DecodeSMS saw only a piece
    assert merged[1] is other


def test_merge_leaves_overlapping_copies_apart() -> None:
    a = group(part("one", n=1, of=2))
    b = group(part("one again", n=1, of=2))
    assert merge_incomplete([a, b]) == [a, b]


def test_arrival_order_is_smsc_time_then_slot() -> None:
    late_low_slot = group(part("later", when=WHEN + timedelta(seconds=5), slot=1))
    early_high_slot = group(part("earlier", when=WHEN, slot=9))
    undated = group(part("no time", when=None, slot=2))
    same_time_slot3 = group(part("same", when=WHEN, slot=3))
    ordered = sorted([late_low_slot, undated, early_high_slot, same_time_slot3], key=arrival_order)
    assert ordered == [same_time_slot3, early_high_slot, late_low_slot, undated]


# ---- Reassembler ----------------------------------------------------------------------------


def test_complete_messages_are_delivered_and_deleted_in_arrival_order() -> None:
    r = Reassembler(TIMEOUT)
    second = group(part("second", when=WHEN + timedelta(seconds=1), slot=1))
    first = group(part("fir", n=1, of=2, slot=2), part("st", n=2, of=2, slot=3), decoded="first")
    plan = r.plan([second, first], now=1000.0)
    assert verdicts(plan) == [Verdict.COMPLETE, Verdict.COMPLETE]
    assert [d.group for d in plan.deliver] == [first, second]
    assert sorted(plan.delete) == [(1, 1), (1, 2), (1, 3)]
    assert plan.pending == 0


def test_an_incomplete_message_waits_then_goes_out_partial() -> None:
    r = Reassembler(TIMEOUT)
    g = group(part("one ", n=1, of=3, slot=1))
    plan = r.plan([g], now=1000.0)
    assert verdicts(plan) == [Verdict.WAITING]
    assert plan.delete == [] and plan.pending == 1 and plan.deliver == []
    assert verdicts(r.plan([g], now=1000.0 + TIMEOUT - 1)) == [Verdict.WAITING]
    late = r.plan([g], now=1000.0 + TIMEOUT)
    assert verdicts(late) == [Verdict.PARTIAL]
    assert late.delete == [(1, 1)] and late.pending == 0
    r.delivered(late, now=1000.0 + TIMEOUT)
    # its wait clock is gone: the same key seen again later (a new message) waits afresh
    again = group(part("new ", n=1, of=3, slot=4))
    assert verdicts(r.plan([again], now=5000.0)) == [Verdict.WAITING]


def test_the_wait_clock_is_forgotten_when_the_parts_leave_the_sim() -> None:
    r = Reassembler(TIMEOUT)
    g = group(part("one ", n=1, of=2, slot=1))
    r.plan([g], now=1000.0)
    r.plan([], now=1100.0)  # deleted elsewhere
    assert verdicts(r.plan([g], now=1000.0 + TIMEOUT)) == [Verdict.WAITING]


def test_a_message_claiming_too_many_parts_is_delivered_at_once() -> None:
    r = Reassembler(TIMEOUT)
    g = group(part("x", n=1, of=MAX_PARTS + 1))
    assert verdicts(r.plan([g], now=1000.0)) == [Verdict.OVERSIZED]
    assert Verdict.OVERSIZED.delivers


def test_status_reports_are_deleted_not_delivered() -> None:
    r = Reassembler(TIMEOUT)
    g = group(part("Delivered", kind="Status_Report", slot=5))
    plan = r.plan([g], now=1000.0)
    assert verdicts(plan) == [Verdict.NOT_A_MESSAGE]
    assert plan.delete == [(1, 5)] and plan.deliver == [] and plan.delivered == {}


def test_a_stray_copy_of_a_part_in_the_same_pass_is_a_duplicate() -> None:
    r = Reassembler(TIMEOUT)
    whole = group(part("a", n=1, of=2, slot=1), part("b", n=2, of=2, slot=2), decoded="ab")
    stray = group(part("b", n=2, of=2, slot=3))
    plan = r.plan([whole, stray], now=1000.0)
    assert sorted(verdicts(plan)) == sorted([Verdict.COMPLETE, Verdict.DUPLICATE])
    assert sorted(plan.delete) == [(1, 1), (1, 2), (1, 3)]


def test_a_part_redelivered_later_is_a_duplicate_within_the_window_only() -> None:
    r = Reassembler(TIMEOUT)
    whole = group(part("a", n=1, of=2, slot=1), part("b", n=2, of=2, slot=2), decoded="ab")
    plan = r.plan([whole], now=1000.0)
    r.delivered(plan, now=1000.0)
    copy = group(part("b", n=2, of=2, slot=1))
    assert verdicts(r.plan([copy], now=2000.0)) == [Verdict.DUPLICATE]
    different = group(part("c", n=2, of=2, slot=1))  # same key, other text: a new message
    assert verdicts(r.plan([different], now=2000.0)) == [Verdict.WAITING]
    r.delivered(
        r.plan([], now=1000.0 + REDELIVERY_WINDOW_S + 1), now=1000.0 + REDELIVERY_WINDOW_S + 1
    )
    assert verdicts(r.plan([copy], now=1000.0 + REDELIVERY_WINDOW_S + 2)) == [Verdict.WAITING]


def test_nothing_is_remembered_as_delivered_until_delivered_is_called() -> None:
    """on_receive failed: the next pass re-reads the message and must deliver it again."""
    r = Reassembler(TIMEOUT)
    whole = group(part("a", n=1, of=2, slot=1), part("b", n=2, of=2, slot=2), decoded="ab")
    r.plan([whole], now=1000.0)  # no delivered(): the commit failed
    copy = group(part("b", n=2, of=2, slot=2))
    assert verdicts(r.plan([copy], now=1001.0)) == [Verdict.WAITING]


# ---- to_inbound -----------------------------------------------------------------------------


def test_complete_message_uses_the_decoded_text_and_a_stable_dedup_key() -> None:
    g = group(part("he", n=1, of=2), part("llo", n=2, of=2), decoded="hello")
    msg = to_inbound(g, partial=False, modem="sim1", received_at=5.0)
    assert (msg.channel, msg.peer, msg.conversation, msg.text) == (
        Channel.SMS,
        NUMBER,
        NUMBER,
        "hello",
    )
    assert msg.received_at == 5.0
    assert msg.meta == {
        "parts": 2,
        "coding": "Default_No_Compression",
        "smsc_time": WHEN.isoformat(),
    }
    assert msg.facts == Facts(modem="sim1")
    assert msg.dedup_key == dedup_key(NUMBER, WHEN.isoformat(), "hello")
    again = to_inbound(g, partial=False, modem="sim2", received_at=9.0)
    assert again.dedup_key == msg.dedup_key  # re-read from the SIM: same key


def test_without_decoded_text_the_parts_are_joined_in_order_and_nuls_dropped() -> None:
    g = group(part("world\x00", n=2, of=2), part("hello ", n=1, of=2))
    assert to_inbound(g, partial=False, modem="m", received_at=0).text == "hello world"


def test_partial_message_marks_every_missing_part() -> None:
    g = group(part("one ", n=1, of=4), part("three ", n=3, of=4))
    msg = to_inbound(g, partial=True, modem="m", received_at=0)
    assert msg.text == f"one {PARTIAL_MARKER}three {PARTIAL_MARKER}"
    assert msg.facts.partial is True
    assert msg.meta["expected_parts"] == 4
    assert msg.meta["missing_parts"] == [2, 4]


def test_binary_message_has_no_text_and_hashes_its_bytes() -> None:
    g = group(part(b"\x01\x02", coding="8bit"))
    msg = to_inbound(g, partial=False, modem="m", received_at=0)
    assert msg.text == ""
    assert msg.facts.binary is True and msg.meta["bytes"] == 2
    assert msg.dedup_key == dedup_key(NUMBER, WHEN.isoformat(), "8bit:0102")


def test_blank_message_is_flagged_empty() -> None:
    msg = to_inbound(group(part("  ")), partial=False, modem="m", received_at=0)
    assert msg.facts.empty is True
    assert not to_inbound(group(part("hi")), partial=False, modem="m", received_at=0).facts.empty
