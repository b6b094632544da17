"""What a poll pass costs on the real libGammu dummy driver, and that a pass which reads only as
many parts as the dummy stores still reads every one of them (no gammu mocks)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from bot.transports.sms import Modem
from tests.harness.gammu_phone import DummyPhone, Recorder

NUMBER = "+8801711000123"


async def _modem_thread_cpu(modem: Modem) -> float:
    """CPU seconds (user + system) this modem's own gammu thread has used so far, read on that
    thread (a lookup by name could find another test's modem thread that is still ending)."""
    return await modem._call(lambda _sm: time.thread_time(), 5.0, "cpu clock")


async def test_idle_poll_passes_cost_the_modem_thread_no_cpu(tmp_path: Path) -> None:
    """Each pass used to end with the GetNextSMS that finds nothing, which on the dummy driver
    tries all 5 × 10,000 locations (~0.3 s of CPU): 3 dummy modems polling every 0.1 s kept
    both cores busy and starved the gateway (bench/bench_pool.py). CPU time, not wall time:
    a loaded machine makes a pass slower, not costlier."""
    phone, rec = DummyPhone(tmp_path / "phone"), Recorder()
    modem = phone.modem(rec)
    try:
        await modem.poll_once()  # Init: the thread and the dummy's folders exist
        before = await _modem_thread_cpu(modem)
        for _ in range(5):
            assert await modem.poll_once() == 0
        spent = await _modem_thread_cpu(modem) - before
        assert spent < 0.25, f"5 idle passes used {spent:.2f} s of CPU on the modem thread"
        assert modem.health.state == "up"
    finally:
        await modem.close()


async def test_every_stored_part_is_read_across_folders_and_gaps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The pass reads as many parts as there are files: ones in the phone's own inbox (folder 3)
    and ones behind empty slots are read too, a multipart message whole, then all deleted.
    A pass that read every stored part is the normal end, not the per-pass cap: no warning."""
    caplog.set_level(logging.WARNING, logger="bot.transports.sms")
    phone, rec = DummyPhone(tmp_path / "phone"), Recorder()
    modem = phone.modem(rec)
    try:
        await modem.poll_once()
        files = [p for i in range(4) for p in phone.inject_sms(NUMBER, f"message {i}")]
        long_text = "Water rising fast, 5 people on the roof at Char Para school, send a boat. " * 3
        files += phone.inject_sms(NUMBER, long_text)
        assert len(files) == 6
        files[1].unlink()  # a gap: slot 2 is empty
        phone_box = phone.path / "sms" / "3"
        phone_box.mkdir(exist_ok=True)
        files[2].rename(phone_box / "9")  # stored in the phone's memory, far from slot 1
        assert await modem.poll_once() == 4
        assert sorted(m.text for m in rec.messages) == sorted(
            ["message 0", "message 2", "message 3", long_text]
        )
        assert phone.inbox_files() == []
        assert not [r.getMessage() for r in caplog.records if "GetNextSMS" in r.getMessage()]
    finally:
        await modem.close()
