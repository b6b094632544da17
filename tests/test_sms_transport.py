"""Modem worker against the real libGammu dummy driver (no gammu mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import gammu
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import sim
from bot.models import Channel, Inbound
from bot.transports.sms import (
    PARTIAL_MARKER,
    ReceiveHandlerError,
    SendError,
    count_parts,
    dedup_key,
    sendable_text,
)
from tests.harness.gammu_phone import DummyPhone, FakeClock, HangingSlot, Recorder, wait_for

BN_TEXT = (
    "আমরা ছাদে আটকে আছি, পানি বাড়ছে। বাড়িতে পাঁচজন, একজন বৃদ্ধ ও দুই শিশু। "
    "দয়া করে নৌকা পাঠান। ঠিকানা: গ্রাম চরপাড়া, স্কুলের পাশে।"
)
NUMBER = "+8801711000123"
WHEN = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def phone(tmp_path: Path) -> DummyPhone:
    return DummyPhone(tmp_path / "phone")


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


async def test_bengali_multipart_reassembled(phone: DummyPhone, rec: Recorder) -> None:
    modem = phone.modem(rec)
    try:
        await modem.poll_once()  # Init creates the dummy's folders
        files = phone.inject_sms(NUMBER, BN_TEXT, when=WHEN)
        assert len(files) >= 2  # UCS-2: 67 chars per part
        assert await modem.poll_once() == 1
        [msg] = rec.messages
        assert msg.text == BN_TEXT
        assert "?" not in msg.text
        assert msg.channel is Channel.SMS
        assert msg.peer == NUMBER and msg.conversation == NUMBER
        assert msg.meta["parts"] == len(files)
        assert msg.meta["coding"].startswith("Unicode")
        assert msg.facts.modem == "sim1"
        assert msg.meta["smsc_time"] == WHEN.isoformat()
        assert not msg.facts.partial
        assert phone.inbox_files() == []
        assert modem.health.received == 1
        assert modem.health.state == "up"
    finally:
        await modem.close()


async def test_two_part_gsm_message_is_one_inbound(phone: DummyPhone, rec: Recorder) -> None:
    text = "Water rising fast, 5 people on roof at Char Para school, need boat urgently. " * 3
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        assert len(phone.inject_sms(NUMBER, text)) == 2
        assert await modem.poll_once() == 1
        assert len(rec.batches) == 1
        [msg] = rec.messages
        assert msg.text == text
        assert msg.meta["parts"] == 2
        assert msg.meta["coding"].startswith("Default")
    finally:
        await modem.close()


async def test_one_on_receive_call_per_poll(phone: DummyPhone, rec: Recorder) -> None:
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        phone.inject_sms("+111222333", "first")
        phone.inject_sms("+444555666", BN_TEXT)
        phone.inject_sms("+777888999", "third")
        assert await modem.poll_once() == 3
        assert rec.calls == 1
        assert sorted(m.text for m in rec.messages) == sorted(["first", BN_TEXT, "third"])
        assert len({m.dedup_key for m in rec.messages}) == 3
    finally:
        await modem.close()


async def test_late_part_waits_then_completes(phone: DummyPhone, rec: Recorder) -> None:
    text = "Need insulin and clean water for 12 families near the embankment. " * 4
    parts = phone.build_parts(NUMBER, text, when=WHEN)
    assert len(parts) == 2
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        phone.inject_parts(parts[:1])
        assert await modem.poll_once() == 0
        assert rec.calls == 0
        assert len(phone.inbox_files()) == 1  # nothing deleted
        assert modem.health.pending_parts == 1
        phone.inject_parts(parts[1:])
        assert await modem.poll_once() == 1
        [msg] = rec.messages
        assert msg.text == text
        assert not msg.facts.partial
        assert phone.inbox_files() == []
        assert modem.health.pending_parts == 0
    finally:
        await modem.close()


async def test_missing_part_delivered_partial_after_timeout(
    phone: DummyPhone, rec: Recorder
) -> None:
    clock = FakeClock()
    text = "ক" * 67 + "খ" * 67 + "গ" * 20  # exactly 3 UCS-2 parts
    parts = phone.build_parts(NUMBER, text, when=WHEN)
    assert len(parts) == 3
    modem = phone.modem(rec, settings={"multipart_timeout_s": 300.0}, clock=clock)
    try:
        await modem.poll_once()
        phone.inject_parts([parts[0], parts[2]])  # part 2 never arrives
        assert await modem.poll_once() == 0
        clock.advance(299)
        assert await modem.poll_once() == 0
        assert len(phone.inbox_files()) == 2
        clock.advance(2)
        assert await modem.poll_once() == 1
        [msg] = rec.messages
        assert msg.facts.partial is True
        assert msg.meta["missing_parts"] == [2]
        assert msg.meta["expected_parts"] == 3
        assert msg.text == "ক" * 67 + PARTIAL_MARKER + "গ" * 20
        assert phone.inbox_files() == []
    finally:
        await modem.close()


async def test_part_redelivered_after_the_message_is_not_a_new_message(
    phone: DummyPhone, rec: Recorder
) -> None:
    """Networks re-deliver parts: one arriving after its complete message was processed and
    deleted is a duplicate (deleted), not a second, partial message; a new message that reuses
    the concatenation reference with other text is still delivered."""
    clock = FakeClock()
    parts = phone.build_parts(NUMBER, "Water rising at the ghat road. " * 8, when=WHEN)
    assert len(parts) >= 2
    modem = phone.modem(rec, settings={"multipart_timeout_s": 60.0}, clock=clock)
    try:
        await modem.poll_once()
        phone.inject_parts(parts)
        assert await modem.poll_once() == 1
        clock.advance(600)
        phone.inject_parts(parts[1:2])  # the network sends part 2 again
        assert await modem.poll_once() == 0
        clock.advance(61)
        assert await modem.poll_once() == 0
        assert phone.inbox_files() == []
        other = phone.build_parts(NUMBER, "Different text now, boats seen near school. " * 6)
        reused = dict(other[1])
        reused["UDH"] = parts[1]["UDH"]  # same reference, different text
        phone.inject_parts([reused])
        assert await modem.poll_once() == 0  # waits for its other part
        clock.advance(61)
        assert await modem.poll_once() == 1
        assert len(rec.messages) == 2 and rec.messages[1].facts.partial is True
    finally:
        await modem.close()


async def test_partial_timeout_survives_failed_commit(phone: DummyPhone, rec: Recorder) -> None:
    """First-seen time is kept when on_receive fails, so the partial is not delayed again."""
    clock = FakeClock()
    parts = phone.build_parts(NUMBER, "x" * 300, when=WHEN)
    modem = phone.modem(rec, settings={"multipart_timeout_s": 60.0}, clock=clock)
    try:
        await modem.poll_once()
        phone.inject_parts(parts[:1])
        assert await modem.poll_once() == 0
        clock.advance(61)
        rec.fail_with = RuntimeError("disk full")
        with pytest.raises(ReceiveHandlerError):
            await modem.poll_once()
        rec.fail_with = None
        assert await modem.poll_once() == 1
        assert rec.messages[0].facts.partial is True
    finally:
        await modem.close()


async def test_binary_and_empty_sms_flagged_and_deleted(phone: DummyPhone, rec: Recorder) -> None:
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        phone.inject_parts([sim.build_binary("+111000111", b"\x00\x01\xfe\xffdata", when=WHEN)])
        phone.inject_parts([sim.build_empty("+222000222", when=WHEN)])
        assert await modem.poll_once() == 2
        by_peer = {m.peer: m for m in rec.messages}
        binary, empty = by_peer["+111000111"], by_peer["+222000222"]
        assert binary.text == "" and binary.facts.binary is True
        assert binary.meta["bytes"] == 8
        assert empty.text == "" and empty.facts.empty is True
        assert "binary" not in empty.meta
        assert binary.dedup_key != empty.dedup_key
        assert phone.inbox_files() == []
    finally:
        await modem.close()


async def test_status_report_is_deleted_not_delivered(
    phone: DummyPhone, rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        phone.inject_parts([sim.build_status_report(NUMBER, reference=42)])
        with caplog.at_level(logging.INFO, logger="bot.transports.sms"):
            assert await modem.poll_once() == 0
        assert rec.calls == 0
        assert phone.inbox_files() == []
        assert any("Status_Report" in r.getMessage() for r in caplog.records)
        assert not any(NUMBER in r.getMessage() for r in caplog.records)  # masked
    finally:
        await modem.close()


async def test_failed_commit_deletes_nothing_and_redelivers(
    phone: DummyPhone, rec: Recorder
) -> None:
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        phone.inject_sms(NUMBER, BN_TEXT, when=WHEN)
        before = phone.inbox_files()
        rec.fail_with = OSError("database is locked")
        with pytest.raises(ReceiveHandlerError):
            await modem.poll_once()
        assert phone.inbox_files() == before
        assert modem.health.last_error is not None
        assert "database is locked" in modem.health.last_error
        attempted_key = dedup_key(NUMBER, WHEN.isoformat(), BN_TEXT)
        rec.fail_with = None
        assert await modem.poll_once() == 1
        [msg] = rec.messages
        assert msg.dedup_key == attempted_key
        assert phone.inbox_files() == []
    finally:
        await modem.close()


async def test_hung_commit_times_out_and_deletes_nothing(phone: DummyPhone) -> None:
    calls: list[int] = []

    async def slow_store(batch: list[Inbound]) -> None:
        calls.append(len(batch))
        await asyncio.sleep(30)

    modem = phone.modem(Recorder(), receive_timeout_s=0.3)
    modem._on_receive = slow_store
    try:
        await modem.poll_once()
        phone.inject_sms(NUMBER, "help", when=WHEN)
        with pytest.raises(ReceiveHandlerError):
            await modem.poll_once()
        assert calls == [1]
        assert len(phone.inbox_files()) == 1
        assert "TimeoutError" in (modem.health.last_error or "")
    finally:
        await modem.close()


async def test_dedup_key_stable_across_rereads(phone: DummyPhone, rec: Recorder) -> None:
    """A double receive (same SMS stored twice, or re-read after a crash) gets the same key."""
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        phone.inject_sms(NUMBER, "help, roof, 3 people", when=WHEN)
        assert await modem.poll_once() == 1
        phone.inject_sms(NUMBER, "help, roof, 3 people", when=WHEN)
        assert await modem.poll_once() == 1
        phone.inject_sms(NUMBER, "help, roof, 3 people", when=WHEN.replace(minute=1))
        phone.inject_sms("+8801711000999", "help, roof, 3 people", when=WHEN)
        assert await modem.poll_once() == 2
        keys = [m.dedup_key for m in rec.messages]
        assert keys[0] == keys[1]
        assert len(set(keys)) == 3
    finally:
        await modem.close()


async def test_batch_is_in_smsc_time_order_not_sim_slot_order(
    phone: DummyPhone, rec: Recorder
) -> None:
    """The SIM fills the lowest free slot, so after deletes a later SMS can sit in an earlier slot:
    one pass must hand them over (and so store them) in SMSC time order, ties in slot order."""
    other = "+8801711000999"
    minute = [WHEN.replace(minute=m) for m in range(6)]
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        slots = [
            (NUMBER, "3 roof now", minute[3]),
            (other, "b2", minute[2]),
            (NUMBER, "1 water in house", minute[1]),
            (NUMBER, BN_TEXT, minute[4]),  # multipart: its parts take two slots
            (NUMBER, "2 water at window", minute[2]),
            (other, "b0", minute[0]),
            (NUMBER, "5 please hurry", minute[5]),
        ]
        for number, text, when in slots:
            phone.inject_sms(number, text, when=when)
        assert await modem.poll_once() == len(slots)
        [batch] = rec.batches
    finally:
        await modem.close()
    mine = [m.text for m in batch if m.peer == NUMBER]
    assert mine == [
        "1 water in house",
        "2 water at window",
        "3 roof now",
        BN_TEXT,
        "5 please hurry",
    ]
    assert [m.text for m in batch] == [
        "b0", "1 water in house", "b2", "2 water at window", "3 roof now", BN_TEXT,
        "5 please hurry",
    ]  # fmt: skip
    assert [m.meta["smsc_time"] for m in batch] == sorted(m.meta["smsc_time"] for m in batch)


async def test_duplicate_part_in_same_pass_is_not_a_second_message(
    phone: DummyPhone, rec: Recorder
) -> None:
    parts = phone.build_parts(NUMBER, "y" * 300, when=WHEN)
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        phone.inject_parts([*parts, parts[0]])  # the network delivered part 1 twice
        assert await modem.poll_once() == 1
        assert rec.messages[0].text == "y" * 300
        assert phone.inbox_files() == []
        assert modem.health.pending_parts == 0
    finally:
        await modem.close()


async def test_send_bengali_uses_unicode_and_gsm_stays_default(
    phone: DummyPhone, rec: Recorder
) -> None:
    reply = "সাহায্য আসছে। উঁচু জায়গায় থাকুন, নৌকা ৩০ মিনিটে পৌঁছাবে। কেস LF-4821." * 3
    modem = phone.modem(rec)
    try:
        ref = await modem.send(NUMBER, reply, idem_key="reply-1")
        assert ref.startswith("sim1:")
        en_reply = "Help is coming. Stay high. Case [LF-4821] {boat} ~ cost €0 ^|\\"
        await modem.send("+8801711000456", en_reply, idem_key="reply-2")
        bn, en = phone.sent_messages()
        assert bn["to"] == NUMBER
        assert bn["text"] == reply  # decoded from a real SMS-SUBMIT PDU: not '???'
        assert bn["coding"].startswith("Unicode")
        assert bn["parts"] == count_parts(reply)
        assert bn["parts"] >= 4
        assert en["text"] == en_reply  # GSM-7 extension table, escaped, still one part
        assert en["coding"].startswith("Default")
        assert en["parts"] == 1
        assert modem.health.sent == 2
    finally:
        await modem.close()


async def test_outbox_shows_question_marks_when_coding_is_wrong(phone: DummyPhone) -> None:
    """Negative control: the outbox check really sees what a handset sees."""
    parts = gammu.EncodeSMS(
        {"Class": -1, "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": "নৌকা আসছে"}]}
    )
    for part in parts:
        part.update({"Number": NUMBER, "SMSC": {"Location": 1}})
    sim.write_sent(phone.path, parts, key="bad", when=time.time())
    [msg] = phone.sent_messages()
    assert msg["text"] != "নৌকা আসছে"
    assert "?" in msg["text"]


async def test_send_invalid_number_is_permanent(phone: DummyPhone, rec: Recorder) -> None:
    modem = phone.modem(rec)
    try:
        with pytest.raises(SendError) as ours:
            await modem.send("call me maybe", "hi", idem_key="k1")
        assert ours.value.transient is False
        with pytest.raises(SendError) as libgammu:  # passes our check, libGammu rejects it
            await modem.send("+" + "1" * 30, "hi", idem_key="k2")
        assert libgammu.value.transient is False
        assert "ERR_INVALIDDATA" in libgammu.value.reason
        with pytest.raises(SendError) as empty:
            await modem.send(NUMBER, "", idem_key="k3")
        assert empty.value.transient is False
        assert phone.sent_messages() == []
        assert modem.health.state == "up"
    finally:
        await modem.close()


async def test_send_too_long_is_permanent(phone: DummyPhone, rec: Recorder) -> None:
    modem = phone.modem(rec)
    try:
        with pytest.raises(SendError) as err:
            await modem.send(NUMBER, "ক" * 67 * 51, idem_key="long")
        assert err.value.transient is False
        assert phone.sent_messages() == []
    finally:
        await modem.close()


async def test_send_on_dead_state_machine_is_transient_and_modem_goes_down(
    phone: DummyPhone, rec: Recorder
) -> None:
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        # Close the StateMachine under the worker (on its own thread), like a modem that reset.
        await modem._call(lambda sm: sm.Terminate(), 5.0, "test terminate")
        with pytest.raises(SendError) as err:
            await modem.send(NUMBER, "hello", idem_key="k")
        assert err.value.transient is True
        assert "ERR_NOTCONNECTED" in err.value.reason
        assert modem.health.state == "down"
        assert phone.sent_messages() == []
        await modem.poll_once()  # a poll re-inits
        assert modem.health.state == "up"
        await modem.send(NUMBER, "hello", idem_key="k")
        assert [m["text"] for m in phone.sent_messages()] == ["hello"]
    finally:
        await modem.close()


async def test_watchdog_error_down_reinit_up(
    phone: DummyPhone, rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A modem that stops answering mid-run (a named pipe in the SIM store blocks GetNextSMS
    until the read timeout) → down → backoff re-init → up once it answers again."""
    # The read timeout must stay well above a normal pass: the dummy's GetNextSMS takes ~0.5 s on a
    # loaded 2-core machine, and with 0.5 s here even the first, healthy read timed out.
    modem = phone.modem(rec, read_timeout_s=2.0, backoff_initial_s=0.1, backoff_max_s=0.4)
    task = asyncio.create_task(modem.run())
    try:
        with caplog.at_level(logging.INFO, logger="bot.transports.sms"):
            await wait_for(lambda: modem.health.state == "up", what="up")
            phone.inject_sms(NUMBER, "before")
            await wait_for(lambda: len(rec.messages) == 1, what="first message")
            hang = phone.path / "sms" / "1" / "7"
            os.mkfifo(hang)
            await wait_for(lambda: modem.health.consecutive_errors >= 2, what="errors")
            assert modem.health.state in ("down", "reinit", "up")
            assert modem.health.last_error
            with contextlib.suppress(OSError):  # free the reader abandoned on the pipe
                os.close(os.open(hang, os.O_WRONLY | os.O_NONBLOCK))
            hang.unlink()
            phone.inject_sms(NUMBER, "after")
            await wait_for(lambda: len(rec.messages) == 2, what="message after recovery")
            # the pass that delivered it finishes (delete, then counters) right after on_receive
            await wait_for(lambda: modem.health.received == 2, what="pass complete")
            assert modem.health.state == "up"
            assert modem.health.consecutive_errors == 0
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "-> DOWN" in text
        assert "-> reinit" in text
        assert "-> UP again" in text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await modem.close()


async def test_init_failure_backs_off_exponentially(
    tmp_path: Path, rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    device = tmp_path / "not-a-dir"
    device.write_text("a file where the device directory should be")
    phone = DummyPhone(device)
    modem = phone.modem(rec, backoff_initial_s=0.1, backoff_max_s=0.4)
    task = asyncio.create_task(modem.run())
    try:
        with caplog.at_level(logging.INFO, logger="bot.transports.sms"):
            await wait_for(lambda: modem.health.consecutive_errors >= 6, what="6 failed inits")
            attempts = [
                r.created for r in caplog.records if "-> reinit" in r.getMessage()
            ]  # one line per re-init attempt after the first failure
        assert modem.health.state in ("down", "reinit")
        assert "device" in (modem.health.last_error or "")
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        # Delays 0.2, 0.4 (cap), 0.4, …: never shorter than the schedule (load only adds).
        expected = [0.2, 0.4, 0.4, 0.4]
        assert len(gaps) >= len(expected), gaps
        for gap, want in zip(gaps, expected, strict=False):
            assert gap >= want * 0.9, (gaps, expected)
            assert gap < want + 10.0, (gaps, expected)  # not stuck at the cap; stalls allowed
        device.unlink()
        device.mkdir()
        await wait_for(lambda: modem.health.state == "up", what="up after device appears")
        sim.inject_sms(device, NUMBER, "finally")
        await wait_for(lambda: modem.health.received == 1, what="delivery")
        assert [m.text for m in rec.messages] == ["finally"]
        assert modem.health.consecutive_errors == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await modem.close()


async def test_hung_modem_times_out_and_recovers_on_a_fresh_thread(
    phone: DummyPhone, rec: Recorder
) -> None:
    modem = phone.modem(rec, read_timeout_s=2.0, call_timeout_s=2.0)
    await modem.poll_once()
    hang = HangingSlot(phone.path, slot=1)
    task = asyncio.create_task(modem.run())
    try:
        t0 = time.monotonic()
        await wait_for(lambda: "timed out" in (modem.health.last_error or ""), what="timeout")
        assert 1.9 < time.monotonic() - t0 < 8.0
        assert modem.health.state in ("down", "reinit")
        # The event loop stayed responsive while a gammu thread was stuck.
        t1 = time.monotonic()
        await asyncio.sleep(0.01)
        assert time.monotonic() - t1 < 1.0  # blocked would mean seconds, until release
        hang.release()
        phone.inject_sms(NUMBER, "still alive?")
        await wait_for(lambda: len(rec.messages) == 1, timeout=15, what="delivery after hang")
        assert rec.messages[0].text == "still alive?"
        assert modem.health.state == "up"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        t2 = time.monotonic()
        await modem.close()
        assert time.monotonic() - t2 < 11


async def test_close_is_bounded_even_when_thread_is_stuck(phone: DummyPhone, rec: Recorder) -> None:
    modem = phone.modem(rec, read_timeout_s=30, call_timeout_s=0.5)
    await modem.poll_once()
    hang = HangingSlot(phone.path, slot=1)
    poll = asyncio.create_task(modem.poll_once())
    await asyncio.sleep(0.3)  # the worker thread is now blocked inside GetNextSMS
    t0 = time.monotonic()
    await modem.close()
    assert time.monotonic() - t0 < 3.0
    assert modem.health.state == "down"
    hang.release()
    done, _ = await asyncio.wait({poll}, timeout=5)  # the stuck call finishes once released
    assert poll in done
    poll.exception()  # whatever it was, it was retrieved


async def test_signal_quality_reported(phone: DummyPhone, rec: Recorder) -> None:
    modem = phone.modem(rec)
    task = asyncio.create_task(modem.run())
    try:
        await wait_for(lambda: modem.health.signal_percent is not None, what="signal")
        assert 0 <= (modem.health.signal_percent or -1) <= 100
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await modem.close()


# ----------------------------------------------------------------------------- properties

_TEXT = st.text(
    # Any code point but lone surrogates and U+0000: no handset can type NUL (GSM-7's 0x00 is
    # '@'), and the simulator's SMS-backup writer is C-string based, so it would cut the text.
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=600,
)


def _fresh_device() -> Path:
    return Path(tempfile.mkdtemp(prefix="lifeline-gammu-")) / "phone"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_TEXT, min_size=1, max_size=4))
def test_property_any_text_injected_reads_back_equal(texts: list[str]) -> None:
    """Several senders per pass (one poll each example keeps this fast on the ~70 ms dummy)."""
    senders = {f"+88017110001{i:02d}": text for i, text in enumerate(texts)}

    async def scenario() -> dict[str, str]:
        rec = Recorder()
        phone = DummyPhone(_fresh_device())
        for number, text in senders.items():
            sim.inject_sms(phone.path, number, text)
        modem = phone.modem(rec)
        try:
            await modem.poll_once()
            assert phone.inbox_files() == []
            return {m.peer: m.text for m in rec.messages}
        finally:
            await modem.close()
            shutil.rmtree(phone.path.parent)

    # NUL is dropped on receive (real modems pad GSM-7 text with NULs; no handset types one).
    assert asyncio.run(scenario()) == {n: t.replace("\x00", "") for n, t in senders.items()}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_property_any_text_sent_decodes_back_equal(text: str) -> None:
    async def scenario() -> list[dict[str, object]]:
        phone = DummyPhone(_fresh_device())
        modem = phone.modem(Recorder())
        try:
            await modem.send(NUMBER, text, idem_key="p")
            return phone.sent_messages()
        finally:
            await modem.close()
            shutil.rmtree(phone.path.parent)

    [msg] = asyncio.run(scenario())
    assert msg["text"] == sendable_text(text)
    assert msg["to"] == NUMBER


def test_sendable_text_only_touches_control_characters() -> None:
    assert sendable_text("a\x00b\tc\x01d\r\ne") == "a b c d\r\ne"
    keep = BN_TEXT + " €[]{}~^|\\ 😀 𝄞 ü ñ ß ع 中"
    assert sendable_text(keep) == keep


async def test_unreadable_slot_is_skipped_and_others_are_read(
    phone: DummyPhone, rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """One corrupt stored message must not hold the messages behind it hostage."""
    modem = phone.modem(rec)
    try:
        (phone.path / "sms" / "1").mkdir(parents=True, exist_ok=True)
        bad = phone.path / "sms" / "1" / "1"
        bad.write_text("this is not an SMS backup\n")
        phone.inject_sms(NUMBER, "trapped on the roof")
        with caplog.at_level(logging.ERROR, logger="bot.transports.sms"):
            assert await modem.poll_once() == 1
        assert [m.text for m in rec.messages] == ["trapped on the roof"]
        assert bad.exists() and phone.inbox_files() == [bad]  # kept, the good one deleted
        assert modem.health.state == "up"
        assert any("cannot be read" in r.getMessage() for r in caplog.records)
    finally:
        await modem.close()
